package servertest

import (
	"os"
	"testing"

	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/combined"
	"github.com/aero2/aero2/store/postgres/pgtest"
	"github.com/aero2/aero2/store/redis/redistest"
)

// EnvStore selects the shared store the end-to-end tests run on:
// redis (the default), postgres or combined (PostgreSQL for data of
// record, Redis for short-lived state). ./scripts/test runs the e2e
// packages once more with each of postgres and combined.
const EnvStore = "AERO2_TEST_STORE"

// SharedStore returns a fresh store of the kind EnvStore selects, on the
// real servers ./scripts/test starts, closed when the test ends. An
// unknown value fails the test.
func SharedStore(t testing.TB) store.Store {
	t.Helper()
	switch k := os.Getenv(EnvStore); k {
	case "", "redis":
		return redistest.New(t)
	case "postgres":
		return pgtest.New(t)
	case "combined":
		return combined.New(pgtest.New(t), redistest.New(t))
	default:
		t.Fatalf("%s=%q: expected redis, postgres or combined", EnvStore, k)
		return nil
	}
}

// selectedStore is the store StartWith substitutes for a config's memory
// store when EnvStore names another (nil when it names none), so that the
// whole suite, not only its Redis variants, runs on that store.
func selectedStore(t testing.TB) store.Store {
	switch os.Getenv(EnvStore) {
	case "", "redis", "memory":
		return nil
	}
	return SharedStore(t)
}
