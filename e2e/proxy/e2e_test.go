package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aero2/aero2/proxy/proxytest"
	"github.com/aero2/aero2/server"
	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store"
)

// setup is a whole Aero2 (server, proxy) in front of a recording upstream,
// signing in at a zitadel provider.
type setup struct {
	in *servertest.Instance
	op *proxytest.OP
	up *proxytest.Upstream
}

// routesYAML is the default routes of the tests; UP is the upstream.
const routesYAML = `
routes:
  - {path: /, upstream: "UP", policy: {public: true}}
  - {path: /public, upstream: "UP", policy: {public: true}}
  - {path: /admin, upstream: "UP", policy: {allowed_groups: [admins]}}
  - {path: /app, upstream: "UP"}
  - {path: /example, upstream: "UP", policy: {allowed_domains: [example.com]}}
  - {path: /ws, upstream: "UP"}
  - {path: /events, upstream: "UP"}
  - {path: /upload, upstream: "UP"}
  - {path: /stripped, upstream: "UP/base", strip_prefix: true, rewrite_host: true}
`

func start(t *testing.T, st store.Store, routes string, mount func(*proxytest.Upstream, *http.ServeMux)) *setup {
	t.Helper()
	return startEdited(t, st, routes, mount, func(s string) string { return s })
}

// startEdited is start with the configuration edited before use.
func startEdited(t *testing.T, st store.Store, routes string, mount func(*proxytest.Upstream, *http.ServeMux), edit func(string) string) *setup {
	t.Helper()
	return startWith(t, st, routes, mount, edit, server.Options{})
}

// startWith is startEdited with server options.
func startWith(t *testing.T, st store.Store, routes string, mount func(*proxytest.Upstream, *http.ServeMux), edit func(string) string, so server.Options) *setup {
	t.Helper()
	op := proxytest.StartOP(t)
	up, mux := proxytest.StartUpstream(t)
	if mount != nil {
		mount(up, mux)
	}
	cfg := servertest.DevConfig + `
proxy:
  provider: "` + op.Issuer + `"
  client_id: ` + proxytest.ClientID + `
  client_secret: ` + proxytest.ClientSecret + `
` + strings.ReplaceAll(routes, "UP", up.URL)
	in := servertest.StartWith(t, edit(cfg), servertest.Options{Store: st, Server: so})
	op.AllowRedirect(in.URL + "/.aero2/callback")
	return &setup{in: in, op: op, up: up}
}

func stores(t *testing.T, fn func(t *testing.T, st store.Store)) {
	t.Run("memory", func(t *testing.T) { fn(t, nil) })
	t.Run("redis", func(t *testing.T) { fn(t, servertest.SharedStore(t)) })
}

// rawRequest sends a request line and headers exactly as written, which
// Go's client would clean up, and returns the status and Location.
func rawRequest(t *testing.T, base, requestURI string, headers ...string) (int, string) {
	t.Helper()
	u, _ := url.Parse(base)
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	host := u.Host
	for _, h := range headers {
		if strings.HasPrefix(h, "Host: ") {
			host = strings.TrimPrefix(h, "Host: ")
		}
	}
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", requestURI, host)
	for _, h := range headers {
		if !strings.HasPrefix(h, "Host: ") {
			fmt.Fprintf(c, "%s\r\n", h)
		}
	}
	fmt.Fprint(c, "\r\n")
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%s: %v", requestURI, err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, res.Header.Get("Location")
}

func TestSignInReturnsToTheOriginalURLWithIdentity(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		s := start(t, st, routesYAML, nil)
		b := servertest.NewBrowser(t)
		p := b.Get(s.in.URL + "/admin/page?x=1&y=%2F")
		if p.Status != 200 || p.URL.String() != s.in.URL+"/admin/page?x=1&y=%2F" {
			t.Fatalf("ended at %d %s:\n%s", p.Status, p.URL, p.Body)
		}
		seen := s.up.Last(t)
		want := map[string]string{
			"X-Forwarded-User": "u-alice", "X-Auth-Request-User": "u-alice",
			"X-Forwarded-Email": "alice@example.com", "X-Auth-Request-Email": "alice@example.com",
			"X-Forwarded-Preferred-Username": "alice", "X-Auth-Request-Preferred-Username": "alice",
			"X-Forwarded-Groups": "admins,engineering", "X-Auth-Request-Groups": "admins,engineering",
			"X-Forwarded-Proto": "http", "X-Forwarded-For": "127.0.0.1",
		}
		for k, v := range want {
			if got := seen.Header.Values(k); len(got) != 1 || got[0] != v {
				t.Errorf("upstream got %s = %q, want %q", k, got, v)
			}
		}
		host := strings.TrimPrefix(s.in.URL, "http://")
		if seen.Host != host || seen.Header.Get("X-Forwarded-Host") != host {
			t.Errorf("upstream Host %q, X-Forwarded-Host %q; want %q", seen.Host, seen.Header.Get("X-Forwarded-Host"), host)
		}
		if seen.Path != "/admin/page" || seen.Query != "x=1&y=%2F" {
			t.Errorf("upstream got %s ? %s", seen.Path, seen.Query)
		}
		for _, c := range seen.Header.Values("Cookie") {
			if strings.Contains(c, "aero2_proxy") || strings.Contains(c, "aero2_session") {
				t.Errorf("a session cookie reached the upstream: %s", c)
			}
		}
		// The next request needs no sign-in: the session admits it.
		if p := b.Get(s.in.URL + "/app/next"); p.Status != 200 || p.URL.Path != "/app/next" {
			t.Errorf("second request: %d %s", p.Status, p.URL)
		}
	})
}

func TestStripPrefixAndRewriteHost(t *testing.T) {
	s := start(t, nil, routesYAML, nil)
	b := servertest.NewBrowser(t)
	if p := b.Get(s.in.URL + "/stripped/a/b"); p.Status != 200 {
		t.Fatalf("status %d", p.Status)
	}
	seen := s.up.Last(t)
	if seen.Path != "/base/a/b" || seen.Host != strings.TrimPrefix(s.up.URL, "http://") {
		t.Errorf("upstream got host %q path %q", seen.Host, seen.Path)
	}
}

func TestAPIClientsGet401NotRedirects(t *testing.T) {
	s := start(t, nil, routesYAML, nil)
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for name, req := range map[string]func() *http.Request{
		"json": func() *http.Request {
			r, _ := http.NewRequest("GET", s.in.URL+"/app", nil)
			r.Header.Set("Accept", "application/json")
			return r
		},
		"xhr": func() *http.Request {
			r, _ := http.NewRequest("GET", s.in.URL+"/app", nil)
			r.Header.Set("X-Requested-With", "XMLHttpRequest")
			return r
		},
		"post": func() *http.Request {
			r, _ := http.NewRequest("POST", s.in.URL+"/app", strings.NewReader("x"))
			return r
		},
	} {
		res, err := c.Do(req())
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 401 || !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: %d %q, want 401 with WWW-Authenticate", name, res.StatusCode, res.Header.Get("WWW-Authenticate"))
		}
	}
	// A browser navigation goes to the provider.
	req, _ := http.NewRequest("GET", s.in.URL+"/app", nil)
	req.Header.Set("Accept", "text/html")
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if loc := res.Header.Get("Location"); res.StatusCode != 302 || !strings.HasPrefix(loc, s.op.Issuer) || !strings.Contains(loc, "code_challenge_method=S256") {
		t.Errorf("browser: %d %s", res.StatusCode, loc)
	}
	if s.up.Count() != 0 {
		t.Errorf("the upstream was reached %d times without a session", s.up.Count())
	}
}
