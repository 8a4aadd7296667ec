package forwardauth_test

import (
	"crypto/rand"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aero2/aero2/server/servertest"
)

// eachProxy runs f for nginx and for Caddy.
func eachProxy(t *testing.T, f func(t *testing.T, p *frontProxy)) {
	for _, p := range fx.proxies {
		t.Run(p.name, func(t *testing.T) {
			t.Cleanup(func() {
				if t.Failed() {
					t.Log(p.tail())
				}
			})
			f(t, p)
		})
	}
}

// browser is a browser (cookie jar, follows redirects) that reaches the
// example's hosts through p.
func (p *frontProxy) browser(t *testing.T) *servertest.Browser {
	b := servertest.NewBrowser(t)
	b.Client.Transport = p.transport()
	return b
}

// signedIn is a browser signed in as the dev provider's user, through
// the example's sign-in from a page of the app.
func (p *frontProxy) signedIn(t *testing.T, user string) *servertest.Browser {
	t.Helper()
	b := p.browser(t)
	if pg := b.SignInDev("https://"+appHost+"/start", user); pg.Status != 200 || pg.Body != "upstream /start" {
		t.Fatalf("%s's sign-in ended at %d %s: %.300q", user, pg.Status, pg.URL, pg.Body)
	}
	return b
}

// answer is a response through the front proxy and the request the
// upstream received for it (nil: it reached no upstream).
type answer struct {
	status int
	header http.Header
	body   string
	up     *http.Request
}

// send sends a request through the front proxy with c, with header lines
// ("Name: value"), and tags it so that the upstream's copy can be found.
func send(t *testing.T, c *http.Client, method, target string, header ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, "https://"+appHost+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range header {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Add(k, v)
	}
	id := rand.Text()
	req.Header.Set("X-Test-Id", id)
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: res.StatusCode, header: res.Header, body: string(body), up: fx.up.got(id)}
}

func noRedirects(b *servertest.Browser) *http.Client { return b.NoRedirects().Client }

// TestSignInKeepsTheQuery: an anonymous browser is sent to sign in on the
// app's host with the whole original URI (its query URL-encoded in rd),
// signs in with the dev provider on the issuer's host and comes back to
// the very same URL, which the upstream receives unchanged.
func TestSignInKeepsTheQuery(t *testing.T) {
	const target = "/reports/q1?x=1&y=2&z=a%2Fb&empty="
	eachProxy(t, func(t *testing.T, p *frontProxy) {
		b := p.browser(t)
		a := send(t, noRedirects(b), "GET", target, "Accept: text/html")
		want := "https://" + appHost + "/.aero2/start?rd=" + url.QueryEscape(target)
		if a.status != http.StatusFound || a.header.Get("Location") != want || a.up != nil {
			t.Errorf("anonymous browser: %d, Location %q; want 302 to %q", a.status, a.header.Get("Location"), want)
		}
		pg := b.SignInDev("https://"+appHost+target, "alice")
		if pg.Status != 200 || pg.URL.String() != "https://"+appHost+target || pg.Body != "upstream "+target {
			t.Fatalf("the sign-in ended at %d %s: %.300q", pg.Status, pg.URL, pg.Body)
		}
	})
}

// TestIdentityReachesTheUpstream: a signed-in user's request reaches the
// upstream with the identity Aero2 answered, under every name of its
// family.
func TestIdentityReachesTheUpstream(t *testing.T) {
	eachProxy(t, func(t *testing.T, p *frontProxy) {
		b := p.signedIn(t, "alice")
		a := send(t, b.Client, "GET", "/x?a=1")
		if a.status != 200 || a.up == nil {
			t.Fatalf("signed in: %d %.300q", a.status, a.body)
		}
		h := a.up.Header
		sub := h.Get("X-Forwarded-User")
		want := map[string]string{
			"X-Forwarded-User": sub, "X-Auth-Request-User": sub,
			"X-Forwarded-Email": "alice@example.com", "X-Auth-Request-Email": "alice@example.com",
			"X-Forwarded-Preferred-Username": "alice", "X-Auth-Request-Preferred-Username": "alice",
			"X-Forwarded-Groups": "admins", "X-Auth-Request-Groups": "admins",
		}
		if sub == "" {
			t.Error("the upstream got no X-Forwarded-User")
		}
		for k, v := range want {
			if got := h.Values(k); len(got) != 1 || got[0] != v {
				t.Errorf("the upstream got %s %q, want %q", k, got, v)
			}
		}
		if got := h.Get("X-Forwarded-Host"); got != appHost {
			t.Errorf("X-Forwarded-Host %q", got)
		}
	})
}

