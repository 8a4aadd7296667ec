package server_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aero2/aero2/server/servertest"
)

// setCookieRecorder wraps a browser's transport and keeps every cookie the
// server sets, with its attributes.
type setCookieRecorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	set  []*http.Cookie
}

func (s *setCookieRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := s.next.RoundTrip(r)
	if err == nil {
		s.mu.Lock()
		s.set = append(s.set, res.Cookies()...)
		s.mu.Unlock()
	}
	return res, err
}

// TestCookiesASiblingCannotPlant is issue 8 item 10, over https: every
// cookie Aero2 sets — sessions, sign-in bindings, the proxy's — is
// __Host- (Secure, Path=/, no Domain), also for an application whose
// issuer has a path, whose name carries that path instead. A valid token
// under a name a sibling host can set (no prefix, or __Secure- from a
// subdomain) signs nobody in, on Aero2's pages or at the proxy; and none
// of Aero2's cookies reaches the upstream.
func TestCookiesASiblingCannotPlant(t *testing.T) {
	var mu sync.Mutex
	var upstreamCookies []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		upstreamCookies = append(upstreamCookies, r.Header.Get("Cookie"))
		mu.Unlock()
		w.Write([]byte("upstream"))
	}))
	defer up.Close()
	in := servertest.StartWith(t, `
insecure_dev: true
store: {type: memory}
secrets: {cookie_keys: ["`+servertest.CookieKey+`"], storage_key: "`+servertest.StorageKey+`"}
applications:
  - name: main
    issuer: "{{.URL}}"
    identity_providers: [{id: dev, type: dev, config: {users: [{username: alice, email: alice@example.com}]}}]
    routes: [{path: /app, upstream: "`+up.URL+`"}]
  - name: blog
    issuer: "{{.URL}}/blog"
    identity_providers: [{id: dev, type: dev, config: {users: [{username: alice, email: alice@example.com}]}}]
`, servertest.Options{TLS: true})
	b := in.NewBrowser(t)
	rec := &setCookieRecorder{next: b.Client.Transport}
	b.Client.Transport = rec
	if p := b.SignInDev(in.URL+"/login", "alice"); p.URL.Path != "/account" {
		t.Fatalf("main sign-in ended at %d %s", p.Status, p.URL)
	}
	if p := b.SignInDev(in.URL+"/blog/login", "alice"); p.URL.Path != "/blog/account" {
		t.Fatalf("blog sign-in ended at %d %s", p.Status, p.URL)
	}
	if p := b.Get(in.URL + "/app/x"); p.Status != 200 || p.Body != "upstream" {
		t.Fatalf("proxy sign-in ended at %d %s", p.Status, p.URL)
	}

	live := map[string]string{} // name → the last value set
	for _, c := range rec.set {
		if !strings.HasPrefix(c.Name, "__Host-") || !c.Secure || c.Path != "/" || c.Domain != "" || !c.HttpOnly {
			t.Errorf("cookie %s: %s", c.Name, c)
		}
		if c.MaxAge >= 0 && c.Value != "" {
			live[c.Name] = c.Value
		}
	}
	for _, want := range []string{"__Host-aero2_session_main", "__Host-aero2_session_blog!blog", "__Host-aero2_proxy_main"} {
		if live[want] == "" {
			t.Errorf("no cookie %s was set; set: %v", want, rec.set)
		}
	}

	// Each token, under its own name and under the names a sibling could
	// plant.
	for _, tc := range []struct{ name, page string }{
		{"__Host-aero2_session_main", "/account"},
		{"__Host-aero2_session_blog!blog", "/blog/account"},
		{"__Host-aero2_proxy_main", "/app/x"},
	} {
		bare := strings.TrimPrefix(tc.name, "__Host-")
		for _, name := range []string{tc.name, bare, "__Secure-" + bare} {
			req, _ := http.NewRequest("GET", in.URL+tc.page, nil)
			req.Header.Set("Cookie", name+"="+live[tc.name])
			res, err := in.HTTP.Client().Transport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			admitted := res.StatusCode == http.StatusOK
			if admitted != (name == tc.name) {
				t.Errorf("%s with the token as %s: %d", tc.page, name, res.StatusCode)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, c := range upstreamCookies {
		if strings.Contains(c, "aero2") {
			t.Errorf("an Aero2 cookie reached the upstream: %q", c)
		}
	}
}
