package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/postgres"
	"github.com/aero2/aero2/store/postgres/pgtest"
	"github.com/aero2/aero2/store/redis"
	"github.com/aero2/aero2/store/redis/redistest"
)

// TestCheckPostgresConfig: check validates store.postgres with line:col,
// and never prints the DSN or its password.
func TestCheckPostgresConfig(t *testing.T) {
	t.Setenv("AERO2_DATABASE_URL", "postgres://aero2:hunter2-secret@db.internal:5432/aero2?sslmode=verify-full")
	p := writeConfig(t, good+"store:\n  type: postgres\n  postgres: {dsn: \"${AERO2_DATABASE_URL}\", max_conns: 20, query_timeout: 2s}\n")
	if code, out, errs := runCmd(t, "check", "--config", p); code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("good postgres config: %d %q %q", code, out, errs)
	}
	t.Setenv("AERO2_DATABASE_URL", "postgres://aero2:hunter2-secret@db.internal:notaport/aero2")
	for _, c := range []struct {
		name, store, want string
	}{
		{"missing dsn", "store:\n  type: postgres\n", ":10:1: store.postgres.dsn: required"},
		{"invalid dsn", "store:\n  type: postgres\n  postgres:\n    dsn: \"${AERO2_DATABASE_URL}\"\n", ":13:5: store.postgres.dsn: not a PostgreSQL connection string"},
		{"literal password, invalid", "store:\n  type: postgres\n  postgres:\n    dsn: \"postgres://u:hunter2-secret@h:x/db\"\n", ":13:5: store.postgres.dsn: not a PostgreSQL"},
		{"negative pool", "store:\n  type: postgres\n  postgres:\n    dsn: \"postgres://h/db\"\n    max_conns: -1\n", ":14:5: store.postgres.max_conns: must not be negative"},
		{"negative timeout", "store:\n  type: postgres\n  postgres:\n    dsn: \"postgres://h/db\"\n    query_timeout: -1s\n", ":14:5: store.postgres.query_timeout: must not be negative"},
		{"combined without redis", "store:\n  type: combined\n  postgres: {dsn: \"postgres://h/db\"}\n", "store.redis.addrs: required for store type combined"},
		{"combined without postgres", "store:\n  type: combined\n  redis: {addrs: [\"127.0.0.1:6379\"]}\n", "store.postgres.dsn: required for store type combined"},
		{"unknown type", "store: {type: mysql}\n", "expected memory, redis, postgres or combined"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := writeConfig(t, good+c.store)
			code, out, errs := runCmd(t, "check", "--config", p)
			if code != 1 || !strings.Contains(errs, c.want) {
				t.Errorf("exit %d, stderr %q, want %q", code, errs, c.want)
			}
			if strings.Contains(errs+out, "hunter2") {
				t.Errorf("the password is printed: %q", errs)
			}
		})
	}
}

// TestMigrateAndServeOnAnOlderSchema: serve refuses an unmigrated
// database with one line that says to run aero2 migrate; migrate applies
// every migration once; then serve gets past the store.
func TestMigrateAndServeOnAnOlderSchema(t *testing.T) {
	pg := pgtest.Config(t)
	cfg := good + "store:\n  type: postgres\n  postgres: {dsn: \"" + pg.DSN + "\"}\n"
	p := writeConfig(t, cfg)
	code, _, errs := runCmd(t, "serve", "--config", p)
	lines := strings.Split(strings.TrimSpace(errs), "\n")
	last := lines[len(lines)-1]
	if code != 1 || !strings.HasPrefix(last, "aero2: ") || !strings.Contains(last, "run `aero2 migrate`") || !strings.Contains(last, "schema version 0") {
		t.Fatalf("serve on an empty database: exit %d, last line %q", code, last)
	}
	code, out, errs := runCmd(t, "migrate", "--config", p)
	if code != 0 || !strings.Contains(out, "applied 0001_initial") || !strings.Contains(out, "(current)") {
		t.Fatalf("migrate: %d %q %q", code, out, errs)
	}
	code, out, _ = runCmd(t, "migrate", "--config", p)
	if code != 0 || strings.Contains(out, "applied") {
		t.Fatalf("second migrate: %d %q", code, out)
	}
	have, want, err := postgres.Version(t.Context(), pg)
	if err != nil || have != want {
		t.Fatalf("version after migrate: %d/%d %v", have, want, err)
	}
	// Keys rotate works on the migrated database: the store opens.
	code, out, errs = runCmd(t, "keys", "rotate", "--config", p)
	if code != 0 || !strings.Contains(out, "rotated") {
		t.Fatalf("keys rotate on postgres: %d %q %q", code, out, errs)
	}
	// migrate_on_start: a fresh schema is migrated by the store itself.
	fresh := pgtest.Config(t)
	p = writeConfig(t, good+"store:\n  type: combined\n  postgres: {dsn: \""+fresh.DSN+"\", migrate_on_start: true}\n  redis: {addrs: [\""+redistest.Addr()+"\"], key_prefix: "+redistest.Config(t).KeyPrefix+"}\n")
	code, out, errs = runCmd(t, "keys", "rotate", "--config", p)
	if code != 0 || !strings.Contains(out, "rotated") {
		t.Fatalf("keys rotate with migrate_on_start: %d %q %q", code, out, errs)
	}
	// Other stores have nothing to migrate.
	if code, out, _ := runCmd(t, "migrate", "--config", writeConfig(t, good)); code != 0 || !strings.Contains(out, "nothing to migrate") {
		t.Fatalf("migrate on memory: %d %q", code, out)
	}
}

