package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aero2/aero2/server"
	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/memory"
	"github.com/aero2/aero2/store/redis/redistest"
)

// The provider session's idle and absolute timeouts are not broadcast:
// nothing happens when one falls. These tests run one Aero2 server (its
// provider, and its proxy of that provider) on a clock the test moves,
// on the memory store (on the same clock) and on a real Redis, and check
// that the proxy's cache of a session, however long session_cache or
// session_cache_invalidated allow, ends at the provider session's
// deadline, on the replica that cached it and with no broadcast; and
// that it never hides an active user's requests from the idle timeout.

// skewClock is the real clock moved forward by the test.
type skewClock struct{ skew atomic.Int64 }

func (c *skewClock) Now() time.Time      { return time.Now().Add(time.Duration(c.skew.Load())) }
func (c *skewClock) Add(d time.Duration) { c.skew.Add(int64(d)) }

// heardStore tells when the proxy has heard a broadcast notice: the
// subscription's heartbeats are what the longer cache is trusted by, and
// after the clock moves, on the moved clock only from the next one.
type heardStore struct {
	*servertest.CountingStore
	// started and done count the notices handed to the proxy and
	// handled by it (one at a time: store.Broadcasts).
	started, done atomic.Int64
}

func (h *heardStore) Subscribe(ctx context.Context, channel string, heartbeat time.Duration, fn func(store.Notice)) {
	h.CountingStore.Subscribe(ctx, channel, heartbeat, func(n store.Notice) {
		h.started.Add(1)
		fn(n)
		h.done.Add(1)
	})
}

// await waits until a notice that began after the call (on the clock as
// it is now) has been handled.
func (h *heardStore) await(t *testing.T) {
	t.Helper()
	after := h.started.Load()
	for deadline := time.Now().Add(5 * time.Second); h.done.Load() <= after; time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no broadcast heartbeat in 5s")
		}
	}
}

// deadlineRig is a server of one application whose proxy signs in at
// its own provider.
type deadlineRig struct {
	in    *servertest.Instance
	host  string
	st    *heardStore
	clock *skewClock
}

// startDeadlineRig starts it on kind ("memory" or "redis") with the
// application's session and proxy settings given as YAML flow maps.
func startDeadlineRig(t *testing.T, kind, sessionCfg, proxyCfg string) *deadlineRig {
	clock := &skewClock{}
	var st store.Store
	switch kind {
	case "memory":
		st = memory.New(memory.WithClock(clock.Now))
		t.Cleanup(func() { st.Close() })
	case "redis":
		st = redistest.New(t)
	}
	hs := &heardStore{CountingStore: servertest.NewCountingStore(st)}
	src := strings.Replace(servertest.DevConfig, "\nserver:\n", "\nserver:\n  rate_limits: {disabled: true}\n", 1) +
		"session: " + sessionCfg + "\nproxy: " + proxyCfg + "\nroutes:\n  - {path: /app, upstream: \"" + tokenEcho(t).URL + "\"}\n"
	in := servertest.StartWith(t, src, servertest.Options{Store: hs, Server: server.Options{Now: clock.Now}})
	return &deadlineRig{in: in, host: in.HTTP.Listener.Addr().String(), st: hs, clock: clock}
}

// advance moves the clock by d, and waits until the proxy has heard a
// heartbeat on the moved clock (the longer cache trusts nothing before).
func (r *deadlineRig) advance(t *testing.T, d time.Duration) {
	t.Helper()
	r.clock.Add(d)
	r.st.await(t)
}

// get makes a proxied request with the cookie, and returns its status,
// its Location and the store calls it made.
func (r *deadlineRig) get(t *testing.T, cookie *http.Cookie) (int, string, servertest.Calls) {
	t.Helper()
	r.st.Drain()
	s, loc := proxiedWhere(t, r.in.Addr, r.host, cookie, "/app/x")
	return s, loc, r.st.Drain()
}

