package storetest

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aero2/aero2/store"
)

// runRateLimitTests covers store.RateLimits.
func runRateLimitTests(t *testing.T, newStore func(t *testing.T) store.Store) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"RateLimitBurst", testRateLimitBurst},
		{"RateLimitLookDoesNotSpend", testRateLimitLook},
		{"RateLimitRefills", testRateLimitRefills},
		{"RateLimitScoped", testRateLimitScoped},
		{"RateLimitSeveralBucketsAllOrNothing", testRateLimitAllOrNothing},
		{"RateLimitConcurrentSpendsNeverExceedBurst", testRateLimitConcurrent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
}

// hourly allows 5 at once, then one every 12 minutes: nothing refills
// during a test.
var hourly = store.Rate{Requests: 5, Period: time.Hour, Burst: 5}

func spend(t *testing.T, s store.Store, app, key string, r store.Rate, n int) store.RateResult {
	t.Helper()
	res, err := s.RateLimit(ctx(t), app, store.RateBucket{Key: key, Rate: r, N: n})
	mustNil(t, err, "rate limit")
	return res
}

func testRateLimitBurst(t *testing.T, s store.Store) {
	app := App(t)
	for i := range hourly.Burst {
		res := spend(t, s, app, "k", hourly, 1)
		if !res.Allowed || res.Remaining != hourly.Burst-1-i {
			t.Fatalf("spend %d = %+v, want allowed with %d remaining", i+1, res, hourly.Burst-1-i)
		}
	}
	res := spend(t, s, app, "k", hourly, 1)
	if res.Allowed || res.Remaining != 0 {
		t.Fatalf("spend past the burst = %+v, want refused", res)
	}
	// The next request's token comes back one interval (12 minutes) after
	// the first spend.
	if iv := hourly.Interval(); res.RetryAfter <= iv-time.Minute || res.RetryAfter > iv {
		t.Fatalf("RetryAfter = %s, want just under %s", res.RetryAfter, iv)
	}
	// A refused spend changed nothing: still refused, no later.
	again := spend(t, s, app, "k", hourly, 1)
	if again.Allowed || again.RetryAfter > res.RetryAfter {
		t.Fatalf("second refused spend = %+v after %+v: a refusal must not spend", again, res)
	}
}

func testRateLimitLook(t *testing.T, s store.Store) {
	app := App(t)
	for range 10 {
		if res := spend(t, s, app, "k", hourly, 0); !res.Allowed || res.Remaining != hourly.Burst {
			t.Fatalf("look at a fresh bucket = %+v, want allowed with %d remaining", res, hourly.Burst)
		}
	}
	for range hourly.Burst {
		spend(t, s, app, "k", hourly, 1)
	}
	if res := spend(t, s, app, "k", hourly, 0); res.Allowed || res.RetryAfter <= 0 {
		t.Fatalf("look at an empty bucket = %+v, want not allowed with a wait", res)
	}
}

func testRateLimitRefills(t *testing.T, s store.Store) {
	app := App(t)
	// One at a time, one every shortTTL.
	r := store.Rate{Requests: 1, Period: shortTTL, Burst: 1}
	if res := spend(t, s, app, "k", r, 1); !res.Allowed {
		t.Fatalf("first spend refused: %+v", res)
	}
	res := spend(t, s, app, "k", r, 1)
	if res.Allowed || res.RetryAfter <= 0 || res.RetryAfter > shortTTL {
		t.Fatalf("second spend = %+v, want refused for at most %s", res, shortTTL)
	}
	time.Sleep(waitOut)
	if res := spend(t, s, app, "k", r, 1); !res.Allowed {
		t.Fatalf("spend after the interval refused: %+v", res)
	}
}

func testRateLimitScoped(t *testing.T, s store.Store) {
	app, other := App(t), App(t)
	for range hourly.Burst {
		spend(t, s, app, "k", hourly, 1)
	}
	if res := spend(t, s, app, "k", hourly, 1); res.Allowed {
		t.Fatal("spend past the burst allowed")
	}
	if res := spend(t, s, app, "k2", hourly, 1); !res.Allowed {
		t.Fatal("another key shares the bucket")
	}
	if res := spend(t, s, other, "k", hourly, 1); !res.Allowed {
		t.Fatal("another application shares the bucket")
	}
}

func testRateLimitConcurrent(t *testing.T, s store.Store) {
	app := App(t)
	r := store.Rate{Requests: 10, Period: time.Hour, Burst: 10}
	var allowed atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, takers)
	for range takers {
		wg.Go(func() {
			res, err := s.RateLimit(ctx(t), app, store.RateBucket{Key: "k", Rate: r, N: 1})
			if err != nil {
				errs <- err
				return
			}
			if res.Allowed {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent spend: %v", err)
	}
	if got := allowed.Load(); got != int32(r.Burst) {
		t.Fatalf("%d of %d concurrent spends allowed, want exactly the burst (%d)", got, takers, r.Burst)
	}
}

func testRateLimitAllOrNothing(t *testing.T, s store.Store) {
	app := App(t)
	one := store.Rate{Requests: 1, Period: time.Hour, Burst: 1}
	call := func(buckets ...store.RateBucket) store.RateResult {
		t.Helper()
		res, err := s.RateLimit(ctx(t), app, buckets...)
		mustNil(t, err, "rate limit")
		return res
	}
	// Spending from a and b at once: both have room, both are spent.
	res := call(store.RateBucket{Key: "a", Rate: hourly, N: 1}, store.RateBucket{Key: "b", Rate: one, N: 1})
	if !res.Allowed || res.Remaining != 0 {
		t.Fatalf("first spend of a and b = %+v, want allowed, fewest remaining 0 (b)", res)
	}
	// b is empty now: a spend of a and b is refused, and spends none of a.
	res = call(store.RateBucket{Key: "a", Rate: hourly, N: 1}, store.RateBucket{Key: "b", Rate: one, N: 1})
	if res.Allowed || res.RetryAfter <= 0 {
		t.Fatalf("spend of a and an empty b = %+v, want refused", res)
	}
	if res := spend(t, s, app, "a", hourly, 0); res.Remaining != hourly.Burst-1 {
		t.Fatalf("a has %d left, want %d: a refused call must spend nothing", res.Remaining, hourly.Burst-1)
	}
	// Spending a while only looking at b: refused too.
	if res := call(store.RateBucket{Key: "a", Rate: hourly, N: 1}, store.RateBucket{Key: "b", Rate: one}); res.Allowed {
		t.Fatalf("spend of a with a look at an empty b = %+v, want refused", res)
	}
}
