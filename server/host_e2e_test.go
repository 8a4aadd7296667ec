package server_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store"
)

// identityRecorder is an upstream that remembers every email the proxy
// said a request came from.
type identityRecorder struct {
	mu     sync.Mutex
	emails []string
}

func (ir *identityRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ir.mu.Lock()
	ir.emails = append(ir.emails, r.Header.Get("X-Forwarded-Email"))
	ir.mu.Unlock()
	io.WriteString(w, "upstream "+r.URL.RequestURI())
}

// newIdentityUpstream starts an identityRecorder as an upstream on
// loopback, closed when the test ends, and returns it and its URL.
func newIdentityUpstream(t *testing.T) (*identityRecorder, string) {
	ir := &identityRecorder{}
	up := httptest.NewServer(ir)
	t.Cleanup(up.Close)
	return ir, up.URL
}

func (ir *identityRecorder) reset() {
	ir.mu.Lock()
	ir.emails = nil
	ir.mu.Unlock()
}

func (ir *identityRecorder) saw(email string) bool {
	ir.mu.Lock()
	defer ir.mu.Unlock()
	for _, e := range ir.emails {
		if e == email {
			return true
		}
	}
	return false
}

// attacker talks to Aero2's real address with whatever Host it likes,
// keeps its own cookies (per Host, as a browser's jar would for the sites
// it visits) and never follows a redirect.
type attacker struct {
	t       *testing.T
	addr    *url.URL // where Aero2 listens
	cookies map[string]map[string]string
}

func newAttacker(t *testing.T, addr string) *attacker {
	u, err := url.Parse(addr)
	if err != nil {
		t.Fatal(err)
	}
	return &attacker{t: t, addr: u, cookies: map[string]map[string]string{}}
}

// get sends GET requestURI to Aero2 with Host: host and the cookies the
// attacker holds for host, plus extra headers, and keeps the cookies the
// answer sets.
func (a *attacker) get(host, requestURI string, extra ...string) *http.Response {
	a.t.Helper()
	req, err := http.NewRequest("GET", a.addr.Scheme+"://"+a.addr.Host+requestURI, nil)
	if err != nil {
		a.t.Fatal(err)
	}
	req.Host = host
	for name, v := range a.cookies[host] {
		req.AddCookie(&http.Cookie{Name: name, Value: v})
	}
	for i := 0; i+1 < len(extra); i += 2 {
		req.Header.Set(extra[i], extra[i+1])
	}
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		a.t.Fatalf("GET %s (Host %s): %v", requestURI, host, err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	for _, c := range res.Cookies() {
		if a.cookies[host] == nil {
			a.cookies[host] = map[string]string{}
		}
		if c.MaxAge < 0 {
			delete(a.cookies[host], c.Name)
		} else {
			a.cookies[host][c.Name] = c.Value
		}
	}
	return res
}

// follow walks the victim's browser through a link, hop by hop, for as
// long as every hop stays on one of origins (the ones the configuration
// names). It returns the first address outside them — where a browser
// would go next — or "" when the walk ended on Aero2.
func follow(t *testing.T, b *servertest.Browser, link string, origins ...string) string {
	t.Helper()
	nb := b.NoRedirects()
	for range 20 {
		u, err := url.Parse(link)
		if err != nil {
			t.Fatalf("link %q: %v", link, err)
		}
		if !containsOrigin(origins, u.Scheme+"://"+u.Host) {
			return link
		}
		res, err := nb.Client.Get(link)
		if err != nil {
			t.Fatalf("GET %s: %v", link, err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		loc := res.Header.Get("Location")
		if res.StatusCode < 300 || res.StatusCode > 399 || loc == "" {
			return ""
		}
		next, err := u.Parse(loc)
		if err != nil {
			t.Fatalf("Location %q: %v", loc, err)
		}
		link = next.String()
	}
	t.Fatal("too many redirects")
	return ""
}

func containsOrigin(origins []string, o string) bool {
	for _, x := range origins {
		if x == o {
			return true
		}
	}
	return false
}

// TestForgedHostCannotTakeOverAnAccount is issue 8's account takeover, tried
// end to end: a victim is signed in at Aero2's own provider (through the
// dev identity provider); an attacker, with a cookie jar of its own,
// starts a proxy sign-in with a Host of its choosing and gets the victim
// to open the resulting link. Aero2 must never send the victim's browser,
// with a handoff code, anywhere but an origin its configuration names, and
// the attacker must end with no session: the upstream never sees the
// victim's identity.
func TestForgedHostCannotTakeOverAnAccount(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		ir, upURL := newIdentityUpstream(t)
		// Routes without `host`, like the quickstart's /demo and the
		// sidecar's `upstream:` shorthand.
		in := servertest.Start(t, servertest.DevConfig+`
routes:
  - {path: /app, upstream: "`+upURL+`"}
  - {path: /admin, upstream: "`+upURL+`", policy: {allowed_groups: [admins]}}
`, st)
		issuer, _ := url.Parse(in.URL)
		victim := servertest.NewBrowser(t)
		if p := victim.SignInDev(in.URL+"/login", "alice"); p.Status != 200 || p.URL.Path != "/account" {
			t.Fatalf("the victim's sign-in ended at %d %s", p.Status, p.URL)
		}

		for _, tc := range []struct {
			name, host, start string
			extra             []string
		}{
			{name: "any host", host: "evil.example", start: "/app/x"},
			{name: "any host with this port", host: "evil.example:" + issuer.Port(), start: "/app/x"},
			{name: "the start endpoint", host: "evil.example", start: "/.aero2/start?rd=/admin"},
			{name: "another name of this machine", host: "localhost:" + issuer.Port(), start: "/app/x"},
			{name: "another port", host: issuer.Hostname() + ":1", start: "/app/x"},
			{name: "the real host, another scheme", host: issuer.Host, start: "/app/x", extra: []string{"X-Forwarded-Proto", "https"}},
			{name: "the real host, another forwarded host", host: issuer.Host, start: "/app/x", extra: []string{"X-Forwarded-Host", "evil.example"}},
			// The control: a sign-in started on the real host comes back
			// to the real host, where the victim's browser lacks the
			// attacker's binding cookie.
			{name: "the real host", host: issuer.Host, start: "/app/x"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ir.reset()
				mallory := newAttacker(t, in.Addr)
				res := mallory.get(tc.host, tc.start, tc.extra...)
				if res.StatusCode == http.StatusFound && strings.HasPrefix(res.Header.Get("Location"), in.URL+"/oauth2/authorize?") {
					// The victim opens the attacker's link.
					if offsite := follow(t, victim, res.Header.Get("Location"), in.URL); offsite != "" {
						t.Errorf("the victim's browser was sent to %s", offsite)
						// The attacker owns that address and replays what
						// arrived there.
						if u, err := url.Parse(offsite); err == nil {
							mallory.get(u.Host, u.RequestURI(), tc.extra...)
						}
					}
				} else if res.StatusCode == http.StatusFound {
					t.Errorf("Host %s: redirected to %s", tc.host, res.Header.Get("Location"))
				}
				// Whatever the attacker holds now, on the forged host and on
				// the real one, admits nobody.
				var all []string
				for _, cs := range mallory.cookies {
					for n, v := range cs {
						all = append(all, n, v)
					}
				}
				for _, host := range []string{tc.host, issuer.Host} {
					for _, p := range []string{"/app/x", "/admin"} {
						if host != tc.host {
							// Carry every cookie the attacker got, under
							// its own name, to this host.
							for i := 0; i+1 < len(all); i += 2 {
								if mallory.cookies[host] == nil {
									mallory.cookies[host] = map[string]string{}
								}
								mallory.cookies[host][all[i]] = all[i+1]
							}
						}
						if res := mallory.get(host, p, "Accept", "application/json"); res.StatusCode == http.StatusOK {
							t.Errorf("the attacker's request for %s on %s was admitted", p, host)
						}
					}
				}
				if ir.saw("alice@example.com") {
					t.Fatal("the upstream received a request with the victim's identity")
				}
			})
		}
	})
}

