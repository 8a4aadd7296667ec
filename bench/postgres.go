package main

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aero2/aero2/store/postgres/pgtest"
)

// benchSchema creates a schema of the run's own in the database at dsn
// and returns a DSN whose search_path is that schema (Aero2 migrates it on
// start), and a function that drops it.
func benchSchema(dsn string) (string, func(), error) {
	if dsn == "" {
		return "", nil, errors.New("no PostgreSQL: pass -postgres DSN or set AERO2_DATABASE_URL")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", nil, err
	}
	schema := "aero2bench_" + strings.ToLower(rand.Text()[:10])
	if _, err := c.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		c.Close(ctx)
		return "", nil, err
	}
	c.Close(ctx)
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, dsn); err == nil {
			c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
			c.Close(ctx)
		}
	}
	return pgtest.WithSearchPath(dsn, schema), drop, nil
}
