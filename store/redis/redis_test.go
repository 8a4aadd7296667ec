package redis_test

import (
	"testing"

	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/redis/redistest"
	"github.com/aero2/aero2/store/storetest"
)

// TestConformance runs the suite against the real Redis on 127.0.0.1:6379.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return redistest.New(t) })
}
