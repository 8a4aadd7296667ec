package postgres

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/aero2/aero2/store"
)

var _ store.Admin = (*Store)(nil)

// SetUserDisabled sets the user's disabled flag.
func (s *Store) SetUserDisabled(ctx context.Context, app, id string, disabled bool) error {
	n, err := s.exec(ctx, `UPDATE users SET disabled = @disabled WHERE app = @app AND id = @id`,
		pgx.NamedArgs{"app": app, "id": clean(id), "disabled": disabled})
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// DeleteUser deletes the user; its identities go with it (the foreign
// key's ON DELETE CASCADE), and so does its entry in the verified-email
// index, which is the row itself.
func (s *Store) DeleteUser(ctx context.Context, app, id string) error {
	n, err := s.exec(ctx, `DELETE FROM users WHERE app = @app AND id = @id`, pgx.NamedArgs{"app": app, "id": clean(id)})
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// ListSessions returns every live session of app.
func (s *Store) ListSessions(ctx context.Context, app string) ([]*store.Session, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE app = @app AND `+live("expires_at"), pgx.NamedArgs{"app": app})
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*store.Session, error) { return scanSession(r) })
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return out, nil
}

// SetKeys returns the keys of app's live sets that begin with prefix:
// generic sets, and consents under the keys authz names them by
// (store.ConsentKey; octet_length, as Go's len counts bytes).
func (s *Store) SetKeys(ctx context.Context, app, prefix string) ([]string, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT key FROM sets
			WHERE app = @app AND substring(key FROM 1 FOR octet_length(@prefix::bytea)) = @prefix::bytea AND `+live("expires_at")+`
		UNION ALL SELECT convert_to('`+consentKeyPrefix+`' || octet_length(user_id) || ':' || user_id || ':' || client_id, 'UTF8')
			FROM consents WHERE app = @app AND `+live("expires_at"),
		pgx.NamedArgs{"app": app, "prefix": []byte(prefix)})
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var k []byte
		err := r.Scan(&k)
		return string(k), err
	})
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := keys[:0]
	for _, k := range keys {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	return out, nil
}

// consentKeyPrefix is what store.ConsentKey starts with.
var consentKeyPrefix = strings.TrimSuffix(store.ConsentKey("", ""), "0::")