// forged is a client's own copy of every header of the list an upstream
// might trust (proxy/headers.go): the identity family Aero2 answers, the
// routing headers and members of the families removed by prefix, in
// several spellings.
var forged = []string{
	"X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Preferred-Username", "X-Forwarded-Groups",
	"X-Forwarded-Name", "X-Forwarded-Access-Token", "X-Forwarded-Uid", "X-Aero2-Assertion",
	"X-User", "X-Email", "X-Id-Token",
	"X-Real-Ip", "X-Forwarded-Method", "X-Forwarded-Uri", "X-Forwarded-Port", "X-Forwarded-Prefix",
	"X-Original-Url", "X-Original-Uri", "X-Original-Method", "X-Rewrite-Url", "Forwarded",
	"X-Auth-Request-User", "X-Auth-Request-Email", "X-Auth-Request-Groups", "X-Auth-Request-Access-Token",
	"Remote-User", "Remote-Groups", "Remote-Email", "Remote-Name", "X-Remote-User", "X-Webauth-User",
	"X-Authenticated-User", "X-Amzn-Oidc-Identity", "X-Goog-Authenticated-User-Email", "X-Goog-Iap-Jwt-Assertion",
	"X-Ms-Client-Principal", "X-Ms-Client-Principal-Name", "X-Ms-Token-Aad-Id-Token", "Cf-Access-Authenticated-User-Email",
	"X-Pomerium-Jwt-Assertion", "X-Authentik-Username", "Tailscale-User-Login",
	"x-forwarded-user", "REMOTE-USER", "X_Forwarded_User", "x_forwarded_groups", "Remote_User",
}

func forgedLines() []string {
	var out []string
	for _, n := range forged {
		out = append(out, n+": forged-"+n)
	}
	return out
}

// refused checks that no forged value reached the upstream, under any
// name, and that no Caddy placeholder did either.
func refused(t *testing.T, up *http.Request) {
	t.Helper()
	for k, vs := range up.Header {
		for _, v := range vs {
			if strings.Contains(v, "forged") {
				t.Errorf("the client's own %s reached the upstream: %q", k, v)
			}
			if strings.Contains(v, "{") {
				t.Errorf("the upstream got %s %q (a placeholder?)", k, v)
			}
		}
	}
}

// TestForgedHeadersAreReplaced: whatever identity or routing headers a
// client sends, the upstream gets Aero2's answer or nothing under those
// names: signed in with groups, signed in without any (where Caddy 2.6
// once sent "{http.reverse_proxy.header.X-Forwarded-Groups}"), and on a
// public route, where nobody is known.
func TestForgedHeadersAreReplaced(t *testing.T) {
	eachProxy(t, func(t *testing.T, p *frontProxy) {
		alice := p.signedIn(t, "alice")
		a := send(t, alice.Client, "GET", "/x", forgedLines()...)
		if a.status != 200 || a.up == nil {
			t.Fatalf("alice: %d %.300q", a.status, a.body)
		}
		refused(t, a.up)
		if got := a.up.Header.Get("X-Forwarded-Email"); got != "alice@example.com" {
			t.Errorf("alice's X-Forwarded-Email: %q", got)
		}

		bob := p.signedIn(t, "bob") // no groups
		a = send(t, bob.Client, "GET", "/x", forgedLines()...)
		if a.status != 200 || a.up == nil {
			t.Fatalf("bob: %d %.300q", a.status, a.body)
		}
		refused(t, a.up)
		if got := a.up.Header.Get("X-Forwarded-Email"); got != "bob@example.com" {
			t.Errorf("bob's X-Forwarded-Email: %q", got)
		}
		for _, n := range []string{"X-Forwarded-Groups", "X-Auth-Request-Groups"} {
			if got := a.up.Header.Get(n); got != "" {
				t.Errorf("bob, without groups: %s %q", n, got)
			}
		}

		anon := p.browser(t)
		a = send(t, anon.Client, "GET", "/public/page?x=1&y=2", forgedLines()...)
		if a.status != 200 || a.up == nil || a.body != "upstream /public/page?x=1&y=2" {
			t.Fatalf("public route: %d %.300q", a.status, a.body)
		}
		refused(t, a.up)
		for _, n := range []string{"X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups", "X-Auth-Request-User"} {
			if got := a.up.Header.Get(n); got != "" {
				t.Errorf("public route, nobody signed in: %s %q", n, got)
			}
		}
	})
}

// TestDeniedUserSeesAero2sPage: a signed-in user the policy refuses gets
// Aero2's 403 page (who they are, a way to sign out) in a browser, and
// JSON as a script; never the front proxy's own error page, and nothing
// reaches the upstream.
func TestDeniedUserSeesAero2sPage(t *testing.T) {
	eachProxy(t, func(t *testing.T, p *frontProxy) {
		bob := p.signedIn(t, "bob")
		a := send(t, bob.Client, "GET", "/admin/panel", "Accept: text/html,application/xhtml+xml")
		if a.status != 403 || a.up != nil {
			t.Fatalf("bob on /admin: %d, reached the upstream: %v", a.status, a.up != nil)
		}
		if !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") || !strings.Contains(a.body, "bob@example.com") ||
			!strings.Contains(a.body, "/.aero2/sign_out") || strings.Contains(strings.ToLower(a.body), "nginx") {
			t.Errorf("bob's 403 is not Aero2's page (%s):\n%.2000s", a.header.Get("Content-Type"), a.body)
		}
		a = send(t, bob.Client, "GET", "/admin/panel", "Accept: application/json")
		if a.status != 403 || !strings.HasPrefix(a.header.Get("Content-Type"), "application/json") || !strings.Contains(a.body, `"access_denied"`) {
			t.Errorf("bob's script on /admin: %d %s %.300q", a.status, a.header.Get("Content-Type"), a.body)
		}
		alice := p.signedIn(t, "alice")
		if a = send(t, alice.Client, "GET", "/admin/panel"); a.status != 200 || a.up == nil {
			t.Errorf("alice on /admin: %d", a.status)
		}
	})
}