// wantCached: the request was admitted from the cache, with no store
// call about a session (the server's background work, such as the
// back-channel logout queue's poll, may call the store meanwhile).
func (r *deadlineRig) wantCached(t *testing.T, what string, cookie *http.Cookie) {
	t.Helper()
	s, _, calls := r.get(t, cookie)
	var read servertest.Calls
	for _, c := range calls {
		if strings.Contains(c.Op, "Session") || strings.Contains(c.String(), "proxy-session:") {
			read = append(read, c)
		}
	}
	if s != http.StatusOK || len(read) != 0 {
		t.Fatalf("%s: %d with store calls %q, want 200 from the cache", what, s, read.Strings())
	}
}

// wantSignIn: the request was sent to sign in, and nothing was broadcast
// since the last request (what ended the session here is its deadline).
func (r *deadlineRig) wantSignIn(t *testing.T, what string, cookie *http.Cookie) {
	t.Helper()
	if n := r.st.Drain().Count()["Broadcast"]; n != 0 {
		t.Fatalf("%s: %d broadcasts before the request; the test is of none", what, n)
	}
	s, loc := proxiedWhere(t, r.in.Addr, r.host, cookie, "/app/x")
	if s != http.StatusFound && s != http.StatusSeeOther || !strings.Contains(loc, "/oauth2/") {
		t.Fatalf("%s: %d %q, want a redirect to sign in", what, s, loc)
	}
}

// signIn signs b in through the proxy; at the dev provider unless b
// has a provider session already (then the proxy's sign-in takes it).
// signInLater signs a browser in at the provider alone (the account
// page), then, age later, through the proxy, which takes that provider
// session.
func (r *deadlineRig) signInLater(t *testing.T, age time.Duration) *http.Cookie {
	t.Helper()
	b := servertest.NewBrowser(t)
	if p := b.SignInDev(r.in.URL+"/account", "alice"); p.Status != http.StatusOK {
		t.Fatalf("sign-in at the provider ended at %d %s", p.Status, p.URL)
	}
	r.clock.Add(age)
	return r.signIn(t, b, true)
}

func (r *deadlineRig) signIn(t *testing.T, b *servertest.Browser, hasSession bool) *http.Cookie {
	t.Helper()
	var p *servertest.Page
	if hasSession {
		p = b.Get(r.in.URL + "/app/start")
	} else {
		p = b.SignInDev(r.in.URL+"/app/start", "alice")
	}
	if p.Status != http.StatusOK || p.URL.Path != "/app/start" {
		t.Fatalf("sign-in ended at %d %s", p.Status, p.URL)
	}
	return proxyCookie(t, b, r.in.URL)
}

func eachStore(t *testing.T, fn func(t *testing.T, kind string)) {
	for _, kind := range []string{"memory", "redis"} {
		t.Run(kind, func(t *testing.T) { fn(t, kind) })
	}
}

// TestProviderIdleTimeoutEndsTheLongerCache: a proxy session cached
// under session_cache_invalidated (an hour) is refused at the first
// request after its provider session's idle timeout (10m) falls, though
// no broadcast said so; before it, past session_cache, it was served
// from the cache. Also with a cookie that has no provider session hint
// (a session validated in two reads, record then provider session),
// used 2m after the sign-in: its deadline is then 12m.
func TestProviderIdleTimeoutEndsTheLongerCache(t *testing.T) {
	eachStore(t, func(t *testing.T, kind string) {
		for _, hint := range []bool{true, false} {
			t.Run(map[bool]string{true: "hint", false: "no hint"}[hint], func(t *testing.T) {
				r := startDeadlineRig(t, kind, "{idle_timeout: 10m, absolute_timeout: 24h}", "{session_cache: 2s, session_cache_invalidated: 1h}")
				cookie := r.signIn(t, servertest.NewBrowser(t), false) // its last request validated the session
				lastUse := time.Duration(0)
				if !hint {
					token, _, _ := strings.Cut(cookie.Value, ".")
					cookie = &http.Cookie{Name: cookie.Name, Value: token}
					r.advance(t, 2*time.Minute) // past the first validation's trust (the touch gap, 1m)
					if s, _, calls := r.get(t, cookie); s != http.StatusOK || calls.Count()["GetSession"] != 1 {
						t.Fatalf("without the hint: %d, store calls %q", s, calls.Strings())
					}
					lastUse = 2 * time.Minute
				}
				r.advance(t, 30*time.Second)
				r.wantCached(t, "30s later", cookie)
				r.advance(t, 9*time.Minute+31*time.Second) // 10m1s since the provider session's last use
				r.wantSignIn(t, fmt.Sprintf("past the idle timeout (last use at %v)", lastUse), cookie)
			})
		}
	})
}

