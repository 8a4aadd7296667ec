package ratelimit_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/ratelimit"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/memory"
	"github.com/aero2/aero2/store/redis/redistest"
)

func backends(t *testing.T, fn func(t *testing.T, st store.RateLimits)) {
	t.Run("memory", func(t *testing.T) {
		st := memory.New()
		t.Cleanup(func() { st.Close() })
		fn(t, st)
	})
	t.Run("redis", func(t *testing.T) { fn(t, redistest.New(t)) })
}

func from(addr string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = addr
	return r
}

// limits is the defaults with a tight token limit: 3 per address, 2 per
// client, per hour.
func limits() config.RateLimits {
	c := config.DefaultRateLimits()
	c.Token = config.ClientLimit{
		PerAddress: config.Rate{Requests: 3, Per: time.Hour, Burst: 3},
		PerClient:  config.Rate{Requests: 2, Per: time.Hour, Burst: 2},
	}
	c.Revoke.PerAddress = config.Rate{Unlimited: true}
	return c
}

func TestAllowCountsEachKeyApart(t *testing.T) {
	backends(t, func(t *testing.T, st store.RateLimits) {
		l := ratelimit.New(st, limits(), nil)
		ctx := t.Context()
		a, b := ratelimit.Address(from("192.0.2.1:1000")), ratelimit.Address(from("192.0.2.2:1000"))
		for i := range 3 {
			if d := l.Allow(ctx, "app", ratelimit.Token, a); !d.Allowed {
				t.Fatalf("request %d from a refused", i+1)
			}
		}
		d := l.Allow(ctx, "app", ratelimit.Token, a)
		if d.Allowed || d.RetryAfter <= 0 || d.RetryAfter > 20*time.Minute {
			t.Fatalf("4th request from a = %+v, want refused for at most 20m", d)
		}
		// Another address, another application: buckets of their own.
		if !l.Allow(ctx, "app", ratelimit.Token, b).Allowed || !l.Allow(ctx, "other", ratelimit.Token, a).Allowed {
			t.Fatal("another address or application shares a's bucket")
		}
		// Per client: 2, whatever the address.
		c := ratelimit.Client("svc")
		if !l.Allow(ctx, "app", ratelimit.Token, b, c).Allowed || !l.Allow(ctx, "app", ratelimit.Token, c).Allowed {
			t.Fatal("client's first two refused")
		}
		if l.Allow(ctx, "app", ratelimit.Token, c).Allowed {
			t.Fatal("client's third allowed")
		}
		// Peek does not spend.
		for range 3 {
			if !l.Check(ctx, "app", ratelimit.Peek(ratelimit.Token, b)).Allowed {
				t.Fatal("b has room for one more")
			}
		}
		if l.Check(ctx, "app", ratelimit.Peek(ratelimit.Token, a)).Allowed {
			t.Fatal("look at a's empty bucket allowed")
		}
	})
}

// TestCheckSpendsAllOrNothing: a spend with a look at an empty failure
// bucket is refused, and spends nothing.
func TestCheckSpendsAllOrNothing(t *testing.T) {
	backends(t, func(t *testing.T, st store.RateLimits) {
		c := limits()
		c.ClientAuthFailures.PerAddress = config.Rate{Requests: 1, Per: time.Hour, Burst: 1}
		l := ratelimit.New(st, c, nil)
		ctx, a := t.Context(), ratelimit.Address(from("192.0.2.9:1"))
		l.Allow(ctx, "app", ratelimit.ClientAuthFailures, a) // one failure: used up
		for range 5 {
			if d := l.Check(ctx, "app", ratelimit.Spend(ratelimit.Token, a), ratelimit.Peek(ratelimit.ClientAuthFailures, a)); d.Allowed {
				t.Fatal("allowed with the failures used up")
			}
		}
		// The refused checks spent none of the 3 token requests.
		for i := range 3 {
			if !l.Allow(ctx, "app", ratelimit.Token, a).Allowed {
				t.Fatalf("token request %d refused: a refused check spent it", i+1)
			}
		}
	})
}

