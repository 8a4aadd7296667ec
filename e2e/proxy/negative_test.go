package proxy_test

import (
	"net/http"
	"net/url"
	"path"
	"strings"
	"testing"

	"github.com/aero2/aero2/server/servertest"
)

func TestSpoofedIdentityHeadersNeverReachTheUpstream(t *testing.T) {
	s := start(t, nil, routesYAML, nil)
	b := servertest.NewBrowser(t)
	b.Get(s.in.URL + "/app") // sign in as alice
	spoof := func(h http.Header) {
		// Written into the map directly, so Go sends them as spelt.
		h["x-forwarded-user"] = []string{"mallory"}
		h["X-FORWARDED-EMAIL"] = []string{"mallory@example.com", "mallory2@example.com"}
		h["X_Forwarded_User"] = []string{"mallory"}
		h["x_forwarded_email"] = []string{"mallory@example.com"}
		h["X-Auth-Request-User"] = []string{"mallory"}
		h["X-Auth-Request-Anything"] = []string{"mallory"}
		h["x-auth_request-email"] = []string{"mallory@example.com"}
		h["X-Forwarded-Groups"] = []string{"admins"}
		h["X-Forwarded-Preferred-Username"] = []string{"mallory"}
		h["Remote-User"] = []string{"mallory"}
		h["remote_groups"] = []string{"mallory"}
		h["X-Webauth-User"] = []string{"mallory"}
		h["X-Authenticated-User"] = []string{"mallory"}
		h["X-Rewrite-Url"] = []string{"/mallory"}
		h["X-Amzn-Oidc-Identity"] = []string{"mallory"}
		h["X-Goog-Authenticated-User-Email"] = []string{"mallory@example.com"}
		h["X-Ms-Client-Principal-Name"] = []string{"mallory"}
		h["X-Pomerium-Claim-Email"] = []string{"mallory@example.com"}
		h["X-User"] = []string{"mallory"}
		h["X-Id-Token"] = []string{"mallory"}
		h["X-Forwarded-Access-Token"] = []string{"mallory"}
		h["X-Aero2-Assertion"] = []string{"mallory"}
		h["Connection"] = []string{"X-Forwarded-Email"} // hop-by-hop trick
	}
	for _, path := range []string{"/app/x", "/public/x", "/"} {
		req, _ := http.NewRequest("GET", s.in.URL+path, nil)
		spoof(req.Header)
		res, err := b.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("%s: %d", path, res.StatusCode)
		}
		seen := s.up.Last(t)
		for k, vs := range seen.Header {
			for _, v := range vs {
				if strings.Contains(v, "mallory") || (k == "X-Forwarded-Groups" && path != "/app/x") {
					t.Errorf("%s: upstream received %s: %s", path, k, v)
				}
			}
		}
		if path == "/app/x" && seen.Header.Get("X-Forwarded-User") != "u-alice" {
			t.Errorf("the real identity is missing: %v", seen.Header)
		}
	}
}

