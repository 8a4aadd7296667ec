package postgres_test

import (
	"testing"

	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/postgres/pgtest"
	"github.com/aero2/aero2/store/storetest"
)

// TestConformance runs the suite against the real PostgreSQL that
// ./scripts/test starts.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return pgtest.New(t) })
	storetest.RunAdmin(t, func(t *testing.T) storetest.AdminStore { return pgtest.New(t) })
}

func TestNoBroadcasts(t *testing.T) {
	storetest.NoBroadcasts(t, pgtest.New(t))
}