// TestProxySessionIsBoundToItsHost: a proxy session admits on the origin
// it was created for only. The victim's session cookie from the issuer's
// host, carried to another host of the same application (where a route
// serves the same upstream), admits nobody there: the bearer is sent to
// sign in, and the upstream never sees the victim.
func TestProxySessionIsBoundToItsHost(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		ir, upURL := newIdentityUpstream(t)
		in := servertest.Start(t, servertest.DevConfig+`
routes:
  - {path: /app, upstream: "`+upURL+`"}
  - {host: "app.localhost:{{.Port}}", path: /, upstream: "`+upURL+`"}
`, st)
		victim := servertest.NewBrowser(t)
		if p := victim.SignInDev(in.URL+"/app/x", "alice"); p.Status != 200 || p.Body != "upstream /app/x" {
			t.Fatalf("sign-in through the proxy ended at %d %s: %q", p.Status, p.URL, p.Body)
		}
		ir.reset()
		issuer, _ := url.Parse(in.URL)
		mallory := newAttacker(t, in.Addr)
		other := "app.localhost:" + issuer.Port()
		for _, c := range victim.Jar.Cookies(issuer) {
			if mallory.cookies[other] == nil {
				mallory.cookies[other] = map[string]string{}
			}
			mallory.cookies[other][c.Name] = c.Value
		}
		res := mallory.get(other, "/app/x")
		if res.StatusCode != http.StatusFound || !strings.HasPrefix(res.Header.Get("Location"), in.URL+"/oauth2/authorize?") {
			t.Errorf("the issuer host's session on %s: %d %q, want a sign-in", other, res.StatusCode, res.Header.Get("Location"))
		}
		if ir.saw("alice@example.com") {
			t.Error("the upstream received the victim's identity on another host")
		}
		// On its own host the session still admits.
		if p := victim.NoRedirects().Get(in.URL + "/app/y"); p.Status != 200 {
			t.Errorf("the session on its own host: %d", p.Status)
		}
	})
}

