package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aero2/aero2/store"
)

// recordSQL is the SQL of one kind of record. Generic records share the
// table records; an application's signing keys (authz/keys writes them
// under signingKeysKey) have a table of their own.
type recordSQL struct {
	create, put, get, take, del string
	// guard is a batch's guard on the key (OpCreate, OpAbsent): it
	// raises A2XST on a live record and otherwise holds the key until the
	// batch commits.
	guard string
}

// takeGuard is a batch's OpTake of a record: take's DELETE … RETURNING,
// raising A2XST when it deleted nothing (no live record). Of concurrent
// batches, one deletes the row; the others wait for its lock and, once it
// commits, find nothing and are refused (if it aborts, one of them takes
// the row instead). A batch aborted by a later guard rolls the DELETE
// back with everything else.
func (r *recordSQL) takeGuard() string {
	return `WITH taken AS (` + r.take + `) SELECT aero2_refuse() WHERE NOT EXISTS (SELECT FROM taken)`
}

// signingKeysKey is the record authz/keys keeps an application's sealed
// key set under.
const signingKeysKey = store.SigningKeysKey

var (
	genericRecords = recordSQL{
		create: `INSERT INTO records AS r (app, key, value, expires_at) VALUES (@app, @key, @value, ` + expiry("ttl") + `)
			ON CONFLICT (app, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
			WHERE r.expires_at IS NOT NULL AND r.expires_at <= now()`,
		put: `INSERT INTO records (app, key, value, expires_at) VALUES (@app, @key, @value, ` + expiry("ttl") + `)
			ON CONFLICT (app, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`,
		get: `SELECT value FROM records WHERE app = @app AND key = @key AND ` + live("expires_at"),
		// Single use is DELETE … RETURNING: of concurrent takers, one
		// deletes the row; the others wait for its lock and then find
		// nothing.
		take:  `DELETE FROM records WHERE app = @app AND key = @key AND ` + live("expires_at") + ` RETURNING value`,
		del:   `DELETE FROM records WHERE app = @app AND key = @key`,
		guard: `SELECT aero2_guard(@app, @key)`,
	}
	signingKeyRecords = recordSQL{
		create: `INSERT INTO signing_keys AS k (app, sealed, expires_at) VALUES (@app, @value, ` + expiry("ttl") + `)
			ON CONFLICT (app) DO UPDATE SET sealed = excluded.sealed, expires_at = excluded.expires_at, updated_at = now()
			WHERE k.expires_at IS NOT NULL AND k.expires_at <= now()`,
		put: `INSERT INTO signing_keys (app, sealed, expires_at) VALUES (@app, @value, ` + expiry("ttl") + `)
			ON CONFLICT (app) DO UPDATE SET sealed = excluded.sealed, expires_at = excluded.expires_at, updated_at = now()`,
		get:  `SELECT sealed FROM signing_keys WHERE app = @app AND ` + live("expires_at"),
		take: `DELETE FROM signing_keys WHERE app = @app AND ` + live("expires_at") + ` RETURNING sealed`,
		del:  `DELETE FROM signing_keys WHERE app = @app`,
		// A live row refuses the batch; an absent key set holds
		// nothing (it is written by one Create, never raced by batches).
		guard: `SELECT aero2_refuse() FROM signing_keys WHERE app = @app AND ` + live("expires_at") + ` FOR UPDATE`,
	}
)

// recordsOf routes a key to its kind's SQL.
func recordsOf(key string) *recordSQL {
	if key == signingKeysKey {
		return &signingKeyRecords
	}
	return &genericRecords
}

func recArgs(app, key string, value []byte, ttl time.Duration) pgx.NamedArgs {
	a := pgx.NamedArgs{"app": app, "key": []byte(key), "ttl": us(ttl)}
	if value != nil {
		a["value"] = value
	} else {
		a["value"] = []byte{}
	}
	return a
}

func (s *Store) Create(ctx context.Context, app, key string, value []byte, ttl time.Duration) error {
	n, err := s.exec(ctx, recordsOf(key).create, recArgs(app, key, value, ttl))
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrExists
	}
	return nil
}

func (s *Store) Put(ctx context.Context, app, key string, value []byte, ttl time.Duration) error {
	_, err := s.exec(ctx, recordsOf(key).put, recArgs(app, key, value, ttl))
	return err
}

func (s *Store) queryValue(ctx context.Context, sql string, args pgx.NamedArgs) ([]byte, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	var v []byte
	err = s.pool.QueryRow(ctx, sql, args).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

func (s *Store) Get(ctx context.Context, app, key string) ([]byte, error) {
	return s.queryValue(ctx, recordsOf(key).get, pgx.NamedArgs{"app": app, "key": []byte(key)})
}

func (s *Store) Take(ctx context.Context, app, key string) ([]byte, error) {
	return s.queryValue(ctx, recordsOf(key).take, pgx.NamedArgs{"app": app, "key": []byte(key)})
}

func (s *Store) Delete(ctx context.Context, app string, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	var generic [][]byte
	b := &pgx.Batch{}
	for _, k := range keys {
		if r := recordsOf(k); r != &genericRecords {
			b.Queue(r.del, pgx.NamedArgs{"app": app})
			continue
		}
		generic = append(generic, []byte(k))
	}
	if len(generic) > 0 {
		b.Queue(`DELETE FROM records WHERE app = @app AND key = ANY(@keys)`, pgx.NamedArgs{"app": app, "keys": generic})
	}
	return s.batch(ctx, b)
}
