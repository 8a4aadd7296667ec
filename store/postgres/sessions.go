package postgres

import (
	"context"
	"errors"
	"maps"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aero2/aero2/store"
)

const sessionColumns = `id, app, user_id, idp, auth_time, created_at, last_seen, ends_at, ip, user_agent, data`

func scanSession(row pgx.Row) (*store.Session, error) {
	var s store.Session
	err := row.Scan(&s.ID, &s.App, &s.UserID, &s.IDP, &s.AuthTime, &s.CreatedAt, &s.LastSeen, &s.ExpiresAt, &s.IP, &s.UserAgent, &s.Data)
	if err != nil {
		return nil, err
	}
	for _, t := range []*time.Time{&s.AuthTime, &s.CreatedAt, &s.LastSeen, &s.ExpiresAt} {
		*t = t.UTC()
	}
	if len(s.Data) == 0 {
		s.Data = nil
	}
	return &s, nil
}

func cleanData(d map[string]string) map[string]string {
	out := make(map[string]string, len(d))
	for k, v := range d {
		out[clean(k)] = clean(v)
	}
	return out
}

func (s *Store) CreateSession(ctx context.Context, sess *store.Session, ttl time.Duration) error {
	n, err := s.exec(ctx, `INSERT INTO sessions AS s (`+sessionColumns+`, expires_at)
		VALUES (@id, @app, @user, @idp, @auth_time, @created_at, @last_seen, @ends_at, @ip, @ua, @data, `+expiry("ttl")+`)
		ON CONFLICT (app, id) DO UPDATE SET user_id = excluded.user_id, idp = excluded.idp, auth_time = excluded.auth_time,
			created_at = excluded.created_at, last_seen = excluded.last_seen, ends_at = excluded.ends_at, ip = excluded.ip,
			user_agent = excluded.user_agent, data = excluded.data, expires_at = excluded.expires_at
		WHERE s.expires_at IS NOT NULL AND s.expires_at <= now()`,
		pgx.NamedArgs{"id": clean(sess.ID), "app": sess.App, "user": clean(sess.UserID), "idp": clean(sess.IDP),
			"auth_time": sess.AuthTime, "created_at": sess.CreatedAt, "last_seen": sess.LastSeen, "ends_at": sess.ExpiresAt,
			"ip": clean(sess.IP), "ua": clean(sess.UserAgent), "data": cleanData(maps.Clone(sess.Data)), "ttl": us(ttl)})
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrExists
	}
	return nil
}

func (s *Store) GetSession(ctx context.Context, app, id string) (*store.Session, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	sess, err := scanSession(s.pool.QueryRow(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE app = @app AND id = @id AND `+live("expires_at"), pgx.NamedArgs{"app": app, "id": clean(id)}))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return sess, nil
}

// GetSessionAndRecord sends both queries in one batch: one round trip.
func (s *Store) GetSessionAndRecord(ctx context.Context, app, id, key string) (*store.Session, []byte, error) {
	var sess *store.Session
	var v []byte
	b := &pgx.Batch{}
	b.Queue(`SELECT `+sessionColumns+` FROM sessions WHERE app = @app AND id = @id AND `+live("expires_at"),
		pgx.NamedArgs{"app": app, "id": clean(id)}).QueryRow(func(row pgx.Row) error {
		got, err := scanSession(row)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		sess = got
		return err
	})
	b.Queue(recordsOf(key).get, pgx.NamedArgs{"app": app, "key": []byte(key)}).QueryRow(func(row pgx.Row) error {
		err := row.Scan(&v)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err == nil && v == nil {
			v = []byte{}
		}
		return err
	})
	if err := s.batch(ctx, b); err != nil {
		return nil, nil, err
	}
	return sess, v, nil
}

// TouchSession writes only last_seen and the row's life, and neither when
// the row's last_seen is already as late: a touch that read the clock
// before a concurrent one and arrives after it changes nothing (the SET
// expressions read the row as it was).
func (s *Store) TouchSession(ctx context.Context, sess *store.Session, ttl time.Duration) error {
	n, err := s.exec(ctx, `UPDATE sessions SET
		last_seen = CASE WHEN last_seen < @last_seen THEN @last_seen ELSE last_seen END,
		expires_at = CASE WHEN last_seen < @last_seen THEN `+expiry("ttl")+` ELSE expires_at END
		WHERE app = @app AND id = @id AND `+live("expires_at"),
		pgx.NamedArgs{"app": sess.App, "id": clean(sess.ID), "last_seen": sess.LastSeen, "ttl": us(ttl)})
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

func (s *Store) DeleteSession(ctx context.Context, app, id string) error {
	_, err := s.exec(ctx, `DELETE FROM sessions WHERE app = @app AND id = @id`, pgx.NamedArgs{"app": app, "id": clean(id)})
	return err
}

func (s *Store) UserSessions(ctx context.Context, app, userID string) ([]*store.Session, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE app = @app AND user_id = @user AND `+live("expires_at"), pgx.NamedArgs{"app": app, "user": clean(userID)})
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*store.Session, error) { return scanSession(r) })
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return out, nil
}
