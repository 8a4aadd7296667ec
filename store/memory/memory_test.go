package memory_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/memory"
	"github.com/aero2/aero2/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return memory.New() })
}

func TestAdminConformance(t *testing.T) {
	storetest.RunAdmin(t, func(t *testing.T) storetest.AdminStore { return memory.New() })
}

// TestSweepFreesExpiredEntries checks that expired entries leave memory,
// not only that they become invisible (which the suite checks).
func TestSweepFreesExpiredEntries(t *testing.T) {
	var now atomic.Int64 // the sweeper reads the clock from its goroutine
	now.Store(1_000_000)
	s := memory.New(memory.WithClock(func() time.Time { return time.Unix(now.Load(), 0) }), memory.WithSweepInterval(time.Millisecond))
	defer s.Close()
	ctx := t.Context()
	if err := s.Put(ctx, "app", "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	sess := &store.Session{ID: "s", App: "app", UserID: "u"}
	if err := s.CreateSession(ctx, sess, time.Minute); err != nil {
		t.Fatal(err)
	}
	now.Add(120)
	deadline := time.Now().Add(5 * time.Second)
	for s.Len() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d entries still in memory after expiry", s.Len())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBroadcasts(t *testing.T) {
	st := memory.New()
	defer st.Close()
	storetest.Broadcasts(t, st, st)
}
