package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aero2/aero2/server"
	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store/redis"
	"github.com/aero2/aero2/store/redis/redistest"
)

// longCacheConfig caches proxy sessions for session_cache (the most it
// may be) without broadcasts, and for an hour while they are heard.
const longCacheConfig = servertest.DevConfig + `
proxy: {session_cache: SHORT, session_cache_invalidated: 1h}
routes:
  - {path: /app, upstream: "UP"}
`

// proxied GETs path from addr for host with the proxy cookie, and returns
// the status (redirects not followed).
func proxied(t *testing.T, addr, host string, cookie *http.Cookie, path string) int {
	t.Helper()
	status, _ := proxiedWhere(t, addr, host, cookie, path)
	return status
}

// TestSignOutReachesEveryReplicaAtOnce: two Aero2 replicas, each with its
// own connection to one real Redis, cache proxy sessions for 30s (an hour
// while broadcasts are heard). A sign-out on one is refused by the other
// at once, not after its cache lapses: the sign-out's broadcast drops the
// session from every replica's cache.
func TestSignOutReachesEveryReplicaAtOnce(t *testing.T) {
	for _, how := range []string{"provider", "proxy"} {
		t.Run(how, func(t *testing.T) {
			cfg := redistest.Config(t)
			open := func() *redis.Store {
				st, err := redis.Open(context.Background(), cfg)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				return st
			}
			up := tokenEcho(t)
			src := strings.NewReplacer("SHORT", "30s", "UP", up.URL).Replace(longCacheConfig)
			r1 := servertest.StartWith(t, src, servertest.Options{Store: open()})
			r2 := servertest.StartWith(t, src, servertest.Options{Store: open(), PublicURL: r1.URL})
			host := r1.HTTP.Listener.Addr().String()

			b := servertest.NewBrowser(t)
			if p := b.SignInDev(r1.URL+"/app/start", "alice"); p.Status != http.StatusOK {
				t.Fatalf("sign-in ended at %d %s", p.Status, p.URL)
			}
			cookie := proxyCookie(t, b, r1.URL)
			if s := proxied(t, r2.Addr, host, cookie, "/app/x"); s != http.StatusOK {
				t.Fatalf("replica 2 before the sign-out: %d", s) // and now cached there
			}
			switch how {
			case "provider": // on the account page: the provider session ends
				acct := b.Get(r1.URL + "/account")
				action, fields := acct.Form(t, "/logout")
				if p := b.PostForm(action, fields); p.Status >= 400 {
					t.Fatalf("sign-out: %d", p.Status)
				}
			case "proxy": // the proxy's own sign-out form
				page := b.Get(r1.URL + "/.aero2/sign_out")
				action, fields := page.Form(t, "/.aero2/sign_out")
				if p := b.PostForm(r1.URL+action, fields); p.Status >= 400 {
					t.Fatalf("sign-out: %d", p.Status)
				}
			}
			start := time.Now()
			for proxied(t, r2.Addr, host, cookie, "/app/x") == http.StatusOK {
				if time.Since(start) > time.Second {
					t.Fatalf("replica 2 still admits the signed-out session after %s (its cache is 30s)", time.Since(start))
				}
				time.Sleep(5 * time.Millisecond)
			}
			t.Logf("replica 2 refused the session %s after the sign-out returned", time.Since(start))
		})
	}
}

