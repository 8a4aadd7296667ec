package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/aero2/aero2/store"
)

// Broadcasts holds a backend that broadcasts (memory, Redis) to the
// contract of store.Broadcasts: two subscribers (publisher and listener
// may be one store or two on one server) hear a Fresh notice, then every
// message broadcast on their channel and none of another, and heartbeats.
func Broadcasts(t *testing.T, pub, sub store.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	channel := "test-" + App(t)
	got := make(chan store.Notice, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sub.Subscribe(ctx, channel, 50*time.Millisecond, func(n store.Notice) { got <- n })
	}()
	next := func(what string, want func(store.Notice) bool) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case n := <-got:
				if want(n) {
					return
				}
			case <-deadline:
				t.Fatalf("no %s within 5s", what)
			}
		}
	}
	next("fresh notice", func(n store.Notice) bool { return n.Fresh })
	mustNil(t, pub.Broadcast(ctx, "other-"+App(t), "not for us"), "broadcast elsewhere")
	mustNil(t, pub.Broadcast(ctx, channel, "hello"), "broadcast")
	next("message", func(n store.Notice) bool {
		if n.Message == "not for us" {
			t.Fatal("heard a message of another channel")
		}
		return n.Message == "hello"
	})
	next("heartbeat", func(n store.Notice) bool { return n.Message == "" && !n.Fresh })
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Subscribe did not return when its context ended")
	}
}

// NoBroadcasts holds a backend that cannot broadcast (PostgreSQL) to
// saying so: Broadcast succeeds, and a subscriber hears nothing, no Fresh
// notice above all (which would make it trust broadcasts that never come).
func NoBroadcasts(t *testing.T, s store.Store) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	heard := 0
	if err := s.Broadcast(ctx, "test", "hello"); err != nil {
		t.Fatalf("broadcast: %v", err)
	}
	s.Subscribe(ctx, "test", 50*time.Millisecond, func(store.Notice) { heard++ })
	if heard != 0 {
		t.Fatalf("a store that cannot broadcast delivered %d notices", heard)
	}
}
