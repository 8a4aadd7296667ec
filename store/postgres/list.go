package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aero2/aero2/store"
)

var _ store.ConsentLister = (*Store)(nil)

// ListUsers returns every user of app.
func (s *Store) ListUsers(ctx context.Context, app string) ([]*store.User, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT `+userColumns+` FROM users WHERE app = @app ORDER BY id`, pgx.NamedArgs{"app": app})
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*store.User, error) { return scanUser(r) })
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return out, nil
}

// ListConsents returns every live consent of app with its scopes.
func (s *Store) ListConsents(ctx context.Context, app string) ([]store.Consent, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT c.user_id, c.client_id, array_agg(s.scope ORDER BY s.scope),
			coalesce((extract(epoch FROM c.expires_at - now()) * 1000000)::bigint, 0)
		FROM consents c JOIN consent_scopes s USING (app, user_id, client_id)
		WHERE c.app = @app AND `+live("c.expires_at")+` GROUP BY c.user_id, c.client_id, c.expires_at ORDER BY 1, 2`, pgx.NamedArgs{"app": app})
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Consent, error) {
		var c store.Consent
		var left int64
		err := r.Scan(&c.UserID, &c.ClientID, &c.Scopes, &left)
		c.TTL = time.Duration(left) * time.Microsecond
		return c, err
	})
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return out, nil
}