// TestStoreCopyRedisToPostgres: users with their identities, consents and
// signing keys move from Redis to PostgreSQL; a second run copies nothing
// and says so (idempotent); short-lived state stays behind.
func TestStoreCopyRedisToPostgres(t *testing.T) {
	ctx := t.Context()
	rc := redistest.Config(t)
	src, err := redis.Open(ctx, rc)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	now := time.Now().UTC().Truncate(time.Millisecond)
	for _, id := range []string{"u1", "u2"} {
		if err := src.CreateUser(ctx, &store.User{ID: id, App: "default", Name: "User " + id, Email: id + "@example.com", EmailVerified: true, CreatedAt: now, LastLogin: now},
			&store.Identity{App: "default", IDP: "dev", Subject: id, UserID: id, LinkedAt: now, LastLogin: now}); err != nil {
			t.Fatal(err)
		}
	}
	if err := src.LinkIdentity(ctx, &store.Identity{App: "default", IDP: "github", Subject: "42", UserID: "u1", Groups: []string{"acme"}, LinkedAt: now, LastLogin: now}); err != nil {
		t.Fatal(err)
	}
	if err := src.SetAdd(ctx, "default", store.ConsentKey("u1", "web"), time.Hour, "openid", "email"); err != nil {
		t.Fatal(err)
	}
	// A consent whose user the source no longer has: PostgreSQL's
	// foreign key refuses it, and the copy skips it and says so.
	if err := src.SetAdd(ctx, "default", store.ConsentKey("ghost", "web"), time.Hour, "openid"); err != nil {
		t.Fatal(err)
	}
	if err := src.Create(ctx, "default", store.SigningKeysKey, []byte("sealed key set"), 0); err != nil {
		t.Fatal(err)
	}
	if err := src.CreateSession(ctx, &store.Session{ID: "s1", App: "default", UserID: "u1"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	from := writeConfig(t, good+"store: {type: redis, redis: {addrs: [\""+redistest.Addr()+"\"], key_prefix: "+rc.KeyPrefix+"}}\n")
	pg := pgtest.Config(t)
	to := writeConfig(t, good+"store: {type: postgres, postgres: {dsn: \""+pg.DSN+"\"}}\n")
	if code, _, errs := runCmd(t, "store", "copy", "--from", from, "--to", to); code != 1 || !strings.Contains(errs, "run `aero2 migrate`") {
		t.Fatalf("copy into an unmigrated database: %d %q", code, errs)
	}
	if code, _, errs := runCmd(t, "migrate", "--config", to); code != 0 {
		t.Fatal(errs)
	}
	code, out, errs := runCmd(t, "store", "copy", "--from", from, "--to", to)
	if code != 0 || !strings.Contains(out, "default: users 2 copied, 0 already there; identities 3 copied, 0 already there; consents 1 copied, 0 already there; signing keys copied; 1 consents of users not in the destination skipped\n") {
		t.Fatalf("copy: %d %q %q", code, out, errs)
	}
	code, out, errs = runCmd(t, "store", "copy", "--from", from, "--to", to)
	if code != 0 || !strings.Contains(out, "users 0 copied, 2 already there; identities 0 copied, 3 already there; consents 0 copied, 1 already there; signing keys already there") {
		t.Fatalf("second copy: %d %q %q", code, out, errs)
	}
	dst := pgtest.Open(t, pg)
	u, id, err := dst.UserByIdentity(ctx, "default", "github", "42")
	if err != nil || u.ID != "u1" || u.Email != "u1@example.com" || !u.EmailVerified || len(id.Groups) != 1 {
		t.Fatalf("copied user: %+v %+v %v", u, id, err)
	}
	if m, err := dst.SetMembers(ctx, "default", store.ConsentKey("u1", "web")); err != nil || len(m) != 2 {
		t.Fatalf("copied consent: %v %v", m, err)
	}
	if v, err := dst.Get(ctx, "default", store.SigningKeysKey); err != nil || string(v) != "sealed key set" {
		t.Fatalf("copied keys: %q %v", v, err)
	}
	if _, err := dst.GetSession(ctx, "default", "s1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a session was copied: %v", err)
	}
	// Refusals: a memory store; different storage keys; missing flags.
	if code, _, errs := runCmd(t, "store", "copy", "--from", writeConfig(t, good), "--to", to); code != 1 || !strings.Contains(errs, "memory") {
		t.Errorf("copy from memory: %d %q", code, errs)
	}
	other := strings.Replace(good, "fedcba9876543210fedcba9876543210", "0000000000000000fedcba9876543210", 1)
	if code, _, errs := runCmd(t, "store", "copy", "--from", from, "--to", writeConfig(t, other+"store: {type: postgres, postgres: {dsn: \""+pg.DSN+"\"}}\n")); code != 1 || !strings.Contains(errs, "storage_key") {
		t.Errorf("copy between storage keys: %d %q", code, errs)
	}
	if code, _, _ := runCmd(t, "store", "copy", "--from", from); code != 2 {
		t.Errorf("copy without --to: %d", code)
	}
}
