package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aero2/aero2/config"
)

// Migrations are SQL files named NNNN_what.sql, applied in order, each
// once, each in its own transaction together with its row in
// schema_migrations. They only ever move forward: a released file is
// never edited; a change is a new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

var migrations = mustLoadMigrations()

func mustLoadMigrations() []migration {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		panic(err)
	}
	var out []migration
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "migrations/"), ".sql")
		num, name, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			panic("postgres: migration file " + n + " is not named NNNN_name.sql")
		}
		body, err := migrationFiles.ReadFile(n)
		if err != nil {
			panic(err)
		}
		out = append(out, migration{v, name, string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, m := range out {
		if m.version != i+1 {
			panic(fmt.Sprintf("postgres: migrations must be numbered 1, 2, 3, …; found %d at position %d", m.version, i+1))
		}
	}
	return out
}

// Latest is the schema version this build needs.
func Latest() int { return len(migrations) }

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)`

// version is the schema's version: the highest applied migration, 0 on an
// empty database.
func version(ctx context.Context, pool *pgxpool.Pool) (int, error) {
	var v int
	err := pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v)
	if pgCode(err) == codeUndefined {
		return 0, nil
	}
	return v, err
}

// Applied is one migration Migrate ran.
type Applied struct {
	Version int
	Name    string
}

// Migrate brings the schema at cfg.DSN to Latest and reports what it
// applied (nothing when it was current). Concurrent Migrates (replicas
// started together with migrate_on_start) take turns on an advisory lock,
// so each migration runs once.
func Migrate(ctx context.Context, cfg config.Postgres) ([]Applied, error) {
	pc, err := poolConfig(cfg)
	if err != nil {
		return nil, err
	}
	pc.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres at %s: %w", Where(cfg.DSN), oneLine(err))
	}
	defer pool.Close()
	return migrate(ctx, pool)
}

func migrate(ctx context.Context, pool *pgxpool.Pool) ([]Applied, error) {
	return migrateTo(ctx, pool, migrations)
}

// migrateTo applies what is missing of ms (a prefix of migrations; tests
// build older schemas with one).
func migrateTo(ctx context.Context, pool *pgxpool.Pool, ms []migration) ([]Applied, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	defer conn.Release()
	// The lock is per schema, so that databases holding several Aero2
	// schemas (tests do) migrate each on its own.
	const lock = `SELECT pg_advisory_lock(hashtext('aero2 migrate ' || current_schema()))`
	if _, err := conn.Exec(ctx, lock); err != nil {
		return nil, fmt.Errorf("postgres: taking the migration lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(hashtext('aero2 migrate ' || current_schema()))`)
	if _, err := conn.Exec(ctx, createMigrationsTable); err != nil {
		return nil, fmt.Errorf("postgres: creating schema_migrations: %w", err)
	}
	var have int
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
		return nil, fmt.Errorf("postgres: reading schema_migrations: %w", err)
	}
	var done []Applied
	for _, m := range ms[min(have, len(ms)):] {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name)
			return err
		})
		if err != nil {
			return done, fmt.Errorf("postgres: migration %04d_%s: %w", m.version, m.name, err)
		}
		done = append(done, Applied{m.version, m.name})
	}
	return done, nil
}

// Version reports the schema version of the database at cfg.DSN and the
// version this build needs.
func Version(ctx context.Context, cfg config.Postgres) (have, want int, err error) {
	pc, err := poolConfig(cfg)
	if err != nil {
		return 0, 0, err
	}
	pc.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return 0, 0, fmt.Errorf("postgres at %s: %w", Where(cfg.DSN), oneLine(err))
	}
	defer pool.Close()
	have, err = version(ctx, pool)
	if err != nil {
		return 0, 0, fmt.Errorf("postgres at %s: %w", Where(cfg.DSN), oneLine(err))
	}
	return have, Latest(), nil
}