// TestScriptsGet401: a request that cannot come back from a sign-in (a
// JSON or X-Requested-With call, another method than GET: docs/proxy.md,
// "Sign-in") gets the documented 401 with a Bearer challenge, not a
// redirect; nothing reaches the upstream.
func TestScriptsGet401(t *testing.T) {
	eachProxy(t, func(t *testing.T, p *frontProxy) {
		c := noRedirects(p.browser(t))
		for _, tc := range []struct {
			method string
			header []string
		}{
			{"GET", []string{"Accept: application/json"}},
			{"GET", []string{"Accept: application/json, text/plain, */*"}},
			{"GET", []string{"Accept: text/html", "X-Requested-With: XMLHttpRequest"}},
			{"POST", []string{"Accept: text/html"}},
			{"DELETE", nil},
		} {
			a := send(t, c, tc.method, "/api/items?x=1", tc.header...)
			if a.status != 401 || a.up != nil || a.header.Get("WWW-Authenticate") != `Bearer realm="aero2"` || !strings.Contains(a.body, `"unauthorized"`) {
				t.Errorf("%s %v: %d, WWW-Authenticate %q, Location %q: %.300q", tc.method, tc.header, a.status, a.header.Get("WWW-Authenticate"), a.header.Get("Location"), a.body)
			}
		}
	})
}

// TestNoAero2CookieReachesTheUpstream: the app's own cookies reach it;
// Aero2's session and sign-in cookies never do, on any request of any
// test so far.
func TestNoAero2CookieReachesTheUpstream(t *testing.T) {
	eachProxy(t, func(t *testing.T, p *frontProxy) {
		b := p.signedIn(t, "alice")
		u, _ := url.Parse("https://" + appHost + "/")
		b.Jar.SetCookies(u, []*http.Cookie{{Name: "theme", Value: "dark"}})
		a := send(t, b.Client, "GET", "/x", "Cookie: lang=en")
		if a.status != 200 || a.up == nil {
			t.Fatalf("signed in: %d", a.status)
		}
		got := strings.Join(a.up.Header.Values("Cookie"), "; ")
		for _, c := range []string{"theme=dark", "lang=en"} {
			if !strings.Contains(got, c) {
				t.Errorf("the app's own cookie %s did not reach it: Cookie %q", c, got)
			}
		}
	})
	for _, r := range fx.up.every() {
		for _, c := range r.Header.Values("Cookie") {
			if strings.Contains(strings.ToLower(c), "aero2") {
				t.Errorf("one of Aero2's cookies reached the upstream (%s): %q", r.URL, c)
			}
		}
	}
}

// TestForwardAuthIsNotForClients: the front proxy asks Aero2; a client
// asking Aero2's forward-auth endpoint itself (with forwarded headers of
// its choosing) is answered by the front proxy, not by Aero2, however it
// spells the path. (Aero2 believes the forwarded headers of any request
// the front proxy relays: it is a trusted peer.)
func TestForwardAuthIsNotForClients(t *testing.T) {
	eachProxy(t, func(t *testing.T, p *frontProxy) {
		alice := p.signedIn(t, "alice")
		paths := []string{"/.aero2/forward-auth", "/.aero2/forward-auth/envoy/admin", "/.aero2/forward-auth?redirect=0"}
		if p.name == "nginx" {
			paths = append(paths, "/.aero2-auth") // its internal location
		}
		for _, path := range paths {
			a := send(t, alice.Client, "GET", path, "X-Forwarded-Host: "+appHost, "X-Forwarded-Uri: /admin", "X-Forwarded-Method: GET")
			if a.status != 404 || a.header.Get("X-Forwarded-User") != "" || a.header.Get("Cookie") != "" {
				t.Errorf("%s: %d %v", path, a.status, a.header)
			}
		}
		// Other spellings of the path: whatever answers, it is not
		// forward-auth's 200 with alice's identity.
		for _, path := range []string{"/.aero2/%66orward-auth", "/.aero2//forward-auth", "/.aero2/./forward-auth", "/.aero2/x/../forward-auth", "/.aero2/FORWARD-AUTH", "//.aero2/forward-auth"} {
			a := send(t, alice.Client, "GET", path, "X-Forwarded-Host: "+appHost, "X-Forwarded-Uri: /admin", "X-Forwarded-Method: GET")
			if _, ok := a.header["X-Forwarded-User"]; ok || a.header.Get("Cookie") != "" || a.status == 200 && a.body == "" {
				t.Errorf("%s answered like forward-auth: %d %v", path, a.status, a.header)
			}
		}
	})
}
