package federation_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store/redis"
	"github.com/aero2/aero2/store/redis/redistest"
)

// TestSignInsDuringSlotMigration: browser sign-ins through the dev
// provider, on four workers, against a server whose store is a real
// three-master Redis Cluster, while the slots holding the users,
// identities and sessions they keep reading and writing move from master
// to master, each three times. Four users sign in again and again, so
// every one of those keys is in use while its slot moves. Every sign-in
// must end on the account page: not one 503.
func TestSignInsDuringSlotMigration(t *testing.T) {
	c := redistest.ClusterServer(t)
	cfg := c.Config(t)
	st, err := redis.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const users = 4
	in := servertest.Start(t, manyUsersConfig(users), st)
	// Every user signs in once first: the load then finds their records.
	for i := range users {
		if status, _, at, err := signInAt(in.URL, fmt.Sprintf("u%d", i)); err != nil || status != http.StatusOK {
			t.Fatalf("warm-up sign-in of u%d: %d %v at %.200s", i, status, err, at)
		}
	}
	var slots []int
	seen := map[int]bool{}
	for _, a := range c.Addrs {
		keys, err := c.Node(t, a).Keys(t.Context(), cfg.KeyPrefix+":default:*").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if sl := redis.Slot(k); !seen[sl] && len(slots) < 60 {
				seen[sl] = true
				slots = append(slots, sl)
			}
		}
	}

	var (
		mu     sync.Mutex
		bad    []string
		ok     atomic.Int64
		next   atomic.Int64
		during atomic.Bool
		okMid  atomic.Int64
	)
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				user := fmt.Sprintf("u%d", next.Add(1)%users)
				status, retryAfter, at, err := signInAt(in.URL, user)
				if err == nil && status == http.StatusOK {
					ok.Add(1)
					if during.Load() {
						okMid.Add(1)
					}
					continue
				}
				mu.Lock()
				bad = append(bad, fmt.Sprintf("%s: %d (Retry-After %v, %v) at %.200s", user, status, retryAfter, err, at))
				mu.Unlock()
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	during.Store(true)
	start := time.Now()
	moved := 0
	for range 3 {
		for _, sl := range slots {
			_, _, n := c.MigrateSlot(t, sl, 5*time.Millisecond)
			moved += n
		}
	}
	during.Store(false)
	elapsed := time.Since(start)
	time.Sleep(300 * time.Millisecond)
	stop()
	wg.Wait()
	t.Logf("%d slots moved three times (%d keys) in %v; %d sign-ins completed meanwhile, %d in all; %d failed", len(slots), moved, elapsed.Round(time.Millisecond), okMid.Load(), ok.Load(), len(bad))
	if len(bad) > 0 {
		t.Errorf("%d sign-ins did not end on the account page, e.g. %q", len(bad), bad[:min(len(bad), 5)])
	}
	if okMid.Load() == 0 {
		t.Error("no sign-in completed while the slots moved: the test measured nothing")
	}
}
