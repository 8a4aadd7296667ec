package postgres

import (
	"context"
	"time"

	"github.com/aero2/aero2/store"
)

// PostgreSQL does not broadcast here (LISTEN/NOTIFY is not wired): a
// subscriber never hears a Fresh notice, so it never trusts a broadcast
// to reach it, and caches only as long as it would without one.

func (s *Store) Broadcast(context.Context, string, string) error { return nil }

func (s *Store) Subscribe(ctx context.Context, _ string, _ time.Duration, _ func(store.Notice)) {
	<-ctx.Done()
}