// TestHandoffOnlyOnTheHostThatStarted: a sign-in started on one route host
// hands off there only. Its handoff link, carried with the binding cookie
// to another host of the same application, signs nobody in.
func TestHandoffOnlyOnTheHostThatStarted(t *testing.T) {
	ir, upURL := newIdentityUpstream(t)
	in := servertest.Start(t, servertest.DevConfig+`
routes:
  - {host: "app.localhost:{{.Port}}", path: /, upstream: "`+upURL+`"}
  - {host: "other.localhost:{{.Port}}", path: /, upstream: "`+upURL+`"}
`, nil)
	issuer, _ := url.Parse(in.URL)
	app := "http://app.localhost:" + issuer.Port()
	other := "http://other.localhost:" + issuer.Port()
	b := servertest.NewBrowser(t)
	b.SignInDev(in.URL+"/login", "alice")
	// Walk the sign-in on app.localhost up to its handoff.
	nb := b.NoRedirects()
	link, handoff := app+"/x", ""
	for range 10 {
		p := nb.Get(link)
		loc := p.Header.Get("Location")
		if loc == "" {
			t.Fatalf("the sign-in stopped at %d %s", p.Status, p.URL)
		}
		next, _ := p.URL.Parse(loc)
		if next.Path == "/.aero2/callback" {
			// The callback is served on the issuer's origin only.
			if p := nb.Get(strings.Replace(next.String(), in.URL, app, 1)); p.Status != http.StatusBadRequest {
				t.Errorf("the callback on a route's host: %d", p.Status)
			}
		}
		if next.Path == "/.aero2/handoff" {
			handoff = next.String()
			break
		}
		link = next.String()
	}
	if !strings.HasPrefix(handoff, app+"/.aero2/handoff?") {
		t.Fatalf("the handoff is at %q, want on %s", handoff, app)
	}
	// The binding cookie, copied to the other host, with the handoff link.
	appURL, _ := url.Parse(app)
	otherURL, _ := url.Parse(other)
	b.Jar.SetCookies(otherURL, b.Jar.Cookies(appURL))
	moved := strings.Replace(handoff, app, other, 1)
	if p := nb.Get(moved); p.Status != http.StatusBadRequest || len(p.Header.Values("Set-Cookie")) != 0 {
		t.Errorf("the handoff on another host: %d, Set-Cookie %q", p.Status, p.Header.Values("Set-Cookie"))
	}
	if p := nb.Get(other + "/x"); p.Status == http.StatusOK || ir.saw("alice@example.com") {
		t.Errorf("the other host admitted: %d", p.Status)
	}
}

// TestRouteWithoutHostServesConfiguredHostsOnly: a route without `host`
// serves its application's hosts — the issuer's, and those `hosts` lists
// — and no other: any other Host gets 421 Misdirected Request, from the
// proxy and from forward-auth alike, and never reaches the upstream.
func TestRouteWithoutHostServesConfiguredHostsOnly(t *testing.T) {
	ir, upURL := newIdentityUpstream(t)
	in := servertest.Start(t, servertest.DevConfig+`
hosts: ["legacy.localhost:{{.Port}}"]
routes:
  - {path: /, upstream: "`+upURL+`", policy: {public: true}}
  - {path: /fa, policy: {public: true}}
`, nil)
	issuer, _ := url.Parse(in.URL)
	port := issuer.Port()
	c := newAttacker(t, in.Addr)
	for host, want := range map[string]int{
		issuer.Host:                 http.StatusOK,
		"legacy.localhost:" + port:  http.StatusOK,
		"LEGACY.localhost.:" + port: http.StatusOK,
		"evil.example":              http.StatusMisdirectedRequest,
		"evil.example:" + port:      http.StatusMisdirectedRequest,
		"localhost:" + port:         http.StatusMisdirectedRequest,
		"legacy.localhost":          http.StatusMisdirectedRequest,
		"legacy.localhost:1":        http.StatusMisdirectedRequest,
		"127.0.0.1":                 http.StatusMisdirectedRequest,
	} {
		ir.reset()
		res := c.get(host, "/page")
		if res.StatusCode != want {
			t.Errorf("Host %s: %d, want %d", host, res.StatusCode, want)
		}
		if reached := len(ir.emails) > 0; reached != (want == http.StatusOK) {
			t.Errorf("Host %s: reached the upstream: %v", host, reached)
		}
		// Forward-auth judges the host it is asked about by the same rules.
		res = c.get(issuer.Host, "/.aero2/forward-auth", "X-Forwarded-Host", host, "X-Forwarded-Uri", "/fa", "X-Forwarded-Method", "GET")
		if (res.StatusCode == http.StatusOK) != (want == http.StatusOK) {
			t.Errorf("forward-auth for Host %s: %d", host, res.StatusCode)
		}
	}
	// The health endpoints answer probes on any host (a kubelet uses the
	// pod's address).
	if res := c.get("10.1.2.3:8080", "/healthz"); res.StatusCode != http.StatusOK {
		t.Errorf("/healthz on another host: %d", res.StatusCode)
	}
}
