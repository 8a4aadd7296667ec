package main

import (
	"context"
	"testing"
	"time"

	"github.com/aero2/aero2/store/postgres/pgtest"
	"github.com/aero2/aero2/store/redis/redistest"
)

// TestScenariosRun runs every scenario briefly on every store, so the
// benchmark cannot rot: each must complete requests without an error. It
// measures nothing.
func TestScenariosRun(t *testing.T) {
	for _, st := range []string{"memory", "redis", "postgres", "combined"} {
		t.Run(st, func(t *testing.T) {
			var addr, prefix, dsn string
			if st == "redis" || st == "combined" {
				rc := redistest.Config(t)
				addr, prefix = rc.Addrs[0], rc.KeyPrefix
			}
			if st == "postgres" || st == "combined" {
				dsn = pgtest.Config(t).DSN
			}
			cfg := StoreConfig(st, addr, prefix, dsn)
			target, err := Start(context.Background(), cfg, 2)
			if err != nil {
				t.Fatal(err)
			}
			defer target.Close()
			for _, sc := range Scenarios {
				ops, err := sc.Setup(target, 2)
				if err != nil {
					t.Fatalf("%s setup: %v", sc.Name, err)
				}
				r := Run(ops, 300*time.Millisecond)
				if r.Errors > 0 || r.Requests == 0 {
					t.Fatalf("%s: %d requests, %d errors, first: %v", sc.Name, r.Requests, r.Errors, r.FirstErr)
				}
			}
		})
	}
}

func TestRSACeilingCounts(t *testing.T) {
	if c, err := RSACeiling(100 * time.Millisecond); err != nil || c <= 0 {
		t.Fatalf("ceiling %v, %v", c, err)
	}
}
