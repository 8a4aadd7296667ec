package server_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aero2/aero2/server"
	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/redis/redistest"
)

// TestUncachedProxySessionIsOneStoreRoundTrip: a proxied request whose
// session is not in the proxy's cache costs one store round trip on
// Redis, which reads the proxy session's record and the provider session
// it depends on together; and a session ended at the provider still
// ends the proxy session at the next such read.
func TestUncachedProxySessionIsOneStoreRoundTrip(t *testing.T) {
	cs := servertest.NewCountingStore(redistest.New(t))
	up := tokenEcho(t)
	cfg := strings.Replace(servertest.DevConfig, "\nserver:\n", "\nserver:\n  rate_limits: {disabled: true}\n", 1) + `
proxy: {session_cache: 1ms}
routes:
  - {path: /app, upstream: "` + up.URL + `"}
`
	in := servertest.StartWith(t, cfg, servertest.Options{Store: cs})
	b := servertest.NewBrowser(t)
	if p := b.SignInDev(in.URL+"/app/start", "alice"); p.Status != http.StatusOK {
		t.Fatalf("sign-in ended at %d %s", p.Status, p.URL)
	}
	cookie := proxyCookie(t, b, in.URL)
	get := func() int {
		time.Sleep(5 * time.Millisecond) // session_cache lapses
		req, _ := http.NewRequest("GET", in.URL+"/app/x", nil)
		req.AddCookie(cookie)
		res, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	for i := range 3 {
		cs.Drain()
		if s := get(); s != http.StatusOK {
			t.Fatalf("request %d: %d", i, s)
		}
		if calls := cs.Drain(); len(calls) != 1 || calls.Count()["GetSessionAndRecord"] != 1 {
			t.Errorf("request %d: %d store calls, want 1 (GetSessionAndRecord): %q", i, len(calls), calls.Strings())
		}
	}

	// The provider session ends (sign-out on the account page or at the
	// provider): the next uncached read refuses the proxy session.
	sessions, err := cs.Store.UserSessions(t.Context(), "default", userOf(t, cs))
	if err != nil || len(sessions) != 1 {
		t.Fatalf("alice's provider sessions: %v %v", sessions, err)
	}
	if err := cs.Store.DeleteSession(t.Context(), "default", sessions[0].ID); err != nil {
		t.Fatal(err)
	}
	if s := get(); s == http.StatusOK {
		t.Fatalf("after the provider session ended: %d, want a sign-in", s)
	}
}

// userOf is the ID of the one user the store's dev sign-in made.
func userOf(t *testing.T, st store.Store) string {
	t.Helper()
	u, _, err := st.UserByIdentity(t.Context(), "default", "dev", "alice")
	if err != nil {
		t.Fatalf("alice: %v", err)
	}
	return u.ID
}

// BenchmarkUncachedProxySession: proxied GETs on Redis with no session
// cache (session_cache: 0), so that every request reads its session: with
// the cookie's provider session hint (one round trip, reading both
// together) and with the hint cut off (the two sequential reads cookies
// without one still take), in turns within one run.
//
//	go test -run '^$' -bench BenchmarkUncachedProxySession -benchmem ./server/
func BenchmarkUncachedProxySession(b *testing.B) {
	up := httptestServer(b)
	cfg := strings.Replace(servertest.DevConfig, "\nserver:\n", "\nserver:\n  rate_limits: {disabled: true}\n", 1) + `
proxy: {session_cache: 0s}
routes:
  - {path: /app, upstream: "` + up + `"}
`
	in := servertest.StartWith(b, cfg, servertest.Options{Store: redistest.New(b), Server: server.Options{Logger: slog.New(slog.DiscardHandler)}})
	br := servertest.NewBrowser(b)
	if p := br.SignInDev(in.URL+"/app/start", "alice"); p.Status != http.StatusOK {
		b.Fatalf("sign-in ended at %d %s", p.Status, p.URL)
	}
	pu, _ := url.Parse(in.URL)
	var hinted *http.Cookie
	for _, c := range br.Jar.Cookies(pu) {
		if c.Name == "aero2_proxy" {
			hinted = c
		}
	}
	if hinted == nil || !strings.Contains(hinted.Value, ".") {
		b.Fatalf("no proxy cookie with a provider session hint: %v", hinted)
	}
	token, _, _ := strings.Cut(hinted.Value, ".")
	plain := &http.Cookie{Name: hinted.Name, Value: token}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	get := func(c *http.Cookie) {
		req, _ := http.NewRequest("GET", in.URL+"/app/x", nil)
		req.AddCookie(c)
		servertest.MustOK(b, client, req)
	}
	get(hinted)
	get(plain)
	var one, two time.Duration
	n := 0
	for b.Loop() {
		t0 := time.Now()
		get(hinted)
		t1 := time.Now()
		get(plain)
		one += t1.Sub(t0)
		two += time.Since(t1)
		n++
	}
	b.ReportMetric(float64(one)/float64(n), "one-trip-ns/req")
	b.ReportMetric(float64(two)/float64(n), "two-trip-ns/req")
	b.ReportMetric(float64(one)/float64(two), "ratio")
}

// httptestServer answers 1 KiB to every request.
func httptestServer(b *testing.B) string {
	body := strings.Repeat("a", 1024)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) }))
	b.Cleanup(up.Close)
	return up.URL
}

