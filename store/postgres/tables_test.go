package postgres_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/postgres"
	"github.com/aero2/aero2/store/postgres/pgtest"
)

// The durable kinds are rows of typed tables, which psql shows and the
// constraints guard, not blobs in the records table.

func TestConsentsAreRows(t *testing.T) {
	s := pgtest.New(t)
	ctx := t.Context()
	// authz's key: "authz:consent:<len(user)>:<user>:<client>".
	key := "authz:consent:5:u:1:2:web:app"
	mkUser(t, s, "app", "u:1:2")
	if err := s.SetAdd(ctx, "app", key, time.Hour, "openid", "email"); err != nil {
		t.Fatal(err)
	}
	var user, client string
	var scopes []string
	err := s.Pool().QueryRow(ctx, `SELECT c.user_id, c.client_id, array_agg(s.scope ORDER BY s.scope)
		FROM consents c JOIN consent_scopes s USING (app, user_id, client_id) WHERE c.app = 'app' GROUP BY 1, 2`).Scan(&user, &client, &scopes)
	if err != nil {
		t.Fatal(err)
	}
	if user != "u:1:2" || client != "web:app" || !slices.Equal(scopes, []string{"email", "openid"}) {
		t.Fatalf("consent row: user %q client %q scopes %v", user, client, scopes)
	}
	var generic int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM set_members`).Scan(&generic); err != nil || generic != 0 {
		t.Fatalf("consent also written as a generic set: %d rows, %v", generic, err)
	}
	got, err := s.SetMembers(ctx, "app", key)
	if err != nil || !slices.Equal(sortedCopy(got), []string{"email", "openid"}) {
		t.Fatalf("SetMembers = %v, %v", got, err)
	}
	if err := s.SetRemove(ctx, "app", key, "openid", "email"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM consents`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("consent without scopes left behind: %d, %v", n, err)
	}
	// A key that only looks like one (a length that does not match) is a
	// generic set.
	if err := s.SetAdd(ctx, "app", "authz:consent:9:u:web", time.Hour, "x"); err != nil {
		t.Fatal(err)
	}
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM set_members`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("malformed consent key: %d generic members, %v", n, err)
	}
}

// mkUser stores user id in app, with one identity.
func mkUser(t *testing.T, s *postgres.Store, app, id string) {
	t.Helper()
	now := time.Now()
	if err := s.CreateUser(t.Context(), &store.User{ID: id, App: app, CreatedAt: now, LastLogin: now},
		&store.Identity{App: app, IDP: "gh", Subject: "sub-" + id, UserID: id, LinkedAt: now, LastLogin: now}); err != nil {
		t.Fatal(err)
	}
}

// TestConsentsBelongToUsers (issue 11): the consents table has a foreign
// key to users, as psql shows it; deleting a user deletes their consents
// (and their scopes); a consent for a user who does not exist is refused,
// through the store (ErrNotFound, alone or in a batch) and through SQL.
func TestConsentsBelongToUsers(t *testing.T) {
	s := pgtest.New(t)
	ctx := t.Context()
	var def string
	if err := s.Pool().QueryRow(ctx, `SELECT pg_get_constraintdef(oid) FROM pg_constraint
		WHERE conrelid = 'consents'::regclass AND contype = 'f' AND confrelid = 'users'::regclass`).Scan(&def); err != nil {
		t.Fatalf("no foreign key from consents to users: %v", err)
	}
	if def != "FOREIGN KEY (app, user_id) REFERENCES users(app, id) ON DELETE CASCADE" {
		t.Fatalf("consents' foreign key: %s", def)
	}
	mkUser(t, s, "app", "u1")
	mkUser(t, s, "app", "u2")
	for _, u := range []string{"u1", "u2"} {
		if err := s.SetAdd(ctx, "app", store.ConsentKey(u, "web"), time.Hour, "openid", "email"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Pool().Exec(ctx, `DELETE FROM users WHERE app = 'app' AND id = 'u1'`); err != nil {
		t.Fatal(err)
	}
	count := func(q string) int {
		t.Helper()
		var n int
		if err := s.Pool().QueryRow(ctx, q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(`SELECT count(*) FROM consents WHERE user_id = 'u1'`) + count(`SELECT count(*) FROM consent_scopes WHERE user_id = 'u1'`); n != 0 {
		t.Errorf("a deleted user's consent rows survive: %d", n)
	}
	if m, err := s.SetMembers(ctx, "app", store.ConsentKey("u2", "web")); err != nil || len(m) != 2 {
		t.Errorf("another user's consent: %v %v", m, err)
	}
	// The store's own delete goes the same way.
	if err := s.DeleteUser(ctx, "app", "u2"); err != nil {
		t.Fatal(err)
	}
	if n := count(`SELECT count(*) FROM consents`); n != 0 {
		t.Errorf("DeleteUser left %d consents", n)
	}
	// A consent for an absent user: refused whole (no half-written row).
	for _, user := range []string{"u1", "nobody"} {
		if err := s.SetAdd(ctx, "app", store.ConsentKey(user, "web"), time.Hour, "openid"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("SetAdd of a consent for absent user %s: %v, want ErrNotFound", user, err)
		}
	}
	err := s.Apply(ctx, "app", store.Op{Kind: store.OpPut, Key: "k", Value: []byte("v"), TTL: time.Hour},
		store.Op{Kind: store.OpSetAdd, Key: store.ConsentKey("nobody", "web"), TTL: time.Hour, Members: []string{"openid"}})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a batch with a consent for an absent user: %v, want ErrNotFound", err)
	}
	if _, err := s.Get(ctx, "app", "k"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the refused batch wrote its other op: %v", err)
	}
	if _, err := s.Pool().Exec(ctx, `INSERT INTO consents (app, user_id, client_id) VALUES ('app', 'nobody', 'web')`); pgCodeOf(err) != "23503" {
		t.Errorf("SQL insert of a consent for an absent user: %v", err)
	}
	// The same ID in another application is another user.
	mkUser(t, s, "other", "u3")
	if err := s.SetAdd(ctx, "app", store.ConsentKey("u3", "web"), time.Hour, "openid"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a consent in app for a user of another application: %v", err)
	}
}

// TestConsentForeignKeyMigration: migration 3 on a schema that version 2
// left with orphaned consents — Open refuses the older schema; migrating
// removes the orphans only, then adds the key.
func TestConsentForeignKeyMigration(t *testing.T) {
	cfg := pgtest.Config(t)
	ctx := t.Context()
	if err := postgres.MigrateTo(ctx, cfg, 2); err != nil {
		t.Fatal(err)
	}
	_, err := postgres.Open(ctx, cfg)
	if !errors.Is(err, postgres.ErrSchemaOutdated) || !strings.Contains(err.Error(), "schema version 2, this aero2 needs 3: run `aero2 migrate`") {
		t.Fatalf("open on a version 2 schema: %v", err)
	}
	pool, err := pgxpool.New(ctx, cfg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	for _, q := range []string{
		`INSERT INTO users (app, id, created_at, last_login) VALUES ('app', 'kept', now(), now())`,
		`INSERT INTO consents (app, user_id, client_id) VALUES ('app', 'kept', 'web'), ('app', 'gone', 'web'), ('other', 'kept', 'web')`,
		`INSERT INTO consent_scopes (app, user_id, client_id, scope) VALUES ('app', 'kept', 'web', 'openid'), ('app', 'gone', 'web', 'openid'), ('other', 'kept', 'web', 'openid')`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	applied, err := postgres.Migrate(ctx, cfg)
	if err != nil || len(applied) != 1 || applied[0].Version != 3 {
		t.Fatalf("migrate from 2: %v %v", applied, err)
	}
	var left []string
	rows, _ := pool.Query(ctx, `SELECT c.app || '/' || c.user_id || '/' || count(s.scope) FROM consents c
		LEFT JOIN consent_scopes s USING (app, user_id, client_id) GROUP BY c.app, c.user_id ORDER BY 1`)
	left, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || !slices.Equal(left, []string{"app/kept/1"}) {
		t.Fatalf("consents after migration 3: %v %v (want only the one whose user exists, with its scope)", left, err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM consent_scopes`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("consent_scopes after migration 3: %d %v", n, err)
	}
	s := pgtest.Open(t, cfg)
	if m, err := s.SetMembers(ctx, "app", store.ConsentKey("kept", "web")); err != nil || len(m) != 1 {
		t.Fatalf("the kept consent: %v %v", m, err)
	}
}