func TestIPv6CountsBySlash64(t *testing.T) {
	backends(t, func(t *testing.T, st store.RateLimits) {
		l := ratelimit.New(st, limits(), nil)
		for _, addr := range []string{"[2001:db8:1:2::1]:1", "[2001:db8:1:2:ffff::9]:2", "[2001:db8:1:2::3]:3"} {
			if !l.Allow(t.Context(), "app", ratelimit.Token, ratelimit.Address(from(addr))).Allowed {
				t.Fatalf("%s refused", addr)
			}
		}
		if l.Allow(t.Context(), "app", ratelimit.Token, ratelimit.Address(from("[2001:db8:1:2:abcd::1]:4"))).Allowed {
			t.Fatal("a fourth address of the same /64 has a bucket of its own")
		}
		if !l.Allow(t.Context(), "app", ratelimit.Token, ratelimit.Address(from("[2001:db8:1:3::1]:4"))).Allowed {
			t.Fatal("the next /64 shares the bucket")
		}
		// An IPv4-mapped address is the IPv4 address.
		v4, mapped := ratelimit.Address(from("192.0.2.7:1")), ratelimit.Address(from("[::ffff:192.0.2.7]:1"))
		if v4 != mapped {
			t.Fatalf("%v and %v are one client", v4, mapped)
		}
	})
}

func TestOffLimitsAllow(t *testing.T) {
	st := memory.New()
	defer st.Close()
	ctx := t.Context()
	var nilLimiter *ratelimit.Limiter
	off := config.DefaultRateLimits()
	off.Disabled = true
	if ratelimit.New(st, off, nil) != nil {
		t.Fatal("disabled limits built a limiter")
	}
	l := ratelimit.New(st, limits(), nil)
	a := ratelimit.Address(from("192.0.2.1:1"))
	for range 10 {
		for what, d := range map[string]ratelimit.Decision{
			"nil limiter":       nilLimiter.Allow(ctx, "app", ratelimit.Token, a),
			"unlimited":         l.Allow(ctx, "app", ratelimit.Revoke, a),
			"exempt (internal)": l.Allow(ratelimit.Exempt(ctx), "app", ratelimit.Token, a),
			"empty key":         l.Allow(ctx, "app", ratelimit.Token, ratelimit.Client("")),
		} {
			if !d.Allowed {
				t.Fatalf("%s refused", what)
			}
		}
	}
}

// down is a store that cannot be reached.
type down struct{}

func (down) RateLimit(context.Context, string, ...store.RateBucket) (store.RateResult, error) {
	return store.RateResult{}, store.ErrUnavailable
}

func TestUnreachableStoreAllows(t *testing.T) {
	l := ratelimit.New(down{}, limits(), nil)
	for range 5 {
		if !l.Allow(t.Context(), "app", ratelimit.Token, ratelimit.Address(from("192.0.2.1:1"))).Allowed {
			t.Fatal("refused because the store is down: the endpoint's own checks fail closed, the limiter must not add an outage")
		}
	}
}

func TestWriteJSON(t *testing.T) {
	w := httptest.NewRecorder()
	ratelimit.WriteJSON(w, ratelimit.Decision{RetryAfter: 2100 * time.Millisecond})
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "3" || w.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("status %d, headers %v", w.Code, w.Header())
	}
	var body struct{ Error, ErrorDescription string }
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if body.Error != "temporarily_unavailable" {
		t.Fatalf("body %s", w.Body)
	}
	w = httptest.NewRecorder()
	ratelimit.WritePage(w, "", ratelimit.Decision{RetryAfter: time.Millisecond})
	if n, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || n != 1 || w.Code != http.StatusTooManyRequests {
		t.Fatalf("page: status %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
}