// TestLostBroadcastsFallBackToSessionCache: with broadcasts heard, a
// cached session is served past session_cache without the store; once
// the subscription is lost (Redis stops), it is trusted for no longer
// than session_cache, whatever session_cache_invalidated says: a request
// then has to read the store, and fails while Redis is down.
func TestLostBroadcastsFallBackToSessionCache(t *testing.T) {
	p := redistest.PrivateServer(t)
	cs := servertest.NewCountingStore(p.Open(t))
	up := tokenEcho(t)
	src := strings.NewReplacer("SHORT", "1s", "UP", up.URL).Replace(longCacheConfig)
	src = strings.Replace(src, "\nserver:\n", "\nserver:\n  rate_limits: {disabled: true}\n", 1)
	in := servertest.StartWith(t, src, servertest.Options{Store: cs})
	host := in.HTTP.Listener.Addr().String()
	b := servertest.NewBrowser(t)
	if pg := b.SignInDev(in.URL+"/app/start", "alice"); pg.Status != http.StatusOK {
		t.Fatalf("sign-in ended at %d %s", pg.Status, pg.URL)
	}
	cookie := proxyCookie(t, b, in.URL)
	if s := proxied(t, in.Addr, host, cookie, "/app/x"); s != http.StatusOK {
		t.Fatalf("first request: %d", s)
	}
	time.Sleep(1500 * time.Millisecond) // past session_cache
	cs.Drain()
	if s := proxied(t, in.Addr, host, cookie, "/app/x"); s != http.StatusOK {
		t.Fatalf("past session_cache, broadcasts heard: %d", s)
	}
	if calls := cs.Drain(); len(calls) != 0 {
		t.Errorf("past session_cache with broadcasts heard, the request still asked the store: %q", calls.Strings())
	}

	p.Stop(t)
	time.Sleep(2500 * time.Millisecond) // past the heartbeat grace and session_cache
	if s := proxied(t, in.Addr, host, cookie, "/app/x"); s == http.StatusOK {
		t.Fatal("with the subscription lost, the cached session was trusted past session_cache")
	}
	p.Start(t)
	deadline := time.Now().Add(10 * time.Second)
	for proxied(t, in.Addr, host, cookie, "/app/x") != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("the session was not admitted again after Redis came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDisabledUserIsRefusedAtOnce: `aero2 users disable`, run against
// the Redis a server shares (server.OpenAdmin, as the command does), ends
// the user's sessions; the server, which caches proxy sessions for 30s
// (an hour while broadcasts are heard), refuses the user's proxy session
// at once. Two messages reach it (the store's broadcast, and the
// provider's back-channel logout to the proxy); this holds with either
// alone, and TestSignOutReachesEveryReplicaAtOnce is the one that only
// the broadcast can pass.
func TestDisabledUserIsRefusedAtOnce(t *testing.T) {
	rc := redistest.Config(t)
	up := tokenEcho(t)
	src := strings.NewReplacer("SHORT", "30s", "UP", up.URL).Replace(longCacheConfig)
	src = strings.Replace(src, "store: {type: memory}", fmt.Sprintf("store: {type: redis, redis: {addrs: [%q], key_prefix: %q}}", rc.Addrs[0], rc.KeyPrefix), 1)
	in := servertest.StartWith(t, src, servertest.Options{})
	host := in.HTTP.Listener.Addr().String()
	b := servertest.NewBrowser(t)
	if p := b.SignInDev(in.URL+"/app/start", "alice"); p.Status != http.StatusOK {
		t.Fatalf("sign-in ended at %d %s", p.Status, p.URL)
	}
	cookie := proxyCookie(t, b, in.URL)
	if s := proxied(t, in.Addr, host, cookie, "/app/x"); s != http.StatusOK {
		t.Fatalf("before disabling: %d", s)
	}
	adm, err := server.OpenAdmin(t.Context(), in.Config, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	users, err := adm.Users(t.Context(), "default")
	if err != nil || len(users) != 1 {
		t.Fatalf("users: %v %v", users, err)
	}
	if _, n, err := adm.DisableUser(t.Context(), "default", users[0].ID); err != nil || n != 1 {
		t.Fatalf("disable: %d sessions ended, %v", n, err)
	}
	start := time.Now()
	for proxied(t, in.Addr, host, cookie, "/app/x") == http.StatusOK {
		if time.Since(start) > time.Second {
			t.Fatalf("the disabled user's proxy session is still admitted after %s (the cache is 30s)", time.Since(start))
		}
		time.Sleep(5 * time.Millisecond)
	}
}