func pgCodeOf(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func sortedCopy(ss []string) []string {
	out := slices.Clone(ss)
	slices.Sort(out)
	return out
}

func TestSigningKeysAreARow(t *testing.T) {
	s := pgtest.New(t)
	ctx := t.Context()
	if err := s.Create(ctx, "app", "signing-keys", []byte("sealed-1"), 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, "app", "signing-keys", []byte("sealed-2"), 0); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second create of the key set: %v", err)
	}
	if err := s.Put(ctx, "app", "signing-keys", []byte("sealed-3"), 0); err != nil {
		t.Fatal(err)
	}
	var sealed []byte
	if err := s.Pool().QueryRow(ctx, `SELECT sealed FROM signing_keys WHERE app = 'app'`).Scan(&sealed); err != nil || string(sealed) != "sealed-3" {
		t.Fatalf("signing_keys row: %q, %v", sealed, err)
	}
	many, err := s.GetMany(ctx, "app", "other", "signing-keys")
	if err != nil || many[0] != nil || string(many[1]) != "sealed-3" {
		t.Fatalf("GetMany = %q, %v", many, err)
	}
	var n int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM records`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("key set also in records: %d, %v", n, err)
	}
}

// TestConstraintsHoldTheRules: the database itself refuses what the store
// API refuses, for writers that bypass it (an operator's psql, a restore).
func TestConstraintsHoldTheRules(t *testing.T) {
	s := pgtest.New(t)
	ctx := t.Context()
	now := time.Now()
	if err := s.CreateUser(ctx, &store.User{ID: "u1", App: "app", CreatedAt: now, LastLogin: now},
		&store.Identity{App: "app", IDP: "github", Subject: "1", UserID: "u1", LinkedAt: now, LastLogin: now}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		`INSERT INTO identities (app, idp, subject, user_id, linked_at, last_login) VALUES ('app', 'github', '1', 'u1', now(), now())`,
		`INSERT INTO identities (app, idp, subject, user_id, linked_at, last_login) VALUES ('app', 'github', '2', 'nobody', now(), now())`,
		`INSERT INTO users (app, id, created_at, last_login) VALUES ('app', '', now(), now())`,
	} {
		if _, err := s.Pool().Exec(ctx, bad); err == nil {
			t.Errorf("accepted: %s", bad)
		}
	}
	// Deleting a user deletes its identities.
	if _, err := s.Pool().Exec(ctx, `DELETE FROM users WHERE app = 'app' AND id = 'u1'`); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.UserByIdentity(ctx, "app", "github", "1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("identity outlived its user: %v", err)
	}
}

// TestHostileBytes: keys and values are opaque bytes (a NUL or invalid
// UTF-8 from a client is a key like any other, never a database error),
// and text from identity providers that PostgreSQL cannot hold is stored
// with U+FFFD rather than failing the sign-in.
func TestHostileBytes(t *testing.T) {
	s := pgtest.New(t)
	ctx := t.Context()
	key := "state:\x00\xff\xfe"
	if _, err := s.Take(ctx, "app", key); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("take of a NUL key: %v", err)
	}
	if err := s.Create(ctx, "app", key, []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Take(ctx, "app", key); err != nil || string(v) != "v" {
		t.Fatalf("take = %q, %v", v, err)
	}
	if err := s.SetAdd(ctx, "app", "idx\x00", time.Minute, "m\x00\xff"); err != nil {
		t.Fatal(err)
	}
	if m, err := s.SetMembers(ctx, "app", "idx\x00"); err != nil || len(m) != 1 || m[0] != "m\x00\xff" {
		t.Fatalf("members = %q, %v", m, err)
	}
	now := time.Now()
	u := &store.User{ID: "u1", App: "app", Name: "Eve\x00\xff", Groups: []string{"a\x00"}, CreatedAt: now, LastLogin: now}
	if err := s.CreateUser(ctx, u, &store.Identity{App: "app", IDP: "gh", Subject: "s", UserID: "u1", Username: "\x00", LinkedAt: now, LastLogin: now}); err != nil {
		t.Fatalf("create user with NUL in its name: %v", err)
	}
	got, err := s.GetUser(ctx, "app", "u1")
	if err != nil || got.Name != "Eve\uFFFD\uFFFD" || got.Groups[0] != "a\uFFFD" {
		t.Fatalf("user = %+v, %v", got, err)
	}
	if _, err := s.RateLimit(ctx, "app", store.RateBucket{Key: "ip:\x00", Rate: store.Rate{Requests: 1, Period: time.Minute, Burst: 1}, N: 1}); err != nil {
		t.Fatalf("rate limit on a NUL key: %v", err)
	}
}

func TestSweepDeletesExpiredRowsInBatches(t *testing.T) {
	s := pgtest.New(t)
	ctx := t.Context()
	const n = 4500 // more than two sweep batches
	if _, err := s.Pool().Exec(ctx, `INSERT INTO records (app, key, value, expires_at)
		SELECT 'app', convert_to('k' || i, 'UTF8'), '', now() - interval '1 second' FROM generate_series(1, $1) AS i`, n); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "app", "kept", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAdd(ctx, "app", "gone", time.Millisecond, "m"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSession(ctx, &store.Session{ID: "s", App: "app", UserID: "u"}, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	deleted, err := s.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if deleted != n+2 {
		t.Fatalf("swept %d rows, want %d", deleted, n+2)
	}
	var left int
	if err := s.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM records) + (SELECT count(*) FROM set_members) + (SELECT count(*) FROM sessions)`).Scan(&left); err != nil || left != 1 {
		t.Fatalf("%d rows left after the sweep, want only the live record (%v)", left, err)
	}
}

