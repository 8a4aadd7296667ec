package server_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aero2/aero2/server/servertest"
)

// ownedPaths are the paths of an application, relative to its issuer,
// with the methods each answers; every other method gets 405 with Allow.
// A nil list means the path is Aero2's but serves nothing (404).
var ownedPaths = map[string][]string{
	"/login":                            {"GET", "HEAD"},
	"/logout":                           {"POST"},
	"/account":                          {"GET", "HEAD"},
	"/account/sessions/end":             {"POST"},
	"/rp/authorize":                     {"GET", "HEAD"},
	"/rp/callback/dev":                  {"GET", "HEAD"},
	"/rp/idp/dev/login":                 {"GET", "HEAD", "POST"},
	"/oauth2/authorize":                 {"GET", "HEAD", "POST"},
	"/oauth2/consent":                   {"POST"},
	"/oauth2/token":                     {"POST"},
	"/oauth2/userinfo":                  {"GET", "POST"},
	"/oauth2/introspect":                {"POST"},
	"/oauth2/revoke":                    {"POST"},
	"/oauth2/logout":                    {"GET", "HEAD", "POST"},
	"/.well-known/openid-configuration": {"GET", "HEAD"},
	"/.well-known/jwks.json":            {"GET", "HEAD"},
	"/oauth2/nope":                      nil,
	"/rp/nope":                          nil,
	"/.well-known/nope":                 nil,
	"/account/nope":                     nil,
}

// proxyPaths are the proxy's own endpoints, on every host it serves.
var proxyPaths = map[string][]string{
	"/.aero2/callback":   {"GET"},
	"/.aero2/handoff":    {"GET"},
	"/.aero2/start":      {"GET"},
	"/.aero2/sign_out":   {"GET", "POST"},
	"/.aero2/signed_out": {"GET"},
	"/.aero2/nope":       nil,
}

var everyMethod = []string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND", "POS", "ET"}

// TestOwnPathsNeverReachAnUpstream is issue 8 item 6: with a catch-all
// public route on the issuer's host, every path Aero2 owns — the
// application's pages and provider endpoints, the proxy's endpoints — is
// answered by Aero2 for every method, with 405 and Allow for the methods
// it does not serve, and nothing reaches the upstream. It is run for an
// issuer at the root of its host, under a path, and at /.aero2 (the
// sidecar's way to leave every other path, /login included, to its app).
func TestOwnPathsNeverReachAnUpstream(t *testing.T) {
	var reached atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		w.Write([]byte("upstream"))
	}))
	defer up.Close()
	catchAll := `
routes:
  - {path: /, upstream: "` + up.URL + `", policy: {public: true}}
`
	for _, tc := range []struct {
		name, config, base string
		// free are paths the upstream must get: a route is there.
		free []string
	}{
		{name: "issuer at the root", config: servertest.DevConfig + catchAll, base: "", free: []string{"/", "/app", "/login/x"}},
		{name: "issuer with a path", base: "/shop", free: []string{"/", "/login", "/oauth2/token", "/shopping"}, config: `
insecure_dev: true
store: {type: memory}
secrets: {cookie_keys: ["` + servertest.CookieKey + `"], storage_key: "` + servertest.StorageKey + `"}
applications:
  - name: shop
    issuer: "{{.URL}}/shop"
    identity_providers: [{id: dev, type: dev, config: {users: [{username: alice}]}}]
    routes:
      - {path: /, upstream: "` + up.URL + `", policy: {public: true}}
`},
		{name: "issuer at /.aero2", base: "/.aero2", free: []string{"/", "/login", "/account", "/logout", "/oauth2/token", "/.well-known/openid-configuration"},
			config: strings.Replace(servertest.DevConfig, `public_url: "{{.URL}}"`, `public_url: "{{.URL}}/.aero2"`, 1) + catchAll},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := servertest.Start(t, tc.config, nil)
			check := func(path string, allow []string) {
				t.Helper()
				for _, m := range everyMethod {
					before := reached.Load()
					req, err := http.NewRequest(m, in.URL+path, nil)
					if err != nil {
						t.Fatal(err)
					}
					res, err := http.DefaultTransport.RoundTrip(req)
					if err != nil {
						t.Fatalf("%s %s: %v", m, path, err)
					}
					res.Body.Close()
					if reached.Load() != before {
						t.Errorf("%s %s reached the upstream (%d)", m, path, res.StatusCode)
						continue
					}
					switch {
					case allow == nil:
						if res.StatusCode != http.StatusNotFound {
							t.Errorf("%s %s: %d, want 404", m, path, res.StatusCode)
						}
					case !slices.Contains(allow, m):
						if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") == "" {
							t.Errorf("%s %s: %d (Allow %q), want 405 with Allow", m, path, res.StatusCode, res.Header.Get("Allow"))
						}
					case res.StatusCode == http.StatusMethodNotAllowed:
						t.Errorf("%s %s: 405 for a method it serves", m, path)
					}
				}
			}
			for p, allow := range ownedPaths {
				check(tc.base+p, allow)
			}
			if tc.base != "" {
				check(tc.base+"/", []string{"GET", "HEAD"}) // the home page
			}
			for p, allow := range proxyPaths {
				check(p, allow)
			}
			// What Aero2 does not own is the route's, for every method.
			for _, p := range tc.free {
				for _, m := range everyMethod {
					before := reached.Load()
					req, _ := http.NewRequest(m, in.URL+p, nil)
					res, err := http.DefaultTransport.RoundTrip(req)
					if err != nil {
						t.Fatal(err)
					}
					res.Body.Close()
					if reached.Load() != before+1 {
						t.Errorf("%s %s did not reach the upstream: %d", m, p, res.StatusCode)
					}
				}
			}
		})
	}
}

// TestHomePageWithoutARouteForIt is issue 14's first address: with a route
// on another path only (the quickstart's /demo), "/" on the issuer's host
// is the application's home page (it leads to the account page), not the
// proxy's 404; with a route for "/", the route has it.
func TestHomePageWithoutARouteForIt(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("upstream")) }))
	defer up.Close()
	in := servertest.Start(t, servertest.DevConfig+`
routes:
  - {path: /demo, upstream: "`+up.URL+`", strip_prefix: true}
`, nil)
	b := servertest.NewBrowser(t)
	if p := b.NoRedirects().Get(in.URL + "/"); p.Status != http.StatusFound || p.Header.Get("Location") != in.URL+"/account" {
		t.Errorf("/ answered %d, Location %q", p.Status, p.Header.Get("Location"))
	}
	if p := b.SignInDev(in.URL+"/", "alice"); p.Status != 200 || p.URL.Path != "/account" {
		t.Errorf("/ led to %d %s", p.Status, p.URL)
	}
	// The proxy's "Signed out, Continue" link is "/": after signing out it
	// leads to the sign-in page, not to a 404.
	if p := b.Get(in.URL + "/.aero2/signed_out"); !strings.Contains(p.Body, `href="/"`) {
		t.Fatalf("signed-out page without a link to /:\n%s", p.Body)
	}
	if p := b.Get(in.URL + "/.aero2/nope"); p.Status != http.StatusNotFound {
		t.Errorf("/.aero2/nope: %d", p.Status)
	}
	if p := b.Get(in.URL + "/nothing-here"); p.Status != http.StatusNotFound {
		t.Errorf("/nothing-here: %d", p.Status)
	}
}
