package main

import (
	"strings"
	"testing"

	"github.com/aero2/aero2/store/postgres"
	"github.com/aero2/aero2/store/postgres/pgtest"
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
