package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/aero2/aero2/store"
)

// Apply sends the batch as one pipeline: one round trip, one implicit
// transaction. The guards run first (aero2_guard raises A2XST on a live
// record, which aborts the transaction, so nothing is written; otherwise
// it holds the key's row until commit, so that writers of the key wait for
// the batch; an OpTake deletes its row there, or raises A2XST when there
// is none); then the writes, in order, as the single-record methods
// write; last, the placeholders the guards inserted are removed.
func (s *Store) Apply(ctx context.Context, app string, ops ...store.Op) error {
	for _, op := range ops {
		if op.Kind < store.OpPut || op.Kind > store.OpTake {
			return fmt.Errorf("postgres: unknown batch op %d", op.Kind)
		}
	}
	if len(ops) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	var guarded [][]byte
	for _, op := range ops {
		switch op.Kind {
		case store.OpCreate, store.OpAbsent:
			r := recordsOf(op.Key)
			b.Queue(r.guard, pgx.NamedArgs{"app": app, "key": []byte(op.Key)})
			if r == &genericRecords {
				guarded = append(guarded, []byte(op.Key))
			}
		case store.OpTake:
			b.Queue(recordsOf(op.Key).takeGuard(), pgx.NamedArgs{"app": app, "key": []byte(op.Key)})
		}
	}
	for _, op := range ops {
		switch op.Kind {
		case store.OpPut, store.OpCreate:
			// A guard has established that an OpCreate's key is free (and
			// holds it): it writes as a put does.
			b.Queue(recordsOf(op.Key).put, recArgs(app, op.Key, op.Value, op.TTL))
		case store.OpDelete:
			b.Queue(recordsOf(op.Key).del, recArgs(app, op.Key, nil, 0))
		case store.OpSetAdd:
			if len(op.Members) > 0 {
				queueSetAdd(b, app, op.Key, op.TTL, op.Members)
			}
		case store.OpSetRemove:
			if len(op.Members) > 0 {
				queueSetRemove(b, app, op.Key, op.Members)
			}
		}
	}
	if len(guarded) > 0 {
		b.Queue(`DELETE FROM records WHERE app = @app AND key = ANY(@keys) AND expires_at = '-infinity'`,
			pgx.NamedArgs{"app": app, "keys": guarded})
	}
	err := s.batch(ctx, b)
	if pgCode(err) == codeLive {
		return store.ErrExists
	}
	return consentUserGone(err)
}

// GetMany reads the records in one statement (one snapshot).
func (s *Store) GetMany(ctx context.Context, app string, keys ...string) ([][]byte, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	rows, err := s.pool.Query(ctx, getManySQL, getManyArgs(app, keys))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	found, err := scanMany(rows)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return inOrder(keys, found), nil
}

// getManySQL reads records by key (and the signing keys, which have
// their own table).
var getManySQL = `SELECT key, value FROM records WHERE app = @app AND key = ANY(@keys) AND ` + live("expires_at") + `
		UNION ALL SELECT @signing::bytea, sealed FROM signing_keys WHERE app = @app AND @signing::bytea = ANY(@keys) AND ` + live("expires_at")

func getManyArgs(app string, keys []string) pgx.NamedArgs {
	bkeys := make([][]byte, len(keys))
	for i, k := range keys {
		bkeys[i] = []byte(k)
	}
	return pgx.NamedArgs{"app": app, "keys": bkeys, "signing": []byte(signingKeysKey)}
}

func scanMany(rows pgx.Rows) (map[string][]byte, error) {
	found := map[string][]byte{}
	var k, v []byte
	_, err := pgx.ForEachRow(rows, []any{&k, &v}, func() error {
		if v == nil {
			v = []byte{}
		}
		found[string(k)] = v
		return nil
	})
	return found, err
}

func inOrder(keys []string, found map[string][]byte) [][]byte {
	out := make([][]byte, len(keys))
	for i, key := range keys {
		out[i] = found[key]
	}
	return out
}

// GetManyAndUser sends the records' query and the user's in one batch:
// one round trip.
func (s *Store) GetManyAndUser(ctx context.Context, app, userID string, keys ...string) (*store.User, [][]byte, error) {
	var u *store.User
	var found map[string][]byte
	b := &pgx.Batch{}
	b.Queue(`SELECT `+userColumns+` FROM users WHERE app = @app AND id = @id`,
		pgx.NamedArgs{"app": app, "id": clean(userID)}).QueryRow(func(row pgx.Row) error {
		got, err := scanUser(row)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		u = got
		return err
	})
	if len(keys) > 0 {
		b.Queue(getManySQL, getManyArgs(app, keys)).Query(func(rows pgx.Rows) error {
			var err error
			found, err = scanMany(rows)
			return err
		})
	}
	if err := s.batch(ctx, b); err != nil {
		return nil, nil, err
	}
	if len(keys) == 0 {
		return u, nil, nil
	}
	return u, inOrder(keys, found), nil
}
