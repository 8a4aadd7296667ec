// Package pgtest connects tests to the real PostgreSQL that the test
// command starts (./scripts/test starts a private cluster and exports
// AERO2_TEST_POSTGRES_DSN). A test that needs PostgreSQL fails, loudly,
// when there is none: it never skips.
//
// Each store a test opens lives in a schema of its own (dropped when the
// test ends), so tests and packages running at once never see each
// other's rows and each starts from an empty, freshly migrated schema.
package pgtest

import (
	"context"
	"crypto/rand"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/store/postgres"
)

// EnvDSN names the variable that holds the test cluster's DSN.
const EnvDSN = "AERO2_TEST_POSTGRES_DSN"

// DSN is the test cluster's connection string; it fails the test when
// there is none.
func DSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(EnvDSN)
	if dsn == "" {
		t.Fatalf("PostgreSQL is required and %s is not set: run ./scripts/test, which starts a private cluster, or point %s at one", EnvDSN, EnvDSN)
	}
	return dsn
}

var (
	adminOnce sync.Once
	admin     *pgxpool.Pool
	adminErr  error
)

func adminPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	dsn := DSN(t)
	adminOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		admin, adminErr = pgxpool.New(ctx, dsn)
		if adminErr == nil {
			adminErr = admin.Ping(ctx)
		}
	})
	if adminErr != nil {
		t.Fatalf("PostgreSQL at %s does not answer (%v): run ./scripts/test, which starts it", postgres.Where(dsn), adminErr)
	}
	return admin
}

// WithSearchPath returns dsn with search_path set to schema.
func WithSearchPath(dsn, schema string) string {
	if strings.Contains(dsn, "://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return dsn
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " search_path=" + schema
}

// Config returns store settings for a new, empty schema of the test's own
// (not migrated). The schema is dropped when the test ends.
func Config(t testing.TB) config.Postgres {
	t.Helper()
	pool := adminPool(t)
	schema := "t_" + strings.ToLower(rand.Text()[:16])
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatalf("create test schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := pool.Exec(context.Background(), `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("drop test schema %s: %v", schema, err)
		}
	})
	return config.Postgres{
		DSN:            WithSearchPath(DSN(t), schema),
		MaxConns:       8,
		ConnectTimeout: 2 * time.Second,
		QueryTimeout:   5 * time.Second,
		SweepInterval:  time.Minute,
	}
}

// New opens a store on a fresh, migrated schema (see Config).
func New(t testing.TB) *postgres.Store {
	t.Helper()
	return Open(t, Config(t))
}

// Open migrates the schema cfg names and opens a store on it, closed when
// the test ends.
func Open(t testing.TB, cfg config.Postgres) *postgres.Store {
	t.Helper()
	cfg.MigrateOnStart = true
	s, err := postgres.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("open PostgreSQL store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