func TestMigrations(t *testing.T) {
	cfg := pgtest.Config(t)
	ctx := t.Context()
	// An empty schema: Open refuses it and says what to run.
	_, err := postgres.Open(ctx, cfg)
	if !errors.Is(err, postgres.ErrSchemaOutdated) || !strings.Contains(err.Error(), "run `aero2 migrate`") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("open on an empty schema: %v", err)
	}
	// Replicas migrating at once: each migration runs once.
	var wg sync.WaitGroup
	applied := make([][]postgres.Applied, 4)
	errs := make([]error, 4)
	for i := range applied {
		wg.Go(func() { applied[i], errs[i] = postgres.Migrate(ctx, cfg) })
	}
	wg.Wait()
	total := 0
	for i := range applied {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		total += len(applied[i])
	}
	if total != postgres.Latest() {
		t.Fatalf("concurrent migrations applied %d migrations, want %d once each", total, postgres.Latest())
	}
	have, want, err := postgres.Version(ctx, cfg)
	if err != nil || have != want || want != postgres.Latest() {
		t.Fatalf("version = %d/%d, %v", have, want, err)
	}
	s, err := postgres.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	// A schema older than the build: Open refuses it again.
	if _, err := s.Pool().Exec(ctx, `SELECT 1`); err == nil {
		t.Fatal("closed store still answers")
	}
	pool := pgtest.Open(t, cfg).Pool()
	if _, err := pool.Exec(ctx, `DELETE FROM schema_migrations WHERE version = $1`, postgres.Latest()); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.Open(ctx, config.Postgres{DSN: cfg.DSN}); !errors.Is(err, postgres.ErrSchemaOutdated) {
		t.Fatalf("open on an older schema: %v", err)
	}
}

