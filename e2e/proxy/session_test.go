package proxy_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aero2/aero2/proxy"
	"github.com/aero2/aero2/server"
	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/session"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/memory"
)

func TestForwardAuth(t *testing.T) {
	s := start(t, nil, routesYAML, nil)
	host := strings.TrimPrefix(s.in.URL, "http://")
	b := servertest.NewBrowser(t)
	b.Get(s.in.URL + "/app") // alice signs in
	ask := func(c *http.Client, path, method, uri string, extra ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", s.in.URL+path, nil)
		req.Header.Set("X-Forwarded-Method", method)
		req.Header.Set("X-Forwarded-Host", host)
		req.Header.Set("X-Forwarded-Uri", uri)
		for i := 0; i+1 < len(extra); i += 2 {
			req.Header.Set(extra[i], extra[i+1])
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	nb := b.NoRedirects().Client
	res := ask(nb, "/.aero2/forward-auth", "GET", "/admin/x?y=1", "X-Forwarded-User", "mallory")
	if res.StatusCode != 200 || res.Header.Get("X-Forwarded-User") != "u-alice" || res.Header.Get("X-Auth-Request-Email") != "alice@example.com" {
		t.Errorf("allowed: %d %v", res.StatusCode, res.Header)
	}
	anon := servertest.NewBrowser(t).NoRedirects().Client
	// The sign-in starts on the route's origin as configured (the
	// application's scheme), whatever scheme the peer claims.
	res = ask(anon, "/.aero2/forward-auth", "GET", "/admin/x?y=1", "X-Forwarded-Proto", "https")
	if res.StatusCode != 302 || res.Header.Get("Location") != "http://"+host+"/.aero2/start?rd="+url.QueryEscape("/admin/x?y=1") {
		t.Errorf("anonymous browser: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if res = ask(anon, "/.aero2/forward-auth?redirect=0", "GET", "/admin/x"); res.StatusCode != 401 {
		t.Errorf("anonymous, redirect=0: %d", res.StatusCode)
	}
	if res = ask(anon, "/.aero2/forward-auth", "POST", "/admin/x"); res.StatusCode != 401 {
		t.Errorf("anonymous POST: %d", res.StatusCode)
	}
	if res = ask(nb, "/.aero2/forward-auth", "GET", "/public/../admin"); res.StatusCode != 400 {
		t.Errorf("path trick through forward-auth: %d", res.StatusCode)
	}
	s.op.SignInAs("u-bob")
	bob := servertest.NewBrowser(t)
	bob.Get(s.in.URL + "/app")
	if res = ask(bob.NoRedirects().Client, "/.aero2/forward-auth", "GET", "/admin"); res.StatusCode != 403 {
		t.Errorf("bob on /admin: %d", res.StatusCode)
	}
	// Envoy ext_authz: original method, host and path on the request.
	req, _ := http.NewRequest("GET", s.in.URL+"/.aero2/forward-auth/envoy/admin/x", nil)
	res, err := nb.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("X-Forwarded-User") != "u-alice" {
		t.Errorf("envoy: %d", res.StatusCode)
	}
}

func TestForwardAuthHeadersFromUntrustedPeersAreIgnored(t *testing.T) {
	// Loopback is not trusted here, so the test client is an outsider.
	s := startEdited(t, nil, routesYAML, nil, func(c string) string {
		return strings.Replace(c, "server:\n", "server:\n  trusted_proxies: [10.9.9.9/32]\n", 1)
	})
	b := servertest.NewBrowser(t)
	b.Get(s.in.URL + "/app")
	req, _ := http.NewRequest("GET", s.in.URL+"/.aero2/forward-auth", nil)
	req.Header.Set("X-Forwarded-Host", strings.TrimPrefix(s.in.URL, "http://"))
	req.Header.Set("X-Forwarded-Uri", "/app")
	res, err := b.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 403 || res.Header.Get("X-Forwarded-User") != "" {
		t.Errorf("untrusted peer: %d %v", res.StatusCode, res.Header)
	}
}

// signedIn signs a browser in with a provider session the test controls.
func signedIn(t *testing.T, s *setup, st store.Store) (*servertest.Browser, *store.Session) {
	t.Helper()
	if st == nil {
		st = s.in.Server.Store()
	}
	now := time.Now().UTC()
	ps := &store.Session{ID: "provider-session-" + t.Name(), App: "default", UserID: "u-alice", CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(time.Hour)}
	if err := st.CreateSession(context.Background(), ps, time.Hour); err != nil {
		t.Fatal(err)
	}
	s.op.SetSessionID("u-alice", ps.ID)
	b := servertest.NewBrowser(t)
	if p := b.Get(s.in.URL + "/app"); p.Status != 200 {
		t.Fatalf("sign-in: %d", p.Status)
	}
	return b, ps
}

// TestProviderLogoutStopsAdmittingWithinSeconds: with a provider-session
// checker (the server wires the application's session manager when the
// proxy signs in at Aero2's own provider; here the stand-in provider's sid
// names a session in the store, and the checker is wired explicitly), the
// end of the provider session stops the proxy.
func TestProviderLogoutStopsAdmittingWithinSeconds(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		if st == nil {
			st = memory.New()
			t.Cleanup(func() { st.Close() })
		}
		checker := session.New(store.ForApp(st, "default"), session.Config{CookieName: "unused", IdleTimeout: time.Hour, AbsoluteTimeout: time.Hour, Keys: [][]byte{[]byte(servertest.CookieKey)}})
		s := startWith(t, st, routesYAML, nil, func(c string) string { return c },
			server.Options{ProviderSessions: func(string) proxy.ProviderSessions { return checker }})
		b, ps := signedIn(t, s, st)
		// The provider ends its session (logout, or the account page).
		if err := st.DeleteSession(context.Background(), "default", ps.ID); err != nil {
			t.Fatal(err)
		}
		nb := b.NoRedirects()
		deadline := time.Now().Add(10 * time.Second)
		for {
			p := nb.Get(s.in.URL + "/app")
			if p.Status == 302 {
				break // sent to sign in again
			}
			if time.Now().After(deadline) {
				t.Fatalf("still admitted (%d) 10s after the provider session ended", p.Status)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

func TestSignOutEndsBothSessions(t *testing.T) {
	s := start(t, nil, routesYAML, nil)
	b, _ := signedIn(t, s, nil)
	p := b.Get(s.in.URL + "/.aero2/sign_out")
	action, v := p.Form(t, "/.aero2/sign_out")
	if p := b.PostForm(s.in.URL+action, url.Values{"csrf": {"forged"}}); p.Status != 403 {
		t.Errorf("sign-out with a forged csrf token: %d", p.Status)
	}
	res, err := b.NoRedirects().Client.PostForm(s.in.URL+action, v)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc := res.Header.Get("Location")
	if res.StatusCode != 303 || !strings.HasPrefix(loc, s.op.Issuer+"/end_session") || !strings.Contains(loc, "id_token_hint=") {
		t.Fatalf("sign-out: %d %s", res.StatusCode, loc)
	}
	if p := b.NoRedirects().Get(s.in.URL + "/app"); p.Status != 302 {
		t.Errorf("still admitted after sign-out: %d", p.Status)
	}
}

// TestForwardAuthAnswersTheWholeFamily: forward-auth's 200 carries every
// identity header of the family, empty when Aero2 knows no value (a user
// without groups, a public route), and the client's Cookie header without
// Aero2's cookies. A front proxy copies them all, so a client's own
// X-Forwarded-Groups never passes next to an answer that lacks it, and
// Caddy 2.6 never forwards its placeholder for a missing header.
func TestForwardAuthAnswersTheWholeFamily(t *testing.T) {
	s := start(t, nil, routesYAML+`  - {path: /custom, upstream: "UP", headers: {user: [X-Custom-User], access_token: [Authorization]}}
`, nil)
	host := strings.TrimPrefix(s.in.URL, "http://")
	s.op.SignInAs("u-eve") // no groups
	eve := servertest.NewBrowser(t)
	eve.Get(s.in.URL + "/app")
	family := []string{
		"X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Preferred-Username", "X-Forwarded-Groups",
		"X-Forwarded-Name", "X-Forwarded-Access-Token", "X-Forwarded-Uid", "X-Aero2-Assertion",
		"X-User", "X-Email", "X-Id-Token",
		"X-Auth-Request-User", "X-Auth-Request-Email", "X-Auth-Request-Preferred-Username", "X-Auth-Request-Groups",
		"X-Custom-User", "Cookie",
	}
	ask := func(c *http.Client, uri string, cookie string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", s.in.URL+"/.aero2/forward-auth", nil)
		req.Header.Set("X-Forwarded-Host", host)
		req.Header.Set("X-Forwarded-Uri", uri)
		req.Header.Set("X-Forwarded-Groups", "admins") // the client's own, forged
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("%s: %d", uri, res.StatusCode)
		}
		return res
	}
	answer := func(res *http.Response, name string) string {
		t.Helper()
		vs, ok := res.Header[name]
		if !ok || len(vs) != 1 {
			t.Errorf("the answer carries %s %q, want it once", name, vs)
			return ""
		}
		return vs[0]
	}
	u, _ := url.Parse(s.in.URL)
	var session string
	for _, c := range eve.Jar.Cookies(u) {
		session += c.Name + "=" + c.Value + "; "
	}
	res := ask(eve.NoRedirects().Client, "/app/x", session+"theme=dark; Aero2_Proxy_Login=x; __Secure-aero2_session=y")
	want := map[string]string{
		"X-Forwarded-User": "u-eve", "X-Auth-Request-User": "u-eve",
		"X-Forwarded-Email": "eve@example.com", "X-Auth-Request-Email": "eve@example.com",
		"X-Forwarded-Preferred-Username": "eve", "X-Auth-Request-Preferred-Username": "eve", "Cookie": "theme=dark",
	}
	for _, n := range family {
		if got := answer(res, n); got != want[n] {
			t.Errorf("signed in without groups: %s = %q, want %q", n, got, want[n])
		}
	}
	if _, ok := res.Header["Authorization"]; ok {
		t.Errorf("the answer carries Authorization: a front proxy copying it would drop the client's own")
	}
	// A public route: nobody is known, so every name is there and empty.
	res = ask(servertest.NewBrowser(t).Client, "/public/x", "")
	for _, n := range family {
		if got := answer(res, n); got != "" {
			t.Errorf("public route: %s = %q, want empty", n, got)
		}
	}
}
