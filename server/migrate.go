package server

import (
	"context"
	"fmt"
	"io"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/store/postgres"
)

// Migrate applies the PostgreSQL schema migrations this build has and the
// database lacks (the `aero2 migrate` command), and says what it did.
// Other stores have no schema: it says so and succeeds.
func Migrate(ctx context.Context, cfg *config.Config, out io.Writer) error {
	if cfg.Store.Type != "postgres" && cfg.Store.Type != "combined" {
		fmt.Fprintf(out, "nothing to migrate: store.type is %s, which has no schema\n", cfg.Store.Type)
		return nil
	}
	applied, err := postgres.Migrate(ctx, cfg.Store.Postgres)
	for _, a := range applied {
		fmt.Fprintf(out, "applied %04d_%s\n", a.Version, a.Name)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s: schema at version %d (current)\n", postgres.Where(cfg.Store.Postgres.DSN), postgres.Latest())
	return nil
}