// TestProviderAbsoluteTimeoutEndsTheLongerCache: likewise at the
// provider session's absolute timeout (20m), which falls before the
// proxy session's own (it was made 15m into the provider session): used
// at 19m, so that its idle deadline is past the absolute one, the proxy
// session is served from the cache at 19m30s and refused at 20m1s.
func TestProviderAbsoluteTimeoutEndsTheLongerCache(t *testing.T) {
	eachStore(t, func(t *testing.T, kind string) {
		r := startDeadlineRig(t, kind, "{idle_timeout: 20m, absolute_timeout: 20m}", "{session_cache: 2s, session_cache_invalidated: 1h}")
		cookie := r.signInLater(t, 15*time.Minute)
		r.advance(t, 4*time.Minute)
		if s, _, _ := r.get(t, cookie); s != http.StatusOK {
			t.Fatalf("at 19m: %d", s)
		}
		r.advance(t, 30*time.Second)
		r.wantCached(t, "at 19m30s", cookie)
		r.advance(t, 31*time.Second)
		r.wantSignIn(t, "past the absolute timeout", cookie)
	})
}

// TestActiveProxyUserOutlivesTheIdleTimeout: a user who uses only the
// proxy, every 6.5 minutes, stays signed in for 26 minutes, though the
// provider session's idle timeout is 10m and the proxy caches sessions
// for 15m: the cache does not hide the requests from the idle timeout.
// Served from the cache meanwhile: a request 30s after one that
// revalidated.
func TestActiveProxyUserOutlivesTheIdleTimeout(t *testing.T) {
	eachStore(t, func(t *testing.T, kind string) {
		r := startDeadlineRig(t, kind, "{idle_timeout: 10m, absolute_timeout: 24h}", "{session_cache: 2s, session_cache_invalidated: 15m}")
		cookie := r.signIn(t, servertest.NewBrowser(t), false)
		for i := range 4 {
			r.advance(t, 6*time.Minute)
			if s, loc, _ := r.get(t, cookie); s != http.StatusOK {
				t.Fatalf("request %d, %v after the sign-in: %d %q", i, time.Duration(i+1)*(6*time.Minute+30*time.Second)-30*time.Second, s, loc)
			}
			r.advance(t, 30*time.Second)
			r.wantCached(t, "30s after a request", cookie)
		}
	})
}

// TestProviderDeadlineEndsSessionCache: session_cache (30s, no
// broadcasts) is bounded by the deadline too: the provider session's
// absolute timeout (50s) falls 10s after the proxy session was made in
// it, and the proxy session is refused at the first request after it.
func TestProviderDeadlineEndsSessionCache(t *testing.T) {
	eachStore(t, func(t *testing.T, kind string) {
		r := startDeadlineRig(t, kind, "{idle_timeout: 50s, absolute_timeout: 50s}", "{session_cache: 30s}")
		cookie := r.signInLater(t, 40*time.Second)
		r.clock.Add(time.Second)
		r.wantCached(t, "at 41s", cookie)
		r.clock.Add(10 * time.Second)
		r.wantSignIn(t, "past the absolute timeout", cookie)
	})
}