// TestSignInCallbackRoundTrips pins what Aero2's federated sign-in
// callback costs on Redis, in round trips beneath the store's methods
// (redistest.RoundTrips): a returning user's, the common sign-in, and a
// first one's. Counted are the callback's own (/rp/callback/dev), with the
// default rate limits on. A returning user's nine:
//
//   - the rate limit of the client's address (a script),
//   - the login state taken (GETDEL), the dev provider's code taken
//     (GETDEL: a real provider's code exchange is HTTP instead),
//   - the identity (GET), then the user, its identities and its sessions'
//     count in one pipeline (store.SignInUser),
//   - the identity's and the user's updates (a script each: no WATCH),
//   - the rate limit of the account, the session created (scripts).
//
// The session cap's read of every session of the user is not among them:
// the count says the cap is far.
func TestSignInCallbackRoundTrips(t *testing.T) {
	st := redistest.New(t)
	rt := redistest.CountRoundTrips(st)
	in := servertest.StartWith(t, servertest.DevConfig, servertest.Options{Store: st})
	callback := func(user string) []string {
		t.Helper()
		b := servertest.NewBrowser(t)
		cb := b.DevCallback(in.URL+"/rp/authorize?idp=dev&redirect_uri=/account", user)
		rt.Drain()
		status, loc := b.Redirect(cb)
		trips := rt.Drain()
		if status != http.StatusFound || !strings.HasSuffix(loc, "/account") {
			t.Fatalf("callback: %d to %q", status, loc)
		}
		return trips
	}
	callback("eve") // the connections made, the first sign-in's scripts loaded (no NOSCRIPT retry counted)
	if trips := callback("alice"); len(trips) != 7 {
		t.Errorf("first sign-in: %d round trips, want 7: %q", len(trips), trips)
	}
	callback("alice") // the update scripts loaded
	for i := range 3 {
		if trips := callback("alice"); len(trips) != 9 {
			t.Errorf("returning sign-in %d: %d round trips, want 9: %q", i, len(trips), trips)
		}
	}
}

// BenchmarkSignInCallback: federated sign-ins of returning users on Redis,
// one after another, the dev provider's users taking turns; the op is a
// whole sign-in (/rp/authorize, the provider's choice, the callback), and
// callback-ns/op the callback alone. Compare with a run of the same
// benchmark on another commit, back to back (benchstat).
//
//	go test -run '^$' -bench BenchmarkSignInCallback -benchmem -count 6 ./server/
func BenchmarkSignInCallback(b *testing.B) {
	cfg := strings.Replace(servertest.DevConfig, "\nserver:\n", "\nserver:\n  rate_limits: {disabled: true}\n", 1)
	in := servertest.StartWith(b, cfg, servertest.Options{Store: redistest.New(b), Server: server.Options{Logger: slog.New(slog.DiscardHandler)}})
	tr := &http.Transport{MaxIdleConnsPerHost: 4}
	users := []string{"alice", "eve"}
	signIn := func(user string) time.Duration {
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		loc := func(res *http.Response, err error, want int) *url.URL {
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			l, err := res.Location()
			if res.StatusCode != want || err != nil {
				b.Fatalf("%s: %d, Location %q", res.Request.URL.Path, res.StatusCode, res.Header.Get("Location"))
			}
			return l
		}
		res, err := c.Get(in.URL + "/rp/authorize?idp=dev&redirect_uri=/account")
		page := loc(res, err, http.StatusFound)
		state := page.Query().Get("state")
		page.RawQuery = ""
		res, err = c.PostForm(page.String(), url.Values{"state": {state}, "user": {user}})
		cb := loc(res, err, http.StatusSeeOther)
		t0 := time.Now()
		res, err = c.Get(cb.String())
		loc(res, err, http.StatusFound)
		return time.Since(t0)
	}
	for _, u := range users {
		signIn(u) // created: every later sign-in is a returning user's
	}
	var cb time.Duration
	i := 0
	for b.Loop() {
		cb += signIn(users[i%len(users)])
		i++
	}
	b.ReportMetric(float64(cb)/float64(i), "callback-ns/op")
}

// TestAccountPageStoreRoundTrips counts what the account page of a user
// without consents costs the store: five calls, one after another (the
// session, its user, the user's identities, sessions and list of
// consents), seven round trips on Redis (identities and sessions are a
// set, then their records). Reading the last three at once was measured
// in issue 13 and gained nothing above the noise (the sign-in bench, and
// the page alone on loopback Redis: 430-760 µs a page either way), so
// they stay in order; this count says when a change adds one.
func TestAccountPageStoreRoundTrips(t *testing.T) {
	cs := servertest.NewCountingStore(redistest.New(t))
	in := servertest.Start(t, roundTripConfig, cs)
	b := servertest.NewBrowser(t)
	if p := b.SignInDev(in.URL+"/login", "alice"); p.Status != http.StatusOK {
		t.Fatalf("sign-in: %d %s", p.Status, p.URL)
	}
	cs.Drain()
	if p := b.Get(in.URL + "/account"); p.Status != http.StatusOK || !strings.Contains(p.Body, "alice@example.com") {
		t.Fatalf("account page: %d", p.Status)
	}
	all, rate := drainCalls(cs)
	var calls []string
	for _, c := range all {
		if !strings.HasPrefix(c, "SetMembers bcl-queue") { // the back-channel queue's polls, once a second
			calls = append(calls, c)
		}
	}
	want := []string{"GetSession ", "GetUser ", "Identities ", "UserSessions ", "SetMembers authz:consents:"}
	ok := len(calls) == len(want)
	for i := range min(len(calls), len(want)) {
		ok = ok && strings.HasPrefix(calls[i], want[i])
	}
	if !ok {
		t.Errorf("account page: %d store calls (and %d rate-limit checks):\n%s\nwant: %q", len(calls), rate, strings.Join(calls, "\n"), want)
	}
}