func TestPathTricksCannotReachAProtectedRoute(t *testing.T) {
	s := start(t, nil, routesYAML, nil)
	host := strings.TrimPrefix(s.in.URL, "http://")
	tricks := []struct {
		uri    string
		header []string
	}{
		{"/public/../admin", nil}, {"/public/%2e%2e/admin", nil}, {"/public/%2E%2E/admin/x", nil},
		{"/public%2F..%2Fadmin", nil}, {"/public/..%2Fadmin", nil}, {"/public/%2e%2e%2fadmin", nil},
		{"//admin", nil}, {"/public//../admin", nil}, {"/public/./../admin", nil}, {"/public/..", nil},
		{"/public#/../admin", nil}, {"/public%23/../admin", nil}, {"/public?/../admin", nil},
		{"/ADMIN", nil}, {"/Admin/secret", nil}, {"/%61dmin", nil}, {"/admin%2F", nil}, {"/admin%3F", nil},
		{`/public\..\admin`, nil}, {"/public%5C..%5Cadmin", nil}, {"/admin/", nil}, {"/admin", nil},
		{"/admin", []string{"Host: " + strings.Replace(host, ":", ".:", 1)}}, // trailing dot
		{"/admin", []string{"Host: " + strings.ToUpper("localhost") + ":" + strings.Split(host, ":")[1]}},
		{"http://" + host + "/public/../admin", nil}, // absolute-form request target
	}
	for _, tr := range tricks {
		before := s.up.Count()
		status, loc := rawRequest(t, s.in.URL, tr.uri, tr.header...)
		for _, seen := range s.up.Seen()[before:] {
			// As an upstream might read it: dot segments resolved, '\' as
			// '/', case ignored.
			p := strings.ToLower(path.Clean(strings.ReplaceAll(seen.Path, `\`, "/")))
			if strings.HasPrefix(p, "/admin") {
				t.Errorf("%s reached the upstream as %q (%d)", tr.uri, seen.Path, status)
			}
		}
		switch {
		case status == 308 && loc != "":
			// Redirected to the clean form, which is matched afresh.
			if strings.Contains(loc, "..") || strings.HasPrefix(loc, "//") {
				t.Errorf("%s redirected to %q", tr.uri, loc)
			}
		case status == 400, status == 404, status == 401, status == 421:
		case status == 302 && strings.HasPrefix(loc, s.op.Issuer):
			// Sent to sign in: the protected route was chosen.
		case status == 200 && strings.HasPrefix(tr.uri, "/public?"):
		default:
			t.Errorf("%s: status %d (Location %q)", tr.uri, status, loc)
		}
	}
}

func TestUserOutsideTheAllowListGets403(t *testing.T) {
	s := start(t, nil, routesYAML, nil)
	s.op.SignInAs("u-bob") // engineering, not admins
	b := servertest.NewBrowser(t)
	p := b.Get(s.in.URL + "/admin")
	if p.Status != 403 || !strings.Contains(p.Body, "You are signed in as <strong>bob@example.com</strong>") || !strings.Contains(p.Body, "/.aero2/sign_out") {
		t.Fatalf("bob on /admin: %d\n%s", p.Status, p.Body)
	}
	if strings.Contains(p.Body, s.up.URL) || strings.Contains(p.Body, strings.TrimPrefix(s.up.URL, "http://")) {
		t.Error("the 403 page reveals the upstream")
	}
	if s.up.Count() != 0 {
		t.Error("the upstream was reached")
	}
	// Eve's email is in the allowed domain but not verified.
	s.op.SignInAs("u-eve")
	eve := servertest.NewBrowser(t)
	if p := eve.Get(s.in.URL + "/example"); p.Status != 403 {
		t.Errorf("unverified email on allowed_domains: %d", p.Status)
	}
	s.op.SignInAs("u-bob")
	if p := servertest.NewBrowser(t).Get(s.in.URL + "/example"); p.Status != 200 {
		t.Errorf("bob (verified, example.com) on allowed_domains: %d", p.Status)
	}
}

func TestOpenRedirectsThroughThePostLoginURL(t *testing.T) {
	s := start(t, nil, routesYAML, nil)
	b := servertest.NewBrowser(t).NoRedirects()
	for _, rd := range []string{
		"https://evil.example", "//evil.example", `/\evil.example`, "/\t/evil.example", "javascript:alert(1)",
		"http://" + strings.TrimPrefix(s.in.URL, "http://") + "@evil.example/", "evil.example", "/%0d%0aSet-Cookie:x=y",
		"/public/../admin", "///evil.example",
	} {
		p := b.Get(s.in.URL + "/.aero2/start?rd=" + url.QueryEscape(rd))
		if p.Status != 400 {
			t.Errorf("rd=%q: %d (Location %q)", rd, p.Status, p.Header.Get("Location"))
		}
	}
	// A good rd is honoured after sign-in.
	full := servertest.NewBrowser(t)
	if p := full.Get(s.in.URL + "/.aero2/start?rd=" + url.QueryEscape("/app/after?q=1")); p.Status != 200 || p.URL.String() != s.in.URL+"/app/after?q=1" {
		t.Errorf("good rd ended at %d %s", p.Status, p.URL)
	}
}

// flowTo walks a sign-in by hand, without following redirects, until the
// browser is sent to a URL with the given path prefix, and returns it.
func flowTo(t *testing.T, b *servertest.Browser, start, prefix string) string {
	t.Helper()
	nb := b.NoRedirects()
	loc := start
	for i := 0; i < 10; i++ {
		res, err := nb.Client.Get(loc)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		next, _ := res.Request.URL.Parse(res.Header.Get("Location"))
		loc = next.String()
		if strings.HasPrefix(loc, prefix) {
			return loc
		}
	}
	t.Fatalf("never reached %s", prefix)
	return ""
}

func TestCallbackReplayAndForgery(t *testing.T) {
	s := start(t, nil, routesYAML, nil)
	b := servertest.NewBrowser(t)

	// A callback URL opened in another browser redeems nothing for it:
	// the handoff needs the binding cookie of the browser that started.
	callback := flowTo(t, b, s.in.URL+"/app", s.in.URL+"/.aero2/callback")
	other := servertest.NewBrowser(t)
	if p := other.Get(callback); p.Status != 400 || !strings.Contains(p.URL.Path, "/.aero2/handoff") {
		t.Errorf("callback in another browser: %d at %s", p.Status, p.URL)
	}
	if p := other.NoRedirects().Get(s.in.URL + "/app"); p.Status != 302 {
		t.Errorf("the other browser got a session: %d", p.Status)
	}
	// The state is spent: the starting browser must start again.
	if p := b.Get(callback); p.Status != 400 {
		t.Errorf("callback after it was used elsewhere: %d", p.Status)
	}

	callback = flowTo(t, b, s.in.URL+"/app", s.in.URL+"/.aero2/callback")
	if p := b.Get(callback); p.Status != 200 || p.URL.Path != "/app" {
		t.Fatalf("callback: %d %s", p.Status, p.URL)
	}
	if p := b.Get(callback); p.Status != 400 {
		t.Errorf("replayed callback: %d", p.Status)
	}
	for _, q := range []string{"state=default.forged&code=x", "state=nope.x&code=x", "code=x", "state=" + strings.Repeat("a", 300)} {
		if p := b.Get(s.in.URL + "/.aero2/callback?" + q); p.Status != 400 {
			t.Errorf("callback ?%.30s: %d", q, p.Status)
		}
	}
}

func TestHandoffIsSingleUseAndBound(t *testing.T) {
	s := start(t, nil, routesYAML, nil)
	b := servertest.NewBrowser(t)
	handoff := flowTo(t, b, s.in.URL+"/app", s.in.URL+"/.aero2/handoff")

	// Another browser (no binding cookie), and a browser with a binding
	// cookie of its own, cannot redeem it.
	if p := servertest.NewBrowser(t).Get(handoff); p.Status != 400 {
		t.Errorf("handoff without binding: %d", p.Status)
	}
	mallory := servertest.NewBrowser(t)
	flowTo(t, mallory, s.in.URL+"/app", s.in.URL+"/.aero2/callback") // gets a binding cookie
	if p := mallory.Get(handoff); p.Status != 400 {
		t.Errorf("handoff with another browser's binding: %d", p.Status)
	}
	// Those attempts spent it (it is taken before the checks).
	if p := b.Get(handoff); p.Status != 400 {
		t.Errorf("handoff after others tried it: %d", p.Status)
	}

	handoff = flowTo(t, b, s.in.URL+"/app", s.in.URL+"/.aero2/handoff")
	// On another host of the same server, with the right binding cookie,
	// it is still refused: it was issued for the host that started (and
	// no route serves that host: 421).
	u, _ := url.Parse(handoff)
	req, _ := http.NewRequest("GET", "http://localhost:"+u.Port()+u.RequestURI(), nil)
	for _, c := range b.Jar.Cookies(u) {
		req.AddCookie(c)
	}
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("handoff on another host: %d", res.StatusCode)
	}
	handoff = flowTo(t, b, s.in.URL+"/app", s.in.URL+"/.aero2/handoff")
	if p := b.Get(handoff); p.Status != 200 || p.URL.Path != "/app" {
		t.Fatalf("handoff: %d %s", p.Status, p.URL)
	}
	if p := b.Get(handoff); p.Status != 400 {
		t.Errorf("replayed handoff: %d", p.Status)
	}
	for _, q := range []string{"", "code=default.x", "code=nope." + strings.Repeat("a", 43), "code=" + strings.Repeat("a", 500)} {
		if p := b.Get(s.in.URL + "/.aero2/handoff?" + q); p.Status != 400 {
			t.Errorf("handoff ?%.30s: %d", q, p.Status)
		}
	}
}

// TestClientAddressHeadersOnlyFromTrustedProxies: headers that say where
// the client is or which scheme it used reach the upstream only from a
// trusted proxy in front; identity headers never do.
func TestClientAddressHeadersOnlyFromTrustedProxies(t *testing.T) {
	send := func(t *testing.T, s *setup) http.Header {
		req, _ := http.NewRequest("GET", s.in.URL+"/public/x", nil)
		req.Header["True-Client-Ip"] = []string{"10.6.6.6"}
		req.Header["Cf-Connecting-Ip"] = []string{"10.6.6.6"}
		req.Header["Forwarded"] = []string{"for=10.6.6.6;proto=https"}
		req.Header["X-Forwarded-Ssl"] = []string{"on"}
		req.Header["Remote-User"] = []string{"mallory"}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("status %d", res.StatusCode)
		}
		return s.up.Last(t).Header
	}
	// Loopback, the test client, is not trusted here.
	untrusted := startEdited(t, nil, routesYAML, nil, func(c string) string {
		return strings.Replace(c, "server:\n", "server:\n  trusted_proxies: [10.9.9.9/32]\n", 1)
	})
	h := send(t, untrusted)
	for _, n := range []string{"True-Client-Ip", "Cf-Connecting-Ip", "Forwarded", "X-Forwarded-Ssl", "Remote-User"} {
		if v := h.Get(n); v != "" {
			t.Errorf("from an untrusted client, the upstream got %s: %s", n, v)
		}
	}
	// Loopback is trusted by default: a proxy there may say who the client is.
	h = send(t, start(t, nil, routesYAML, nil))
	if h.Get("True-Client-Ip") != "10.6.6.6" || h.Get("X-Forwarded-Ssl") != "on" || h.Get("Forwarded") != "" || h.Get("Remote-User") != "" {
		t.Errorf("from a trusted proxy: %v", h)
	}
}
