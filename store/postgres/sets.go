package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/aero2/aero2/store"
)

// setSQL is the SQL of one kind of set: a row per set (its expiry, and the
// lock its writers take) and a row per member. Generic sets share sets and
// set_members; consents (authz keeps a user's grant to a client as the set
// of its scopes) have consents and consent_scopes, keyed by user and
// client.
type setSQL struct {
	// dropExpired deletes the set if it has expired (its members go with
	// it), so that an add starts a fresh one.
	dropExpired string
	// upsert creates the set or extends its life; it never shortens it.
	upsert  string
	add     string
	members string
	// lock, remove and dropEmpty remove members, and the set once empty
	// (as a Redis set vanishes with its last member); the lock orders a
	// removal after a concurrent add's commit.
	lock, remove, dropEmpty string
}

// extendExpiry is the new expiry of a live set given another add's ttl:
// never shorter, and "no expiry" wins.
func extendExpiry(t string) string {
	return `CASE WHEN ` + t + `.expires_at IS NULL OR excluded.expires_at IS NULL THEN NULL
		ELSE greatest(` + t + `.expires_at, excluded.expires_at) END`
}

var (
	genericSets = setSQL{
		dropExpired: `DELETE FROM sets WHERE app = @app AND key = @key AND expires_at <= now()`,
		upsert: `INSERT INTO sets AS s (app, key, expires_at) VALUES (@app, @key, ` + expiry("ttl") + `)
			ON CONFLICT (app, key) DO UPDATE SET expires_at = ` + extendExpiry("s"),
		add: `INSERT INTO set_members (app, key, member) SELECT @app, @key, m FROM unnest(@members::bytea[]) AS m
			ON CONFLICT DO NOTHING`,
		members: `SELECT m.member FROM set_members m JOIN sets s USING (app, key)
			WHERE s.app = @app AND s.key = @key AND ` + live("s.expires_at"),
		lock:      `SELECT 1 FROM sets WHERE app = @app AND key = @key FOR UPDATE`,
		remove:    `DELETE FROM set_members WHERE app = @app AND key = @key AND member = ANY(@members::bytea[])`,
		dropEmpty: `DELETE FROM sets s WHERE app = @app AND key = @key AND NOT EXISTS (SELECT 1 FROM set_members m WHERE m.app = s.app AND m.key = s.key)`,
	}
	consentSets = setSQL{
		dropExpired: `DELETE FROM consents WHERE app = @app AND user_id = @user AND client_id = @client AND expires_at <= now()`,
		upsert: `INSERT INTO consents AS c (app, user_id, client_id, expires_at) VALUES (@app, @user, @client, ` + expiry("ttl") + `)
			ON CONFLICT (app, user_id, client_id) DO UPDATE SET expires_at = ` + extendExpiry("c") + `, granted_at = now()`,
		add: `INSERT INTO consent_scopes (app, user_id, client_id, scope) SELECT @app, @user, @client, m FROM unnest(@scopes::text[]) AS m
			ON CONFLICT DO NOTHING`,
		members: `SELECT convert_to(s.scope, 'UTF8') FROM consent_scopes s JOIN consents c USING (app, user_id, client_id)
			WHERE c.app = @app AND c.user_id = @user AND c.client_id = @client AND ` + live("c.expires_at"),
		lock:   `SELECT 1 FROM consents WHERE app = @app AND user_id = @user AND client_id = @client FOR UPDATE`,
		remove: `DELETE FROM consent_scopes WHERE app = @app AND user_id = @user AND client_id = @client AND scope = ANY(@scopes::text[])`,
		dropEmpty: `DELETE FROM consents c WHERE app = @app AND user_id = @user AND client_id = @client
			AND NOT EXISTS (SELECT 1 FROM consent_scopes s WHERE s.app = c.app AND s.user_id = c.user_id AND s.client_id = c.client_id)`,
	}
)

// parseConsentKey splits a consent key (store.ConsentKey) into user and
// client; ok is false for any other key, which stays a generic set, and
// for user or client IDs that a text column cannot hold.
func parseConsentKey(key string) (user, client string, ok bool) {
	user, client, ok = store.ParseConsentKey(key)
	if !ok || !textual(user) || !textual(client) {
		return "", "", false
	}
	return user, client, true
}

// textual: s can be a text column (valid UTF-8, no NUL).
func textual(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// setOf routes a set key to its kind's SQL and arguments. Scopes are
// text: a member that cannot be (invalid UTF-8, NUL; fosite refuses such
// scopes long before consent) is stored with U+FFFD in their place.
func setOf(app, key string, members []string) (*setSQL, pgx.NamedArgs) {
	if user, client, ok := parseConsentKey(key); ok {
		scopes := make([]string, len(members))
		for i, m := range members {
			scopes[i] = clean(m)
		}
		return &consentSets, pgx.NamedArgs{"app": app, "user": user, "client": client, "scopes": scopes}
	}
	ms := make([][]byte, len(members))
	for i, m := range members {
		ms[i] = []byte(m)
	}
	return &genericSets, pgx.NamedArgs{"app": app, "key": []byte(key), "members": ms}
}

// clean makes s storable in a text column: PostgreSQL refuses invalid
// UTF-8 and NUL, which memory and Redis keep. Both become U+FFFD, as
// encoding/json does to invalid UTF-8.
func clean(s string) string {
	if textual(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// queueSetAdd queues SetAdd's statements on b.
func queueSetAdd(b *pgx.Batch, app, key string, ttl time.Duration, members []string) {
	q, args := setOf(app, key, members)
	args["ttl"] = us(ttl)
	b.Queue(q.dropExpired, args)
	b.Queue(q.upsert, args)
	b.Queue(q.add, args)
}

// queueSetRemove queues SetRemove's statements on b.
func queueSetRemove(b *pgx.Batch, app, key string, members []string) {
	q, args := setOf(app, key, members)
	b.Queue(q.lock, args)
	b.Queue(q.remove, args)
	b.Queue(q.dropEmpty, args)
}

func (s *Store) SetAdd(ctx context.Context, app, key string, ttl time.Duration, members ...string) error {
	if len(members) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	queueSetAdd(b, app, key, ttl, members)
	return consentUserGone(s.batch(ctx, b))
}

// consentUserGone maps the consents' foreign key refusing a consent of a
// user who does not exist (migration 3: deleted, say, while the consent
// page was open) to store.ErrNotFound; other errors pass as they are.
func consentUserGone(err error) error {
	if pgCode(err) == codeForeignKey {
		return fmt.Errorf("%w: the consent's user does not exist", store.ErrNotFound)
	}
	return err
}

func (s *Store) SetMembers(ctx context.Context, app, key string) ([]string, error) {
	q, args := setOf(app, key, nil)
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	rows, err := s.pool.Query(ctx, q.members, args)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var m []byte
		err := r.Scan(&m)
		return string(m), err
	})
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return out, nil
}

func (s *Store) SetRemove(ctx context.Context, app, key string, members ...string) error {
	if len(members) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	queueSetRemove(b, app, key, members)
	return s.batch(ctx, b)
}
