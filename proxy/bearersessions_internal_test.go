package proxy

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aero2/aero2/session"
)

// countedSessions is Aero2's own provider's sessions as the proxy sees
// them (a recordReader), counting the reads of one: each live session
// has the deadline ends and next touch touch.
type countedSessions struct {
	reads       atomic.Int64
	mu          sync.Mutex
	ended       map[string]bool
	ends, touch time.Time
	// gate, when set, holds every read until it is closed.
	gate chan struct{}
}

func (c *countedSessions) AliveUntil(_ context.Context, sid string) (session.Deadline, error) {
	c.reads.Add(1)
	if c.gate != nil {
		<-c.gate
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended[sid] {
		return session.Deadline{}, nil
	}
	return session.Deadline{Ends: c.ends, Touch: c.touch}, nil
}

func (c *countedSessions) Alive(ctx context.Context, sid string) (bool, error) {
	d, err := c.AliveUntil(ctx, sid)
	return d.Live(), err
}

func (c *countedSessions) AliveWithRecord(context.Context, string, string, func([]byte) bool) (session.Deadline, []byte, error) {
	panic("not a bearer token's read")
}

func (c *countedSessions) EndSession(context.Context, string, string) error { return nil }

func (c *countedSessions) end(sid string) {
	c.mu.Lock()
	c.ended[sid] = true
	c.mu.Unlock()
}

// TestBearerSessionCheckIsCached: the provider session a bearer token
// names is read once, then trusted as a cookie session's validation is:
// for session_cache, never past the provider session's deadline or next
// touch, and not at all once its ending is heard; an ended session, an ID
// the provider would not make, and a proxy without a cache are read
// every time.
func TestBearerSessionCheckIsCached(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	newSessions := func(ttl time.Duration) (*sessions, *countedSessions) {
		c := &countedSessions{ended: map[string]bool{}, ends: now.Add(time.Hour), touch: now.Add(10 * time.Minute)}
		return &sessions{alive: c, ttl: ttl, now: clock, cache: map[string]*live{}}, c
	}
	alive := func(t *testing.T, s *sessions, sid string, want bool) {
		t.Helper()
		ok, err := s.providerAlive(t.Context(), sid)
		if err != nil || ok != want {
			t.Fatalf("providerAlive(%q) = %v, %v; want %v", sid, ok, err, want)
		}
	}
	reads := func(t *testing.T, c *countedSessions, want int64) {
		t.Helper()
		if got := c.reads.Swap(0); got != want {
			t.Fatalf("%d reads of the provider session, want %d", got, want)
		}
	}

	t.Run("trusted for session_cache", func(t *testing.T) {
		s, c := newSessions(2 * time.Second)
		for range 5 {
			alive(t, s, "sid-a", true)
		}
		reads(t, c, 1)
		now = now.Add(2 * time.Second)
		alive(t, s, "sid-a", true)
		reads(t, c, 1)
	})
	t.Run("not past the next touch or the deadline", func(t *testing.T) {
		s, c := newSessions(time.Hour)
		s.longTTL = time.Hour
		c.touch = now.Add(time.Second)
		alive(t, s, "sid-b", true)
		now = now.Add(time.Second)
		alive(t, s, "sid-b", true)
		reads(t, c, 2)
		c.touch, c.ends = now.Add(time.Hour), now.Add(time.Second)
		alive(t, s, "sid-b", true) // the last read was trusted until its touch, now: read again
		now = now.Add(time.Second)
		alive(t, s, "sid-b", true)
		reads(t, c, 2)
	})
	t.Run("dropped when its ending is heard", func(t *testing.T) {
		s, c := newSessions(time.Minute)
		alive(t, s, "sid-c", true)
		alive(t, s, "sid-d", true)
		c.end("sid-c")
		s.forgetProviderSession("sid-c")
		alive(t, s, "sid-c", false)
		alive(t, s, "sid-c", false) // an ended session is not kept
		alive(t, s, "sid-d", true)  // another is
		reads(t, c, 4)
	})
	t.Run("no cache, or not an ID the provider makes", func(t *testing.T) {
		s, c := newSessions(0)
		alive(t, s, "sid-e", true)
		alive(t, s, "sid-e", true)
		reads(t, c, 2)
		s, c = newSessions(time.Minute)
		long := strings.Repeat("x", 65)
		for _, sid := range []string{long, long, "a.b", "a.b", "a b", "a b"} {
			alive(t, s, sid, true)
		}
		reads(t, c, 6)
		if len(s.sids) != 0 {
			t.Fatalf("cached %d IDs the provider does not make", len(s.sids))
		}
	})
	t.Run("concurrent requests share one read", func(t *testing.T) {
		s, c := newSessions(time.Minute)
		c.gate = make(chan struct{})
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() { alive(t, s, "sid-f", true) })
		}
		for c.reads.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		close(c.gate)
		wg.Wait()
		reads(t, c, 1)
	})
	t.Run("swept once no longer trusted", func(t *testing.T) {
		s, _ := newSessions(2 * time.Second)
		alive(t, s, "sid-g", true)
		now = now.Add(s.sweepEvery())
		alive(t, s, "sid-h", true)
		if _, kept := s.sids["sid-g"]; kept || len(s.sids) != 1 {
			t.Fatalf("after sweepEvery: %v", s.sids)
		}
	})
}