// TestUnreachableIsUnavailable: a database that cannot be reached is
// ErrUnavailable (503), its message names host and port but never the
// password, and the request's latch trips so its later calls fail at once.
func TestUnreachableIsUnavailable(t *testing.T) {
	s := pgtest.New(t)
	ctx := store.FailFast(t.Context())
	if _, err := postgres.Open(ctx, config.Postgres{DSN: "postgres://aero2:s3cret-pw@127.0.0.1:1/db", ConnectTimeout: time.Second}); err == nil ||
		strings.Contains(err.Error(), "s3cret-pw") || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("open of an unreachable database: %v", err)
	}
	s.Pool().Close() // as good as a database that went away
	_, err := s.Get(ctx, "app", "k")
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("get on a closed pool: %v", err)
	}
	if !store.LatchOf(ctx).Tripped() {
		t.Fatal("latch not tripped")
	}
	_, err = s.GetUser(ctx, "app", "u")
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "earlier call") {
		t.Fatalf("second call after an outage: %v", err)
	}
	// A request's own cancellation is not an outage.
	cctx, cancel := context.WithCancel(store.FailFast(context.Background()))
	cancel()
	s2 := pgtest.New(t)
	if _, err := s2.Get(cctx, "app", "k"); errors.Is(err, store.ErrUnavailable) || store.LatchOf(cctx).Tripped() {
		t.Fatalf("cancelled request: %v (latch %v)", err, store.LatchOf(cctx).Tripped())
	}
}

// TestLister: what aero2 store copy reads.
func TestLister(t *testing.T) {
	s := pgtest.New(t)
	ctx := t.Context()
	now := time.Now()
	for _, id := range []string{"b", "a"} {
		if err := s.CreateUser(ctx, &store.User{ID: id, App: "app", CreatedAt: now, LastLogin: now},
			&store.Identity{App: "app", IDP: "gh", Subject: id, UserID: id, LinkedAt: now, LastLogin: now}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetAdd(ctx, "app", store.ConsentKey("a", "web"), time.Hour, "openid", "email"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAdd(ctx, "app", store.ConsentKey("b", "web"), time.Millisecond, "openid"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	users, err := s.ListUsers(ctx, "app")
	if err != nil || len(users) != 2 || users[0].ID != "a" || users[1].ID != "b" {
		t.Fatalf("ListUsers = %v, %v", users, err)
	}
	if other, _ := s.ListUsers(ctx, "other"); len(other) != 0 {
		t.Fatal("ListUsers crosses applications")
	}
	cs, err := s.ListConsents(ctx, "app")
	if err != nil || len(cs) != 1 || cs[0].UserID != "a" || cs[0].ClientID != "web" || !slices.Equal(cs[0].Scopes, []string{"email", "openid"}) ||
		cs[0].TTL <= 59*time.Minute || cs[0].TTL > time.Hour {
		t.Fatalf("ListConsents = %+v, %v (the expired one must not be listed)", cs, err)
	}
}
