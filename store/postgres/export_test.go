package postgres

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aero2/aero2/config"
)

// MigrateTo brings the schema at cfg.DSN to version v only: the schema
// an older aero2 left, for the tests of a later migration.
func MigrateTo(ctx context.Context, cfg config.Postgres, v int) error {
	pool, err := pgxpool.New(ctx, cfg.DSN)
	if err != nil {
		return err
	}
	defer pool.Close()
	_, err = migrateTo(ctx, pool, migrations[:v])
	return err
}
