package server_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store/redis/redistest"
)

// tokenEcho is an upstream that answers with the access token the proxy
// forwarded, so that each response says which token its request carried.
func tokenEcho(t *testing.T) *httptest.Server {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("X-Forwarded-Access-Token"))
	}))
	t.Cleanup(up.Close)
	return up
}

// refreshConfig has one route that forwards the access token, which makes
// the proxy keep it current (refresh it before it expires). Access tokens
// live 8s: the proxy renews one when less than half its lifetime is left
// (refreshMargin caps that at 30s), so a token is due 4s after it was
// issued and the one that replaces it is good for 4s more.
const refreshConfig = servertest.DevConfig + `
tokens: {access_token: 8s}
routes:
  - path: /app
    upstream: "UP"
    headers: {access_token: [X-Forwarded-Access-Token]}
`

// proxyCookie is the proxy session cookie the browser holds for u.
func proxyCookie(t *testing.T, b *servertest.Browser, u string) *http.Cookie {
	t.Helper()
	pu, _ := url.Parse(u)
	for _, c := range b.Jar.Cookies(pu) {
		if c.Name == "aero2_proxy" {
			return c
		}
	}
	t.Fatal("no proxy session cookie after sign-in")
	return nil
}

// burst sends n requests to each address at once, all for host (the
// public host: the replicas stand behind one address) with the session
// cookie, and returns each response's status and body.
func burst(t *testing.T, addrs []string, host string, cookie *http.Cookie, n int, path string) (statuses []int, bodies []string) {
	t.Helper()
	client := &http.Client{
		Transport:     &http.Transport{MaxIdleConnsPerHost: n},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}
	defer client.CloseIdleConnections()
	total := n * len(addrs)
	statuses, bodies = make([]int, total), make([]string, total)
	errs := make([]error, total)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range total {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", fmt.Sprintf("%s%s?i=%d", addrs[i%len(addrs)], path, i), nil)
			req.Host = host
			req.AddCookie(cookie)
			<-start
			res, err := client.Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			statuses[i], bodies[i], errs[i] = res.StatusCode, string(body), err
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	return statuses, bodies
}

// sleepUntilDue sleeps until the proxy must renew token: when less than
// half of its lifetime is left (exp and iat are whole seconds; the second
// added covers the rounding).
func sleepUntilDue(t *testing.T, token string) {
	t.Helper()
	c := claims(t, token)
	iat, exp := time.Unix(int64(c["iat"].(float64)), 0), time.Unix(int64(c["exp"].(float64)), 0)
	time.Sleep(time.Until(exp.Add(-exp.Sub(iat) / 2).Add(time.Second)))
}

// TestRefreshAcrossReplicasRedeemsOnce: two replicas share one Redis. One
// browser's requests hit both at once just when its access token is due
// for renewal. Refresh tokens rotate and a reused one revokes its whole
// family, so the replicas must agree on one refresh: each expiry costs
// exactly one redemption at the provider, every request succeeds with the
// new token, and the family stays valid (the next expiry's refresh, with
// the rotated refresh token, works too).
func TestRefreshAcrossReplicasRedeemsOnce(t *testing.T) {
	w := newWatchedStore(redistest.New(t))
	up := tokenEcho(t)
	cfg := strings.ReplaceAll(refreshConfig, "UP", up.URL)
	r1 := servertest.StartWith(t, cfg, servertest.Options{Store: w})
	r2 := servertest.StartWith(t, cfg, servertest.Options{Store: w, PublicURL: r1.URL})
	host := r1.HTTP.Listener.Addr().String()

	b := servertest.NewBrowser(t)
	p := b.SignInDev(r1.URL+"/app/start", "alice")
	if p.Status != http.StatusOK || p.Body == "" {
		t.Fatalf("sign-in ended at %d %s: %q", p.Status, p.URL, p.Body)
	}
	cookie := proxyCookie(t, b, r1.URL)
	current := p.Body // the access token the upstream received

	const perReplica = 12
	for expiry := 1; expiry <= 2; expiry++ {
		sleepUntilDue(t, current)
		w.reset()
		w.mu.Lock()
		w.holdRefresh = true
		w.mu.Unlock()
		statuses, bodies := burst(t, []string{r1.Addr, r2.Addr}, host, cookie, perReplica, "/app/burst")
		w.mu.Lock()
		w.holdRefresh = false
		w.mu.Unlock()
		w.check(t)

		renewed := ""
		for i := range statuses {
			if statuses[i] == http.StatusOK && renewed == "" {
				renewed = bodies[i]
			}
		}
		for i := range statuses {
			if statuses[i] != http.StatusOK {
				t.Errorf("expiry %d: request %d (replica %d) got %d", expiry, i, i%2+1, statuses[i])
			} else if bodies[i] != renewed {
				t.Errorf("expiry %d: request %d (replica %d) carried another token than the first admitted request", expiry, i, i%2+1)
			}
		}
		if renewed == current || renewed == "" {
			t.Errorf("expiry %d: the upstream did not get a renewed token", expiry)
		}
		w.mu.Lock()
		reads, redeemed, reused, raced, contended := w.refreshReads, w.redeemed, w.reused, w.raced, w.contended
		w.mu.Unlock()
		if reads != 1 || redeemed != 1 || reused != 0 || raced != 0 {
			t.Errorf("expiry %d: the provider saw %d refresh requests, %d redemptions, %d reuses, %d raced; want exactly one redemption",
				expiry, reads, redeemed, reused, raced)
		}
		// The other replica really was there, waiting for the same
		// refresh: the test lined it up (holdRefresh), and this says so.
		if contended == 0 {
			t.Errorf("expiry %d: no replica waited for the refresh lock", expiry)
		}
		if t.Failed() {
			t.FailNow()
		}
		// The family is intact: the renewed token is active at the
		// provider, and the one it replaced is not.
		if !introspectActive(t, r1, renewed) {
			t.Fatalf("expiry %d: the renewed access token is not active: the refresh-token family was revoked", expiry)
		}
		if introspectActive(t, r1, current) {
			t.Errorf("expiry %d: the replaced access token is still active", expiry)
		}
		current = renewed
	}
	// Both replicas keep serving the session with the current token.
	statuses, bodies := burst(t, []string{r1.Addr, r2.Addr}, host, cookie, 1, "/app/after")
	for i := range statuses {
		if statuses[i] != http.StatusOK || bodies[i] != current {
			t.Errorf("replica %d after the refreshes: %d", i+1, statuses[i])
		}
	}
}

// TestConcurrentRequestsShareOneValidation: once the proxy's cache of a
// validated session lapses, concurrent requests of the browser share one
// validation (one read of the session record, one check of the provider
// session), not one each.
func TestConcurrentRequestsShareOneValidation(t *testing.T) {
	w := newWatchedStore(redistest.New(t))
	up := tokenEcho(t)
	in := servertest.StartWith(t, servertest.DevConfig+`
proxy: {session_cache: 1s}
routes:
  - {path: /app, upstream: "`+up.URL+`"}
`, servertest.Options{Store: w})
	// Requests pass through a front that counts them in, so that the
	// session read can be held until all of them have arrived.
	var arrived atomic.Int64
	front := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		arrived.Add(1)
		in.Server.Handler().ServeHTTP(rw, r)
	}))
	t.Cleanup(front.Close)
	host := in.HTTP.Listener.Addr().String()

	b := servertest.NewBrowser(t)
	if p := b.SignInDev(in.URL+"/app/start", "alice"); p.Status != http.StatusOK {
		t.Fatalf("sign-in ended at %d %s", p.Status, p.URL)
	}
	cookie := proxyCookie(t, b, in.URL)
	time.Sleep(1100 * time.Millisecond) // session_cache lapses

	const n = 16
	release := make(chan struct{})
	w.reset()
	w.mu.Lock()
	w.holdSession = release
	w.mu.Unlock()
	arrived.Store(0)
	go func() {
		// All requests are in; give the stragglers among them a moment
		// to reach the session check (this only makes a missing
		// singleflight show, it cannot make a present one fail).
		for arrived.Load() < n {
			time.Sleep(2 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond)
		close(release)
	}()
	statuses, _ := burst(t, []string{front.URL}, host, cookie, n, "/app/x")
	w.check(t)
	for i, s := range statuses {
		if s != http.StatusOK {
			t.Errorf("request %d: %d", i, s)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sessionReads != 1 || w.providerSessionReads != 1 {
		t.Errorf("%d concurrent requests read the session record %d times and the provider session %d times; want once each",
			n, w.sessionReads, w.providerSessionReads)
	}
}
