package proxy_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aero2/aero2/proxy"
	"github.com/aero2/aero2/server"
	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/session"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/memory"
)

// answerMode is one of the ways a decision is answered.
type answerMode int

const (
	modeProxy      answerMode = iota // the built-in proxy
	modeForward                      // forward-auth, redirecting browsers
	modeForwardOff                   // forward-auth with ?redirect=0
)

func (m answerMode) String() string {
	return [...]string{"proxy", "forward-auth", "forward-auth?redirect=0"}[m]
}

// want is the answer expected in one mode.
type want struct {
	status   int
	location string // prefix of Location, for redirects
	check    func(t *testing.T, res *http.Response)
}

// TestEveryDecisionInEveryMode: each thing authentication can decide,
// answered by each mode. One decision, one answer per mode: in
// particular a session whose refresh the provider refuses is "sign in
// again" everywhere, never a 503 in forward-auth.
func TestEveryDecisionInEveryMode(t *testing.T) {
	st := memory.New()
	t.Cleanup(func() { st.Close() })
	checker := session.New(store.ForApp(st, "default"), session.Config{CookieName: "unused", IdleTimeout: time.Hour, AbsoluteTimeout: time.Hour, Keys: [][]byte{[]byte(servertest.CookieKey)}})
	var skew atomic.Int64 // the proxy's clock runs ahead by this much
	routes := `
routes:
  - {path: /app, upstream: "UP"}
  - {path: /admin, upstream: "UP", policy: {allowed_groups: [admins]}}
  - {path: /fresh, upstream: "UP", headers: {access_token: [X-Forwarded-Access-Token]}}
`
	s := startWith(t, st, routes, nil, func(c string) string { return c }, server.Options{
		ProviderSessions: func(string) proxy.ProviderSessions { return checker },
		Now:              func() time.Time { return time.Now().Add(time.Duration(skew.Load())) },
	})
	host := strings.TrimPrefix(s.in.URL, "http://")
	ctx := context.Background()

	send := func(t *testing.T, m answerMode, c *http.Client, path string, h http.Header) *http.Response {
		t.Helper()
		u := s.in.URL + path
		if m != modeProxy {
			u = s.in.URL + "/.aero2/forward-auth"
			if m == modeForwardOff {
				u += "?redirect=0"
			}
		}
		req, _ := http.NewRequest("GET", u, nil)
		for k, v := range h {
			req.Header[k] = v
		}
		if m != modeProxy {
			req.Header.Set("X-Forwarded-Method", "GET")
			req.Header.Set("X-Forwarded-Host", host)
			req.Header.Set("X-Forwarded-Uri", path)
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	browserHeaders := http.Header{"Accept": {"text/html"}}
	apiHeaders := http.Header{"Accept": {"application/json"}}
	bearer := func(tok string) http.Header {
		return http.Header{"Authorization": {"Bearer " + tok}, "Accept": {"application/json"}}
	}
	noRedirects := func(b *servertest.Browser) *http.Client { return b.NoRedirects().Client }
	anonymous := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	contentType := func(ct string) func(*testing.T, *http.Response) {
		return func(t *testing.T, res *http.Response) {
			if !strings.HasPrefix(res.Header.Get("Content-Type"), ct) {
				t.Errorf("Content-Type %q, want %s", res.Header.Get("Content-Type"), ct)
			}
		}
	}
	challenge := func(errCode string) func(*testing.T, *http.Response) {
		return func(t *testing.T, res *http.Response) {
			ch := res.Header.Get("WWW-Authenticate")
			if !strings.HasPrefix(ch, "Bearer ") || (errCode != "" && !strings.Contains(ch, `error="`+errCode+`"`)) {
				t.Errorf("WWW-Authenticate %q, want a Bearer challenge with error %q", ch, errCode)
			}
		}
	}
	identity := func(sub string) func(*testing.T, *http.Response) {
		return func(t *testing.T, res *http.Response) {
			if got := res.Header.Get("X-Forwarded-User"); got != sub {
				t.Errorf("forward-auth answered X-Forwarded-User %q, want %q", got, sub)
			}
		}
	}
	signInAtProvider := want{302, s.op.Issuer, nil}
	signInAtStart := want{302, "http://" + host + "/.aero2/start?rd=", nil}
	unauthorized := want{401, "", challenge("")}

	// The callers.
	alice := servertest.NewBrowser(t)
	if p := alice.Get(s.in.URL + "/app"); p.Status != 200 {
		t.Fatalf("alice signs in: %d", p.Status)
	}
	aliceToken, _ := s.op.Tokens(t)
	s.op.SignInAs("u-bob")
	bob := servertest.NewBrowser(t)
	if p := bob.Get(s.in.URL + "/app"); p.Status != 200 {
		t.Fatalf("bob signs in: %d", p.Status)
	}
	bobToken, _ := s.op.Tokens(t)
	// Eve's session will be refused its refresh.
	s.op.SignInAs("u-eve")
	eve := servertest.NewBrowser(t)
	if p := eve.Get(s.in.URL + "/fresh/x"); p.Status != 200 {
		t.Fatalf("eve signs in: %d", p.Status)
	}
	// A token whose provider session (sid) will have ended.
	now := time.Now().UTC()
	ps := &store.Session{ID: "ended-provider-session", App: "default", UserID: "u-alice", CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(time.Hour)}
	if err := st.CreateSession(ctx, ps, time.Hour); err != nil {
		t.Fatal(err)
	}
	s.op.SignInAs("u-alice")
	s.op.SetSessionID("u-alice", ps.ID)
	endedToken, _ := s.op.Tokens(t)
	if err := st.DeleteSession(ctx, "default", ps.ID); err != nil {
		t.Fatal(err)
	}
	// A token the proxy has never checked, for when the provider is down.
	s.op.SetSessionID("u-alice", "")
	uncheckedToken, _ := s.op.Tokens(t)

	type scenario struct {
		name    string
		client  *http.Client
		path    string
		headers http.Header
		before  func()
		modes   [3]want
	}
	scenarios := []scenario{
		{name: "admitted, session", client: noRedirects(alice), path: "/app/x", headers: browserHeaders,
			modes: [3]want{{200, "", nil}, {200, "", identity("u-alice")}, {200, "", identity("u-alice")}}},
		{name: "admitted, bearer token", client: anonymous, path: "/admin/x", headers: bearer(aliceToken),
			modes: [3]want{{200, "", nil}, {200, "", identity("u-alice")}, {200, "", identity("u-alice")}}},
		{name: "sign-in, anonymous browser", client: anonymous, path: "/app/x", headers: browserHeaders,
			modes: [3]want{signInAtProvider, signInAtStart, unauthorized}},
		{name: "sign-in, anonymous script", client: anonymous, path: "/app/x", headers: apiHeaders,
			modes: [3]want{unauthorized, unauthorized, unauthorized}},
		{name: "sign-in, refresh refused", client: noRedirects(eve), path: "/fresh/x", headers: browserHeaders,
			before: func() {
				// The provider forgets eve's tokens, and the proxy's clock
				// reaches the last 15s of her access token (5 minutes).
				s.op.TerminateSession(t, "u-eve")
				skew.Store(int64(4*time.Minute + 45*time.Second))
			},
			modes: [3]want{signInAtProvider, signInAtStart, unauthorized}},
		{name: "denied, session", client: noRedirects(bob), path: "/admin/x", headers: browserHeaders,
			before: func() { skew.Store(0) },
			modes:  [3]want{{403, "", contentType("text/html")}, {403, "", contentType("text/html")}, {403, "", contentType("application/json")}}},
		{name: "denied, bearer token", client: anonymous, path: "/admin/x", headers: bearer(bobToken),
			modes: [3]want{{403, "", challenge("insufficient_scope")}, {403, "", challenge("insufficient_scope")}, {403, "", challenge("insufficient_scope")}}},
		{name: "token invalid", client: anonymous, path: "/app/x", headers: bearer("not-a-token"),
			modes: [3]want{{401, "", challenge("invalid_token")}, {401, "", challenge("invalid_token")}, {401, "", challenge("invalid_token")}}},
		{name: "session ended", client: anonymous, path: "/app/x", headers: bearer(endedToken),
			modes: [3]want{{401, "", challenge("invalid_token")}, {401, "", challenge("invalid_token")}, {401, "", challenge("invalid_token")}}},
		{name: "unavailable", client: anonymous, path: "/app/x", headers: bearer(uncheckedToken),
			before: func() { s.op.Server.Close() }, // introspection cannot be asked
			modes:  [3]want{{503, "", contentType("application/json")}, {503, "", contentType("application/json")}, {503, "", contentType("application/json")}}},
	}
	for _, sc := range scenarios {
		if sc.before != nil {
			sc.before()
		}
		for m, w := range sc.modes {
			mode := answerMode(m)
			t.Run(sc.name+"/"+mode.String(), func(t *testing.T) {
				before := s.up.Count()
				res := send(t, mode, sc.client, sc.path, sc.headers)
				if res.StatusCode != w.status {
					t.Fatalf("status %d, want %d (Location %q)", res.StatusCode, w.status, res.Header.Get("Location"))
				}
				if loc := res.Header.Get("Location"); !strings.HasPrefix(loc, w.location) || (w.location == "") != (loc == "") {
					t.Errorf("Location %q, want %q…", loc, w.location)
				}
				if w.check != nil {
					w.check(t, res)
				}
				reached := s.up.Count() - before
				if want := mode == modeProxy && w.status == 200; (reached == 1) != want || reached > 1 {
					t.Errorf("the upstream was reached %d times", reached)
				}
			})
		}
	}
}
