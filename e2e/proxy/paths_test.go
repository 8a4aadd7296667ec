package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/aero2/aero2/pathread/pathreadtest"
	"github.com/aero2/aero2/proxy/servlettest"
	"github.com/aero2/aero2/server/servertest"
)

// tomcatRoutes are examples/routing's wiki routes — anyone signed in on /,
// the admins group on /admin, public /static — plus the public /public of
// issue 8 and an admins-only /desk (for case variants with 's' and 'k'),
// all on one upstream: a real Tomcat with an admin servlet on /admin/* and
// a default servlet on /. pathreadtest.AdminReadings are the attacks on
// them.
const tomcatRoutes = `
routes:
  - {path: /, upstream: "TOMCAT"}
  - {path: /admin, upstream: "TOMCAT", policy: {allowed_groups: [admins]}}
  - {path: /desk, upstream: "TOMCAT", policy: {allowed_groups: [admins]}}
  - {path: /static, upstream: "TOMCAT", policy: {public: true}}
  - {path: /public, upstream: "TOMCAT", policy: {public: true}}
`

type tomcatSetup struct {
	*setup
	tomcat *servlettest.Tomcat
	host   string
	// cookies of a signed-in browser, by user ("" is anonymous).
	cookies map[string]string
}

func startTomcat(t *testing.T) *tomcatSetup {
	t.Helper()
	tc := servlettest.Start(t)
	s := start(t, nil, strings.ReplaceAll(tomcatRoutes, "TOMCAT", tc.URL), nil)
	ts := &tomcatSetup{setup: s, tomcat: tc, host: strings.TrimPrefix(s.in.URL, "http://"), cookies: map[string]string{"": ""}}
	for _, user := range []string{"u-bob", "u-alice"} {
		s.op.SignInAs(user)
		b := servertest.NewBrowser(t)
		if p := b.Get(s.in.URL + "/wiki/start"); p.Status != 200 || !strings.Contains(p.Body, "default servlet") {
			t.Fatalf("%s signing in: %d %s", user, p.Status, p.Body)
		}
		u, _ := url.Parse(s.in.URL)
		var cs []string
		for _, c := range b.Jar.Cookies(u) {
			cs = append(cs, c.Name+"="+c.Value)
		}
		ts.cookies[user] = strings.Join(cs, "; ")
	}
	return ts
}

// answer is a response as a raw client saw it.
type answer struct {
	status int
	header http.Header
	body   string
}

// send writes a request line and headers exactly as given (Go's client
// would clean the target) and reads the answer.
func send(t *testing.T, hostport, method, target string, headers ...string) answer {
	t.Helper()
	c, err := net.Dial("tcp", hostport)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nConnection: close\r\n", method, target)
	host := false
	for _, h := range headers {
		if strings.HasSuffix(h, ": ") {
			continue // an empty value: not sent
		}
		host = host || strings.HasPrefix(h, "Host: ")
		fmt.Fprintf(&b, "%s\r\n", h)
	}
	if !host {
		fmt.Fprintf(&b, "Host: %s\r\n", hostport)
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(c, b.String()); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return answer{res.StatusCode, res.Header, string(body)}
}

// browse sends a browser's GET through Aero2 and follows its 308s to clean
// paths (the only redirects that stay on Aero2).
func (ts *tomcatSetup) browse(t *testing.T, user, target string) (answer, []string) {
	t.Helper()
	hops := []string{target}
	for range 5 {
		a := send(t, ts.host, "GET", target, "Accept: text/html", "Cookie: "+ts.cookies[user])
		if a.status != http.StatusPermanentRedirect {
			return a, hops
		}
		target = a.header.Get("Location")
		hops = append(hops, target)
	}
	t.Fatalf("%s: too many redirects %q", hops[0], hops)
	return answer{}, nil
}

func TestTomcatServesAdminPagesToAdminsOnly(t *testing.T) {
	ts := startTomcat(t)
	// The fixture really is vulnerable: Tomcat itself serves issue 8's
	// examples from its admin servlet.
	direct := strings.TrimPrefix(ts.tomcat.URL, "http://")
	for _, p := range pathreadtest.AdminReadings {
		a := send(t, direct, "GET", p)
		t.Logf("Tomcat alone: %-38s %d %s", p, a.status, a.header.Get("X-Servlet"))
		if (p == "/public/..;/admin/secret" || p == "/admin;x/secret") && a.header.Get("X-Servlet") != "admin" {
			t.Fatalf("Tomcat does not serve %s from the admin servlet (%d): the fixture proves nothing", p, a.status)
		}
	}
	// Controls: the policies work on plain paths.
	if a, _ := ts.browse(t, "u-alice", "/admin/secret"); a.status != 200 || a.header.Get("X-Servlet") != "admin" || !strings.Contains(a.body, "user u-alice") {
		t.Fatalf("alice on /admin/secret: %d %s", a.status, a.body)
	}
	if a, _ := ts.browse(t, "u-bob", "/admin/secret"); a.status != 403 {
		t.Fatalf("bob on /admin/secret: %d %s", a.status, a.body)
	}
	if a, _ := ts.browse(t, "u-bob", "/wiki/page;jsessionid=abc"); a.status != 200 || !strings.Contains(a.body, "default servlet; path /wiki/page;") {
		t.Fatalf("bob on a wiki page: %d %s", a.status, a.body)
	}
	if a, _ := ts.browse(t, "", "/public/x"); a.status != 200 || !strings.Contains(a.body, "default servlet") {
		t.Fatalf("anonymous on /public/x: %d %s", a.status, a.body)
	}

	targets := append([]string{}, pathreadtest.AdminReadings...)
	for _, p := range pathreadtest.AdminReadings[:4] {
		targets = append(targets, "http://"+ts.host+p) // absolute form
	}
	for _, p := range targets {
		for _, user := range []string{"", "u-bob"} {
			a, hops := ts.browse(t, user, p)
			who := map[string]string{"": "anonymous", "u-bob": "bob"}[user]
			if a.header.Get("X-Servlet") == "admin" {
				t.Errorf("%s: Tomcat's admin servlet answered %s (%q): %s", p, who, hops, a.body)
			}
			switch {
			case a.status == 400, a.status == 403 && user != "":
				// Refused, or the admins policy refused bob.
			case user == "" && (a.status == 401 || a.status == 302 && strings.HasPrefix(a.header.Get("Location"), ts.op.Issuer)):
				// Sent to sign in.
			default:
				t.Errorf("%s: %s got %d through %q (X-Servlet %q)", p, who, a.status, hops, a.header.Get("X-Servlet"))
			}
		}
	}
}

// frontProxy is how one front proxy asks Aero2 about a request: the auth
// request each one really sends (examples/forward-auth).
type frontProxy struct {
	name string
	ask  func(t *testing.T, ts *tomcatSetup, target, cookie string) answer
}

// origin is what Go's server (Traefik, Caddy) keeps of a request target:
// URL.RequestURI(), the escaped path (and query) with no scheme or host.
func origin(t *testing.T, target string) string {
	u, err := url.ParseRequestURI(target)
	if err != nil {
		t.Fatalf("%s: %v", target, err)
	}
	return u.RequestURI()
}

// originPath is an absolute-form target's path, as Envoy's :path and
// nginx's $request_uri carry it; other targets as they are.
func originPath(target string) string {
	if rest, ok := strings.CutPrefix(target, "http://"); ok {
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			return rest[i:]
		}
	}
	return target
}

var frontProxies = []frontProxy{
	{"nginx auth_request", func(t *testing.T, ts *tomcatSetup, target, cookie string) answer {
		// A GET subrequest with the original's headers; the config sets
		// X-Forwarded-Uri to $request_uri, as the client sent it.
		return send(t, ts.host, "GET", "/.aero2/forward-auth?redirect=0", "Accept: text/html", "Cookie: "+cookie,
			"Content-Length: 0", "X-Forwarded-Method: GET", "X-Forwarded-Host: "+ts.host,
			"X-Forwarded-Uri: "+originPath(target), "X-Forwarded-Proto: http")
	}},
	{"Traefik ForwardAuth", func(t *testing.T, ts *tomcatSetup, target, cookie string) answer {
		// A GET to the address with the original headers copied and
		// X-Forwarded-Uri from req.URL.RequestURI().
		return send(t, ts.host, "GET", "/.aero2/forward-auth", "Accept: text/html", "Cookie: "+cookie,
			"X-Forwarded-For: 127.0.0.1", "X-Forwarded-Method: GET", "X-Forwarded-Proto: http",
			"X-Forwarded-Host: "+ts.host, "X-Forwarded-Uri: "+origin(t, target))
	}},
	{"Caddy forward_auth", func(t *testing.T, ts *tomcatSetup, target, cookie string) answer {
		// reverse_proxy with method GET, the configured uri, the original
		// Host and headers, X-Forwarded-Uri {http.request.uri}.
		return send(t, ts.host, "GET", "/.aero2/forward-auth", "Host: "+ts.host, "Accept: text/html", "Cookie: "+cookie,
			"X-Forwarded-For: 127.0.0.1", "X-Forwarded-Proto: http", "X-Forwarded-Host: "+ts.host,
			"X-Forwarded-Method: GET", "X-Forwarded-Uri: "+origin(t, target))
	}},
	{"Envoy ext_authz", func(t *testing.T, ts *tomcatSetup, target, cookie string) answer {
		// The original method and Host; path_prefix then the original
		// :path; only the allowed headers.
		return send(t, ts.host, "GET", "/.aero2/forward-auth/envoy"+originPath(target), "Host: "+ts.host,
			"Cookie: "+cookie, "Accept: text/html", "X-Forwarded-Proto: http")
	}},
}

// TestForwardAuthReadsTheURIOnceInEveryMode: each front proxy's auth
// request for a tricky target gets the answer the built-in proxy gives
// that target (a 308 to the clean path becomes 400: the front proxy would
// not follow it), and never admits anyone outside the admins group to an
// admin reading.
func TestForwardAuthReadsTheURIOnceInEveryMode(t *testing.T) {
	ts := startTomcat(t)
	targets := append(append([]string{"/wiki/..%2e"}, pathreadtest.Benign...), pathreadtest.AdminReadings...)
	targets = append(targets, "http://"+ts.host+"/public/..;/admin/secret")
	for _, target := range targets {
		for _, user := range []string{"", "u-bob", "u-alice"} {
			builtin := send(t, ts.host, "GET", target, "Accept: text/html", "Cookie: "+ts.cookies[user])
			for _, fp := range frontProxies {
				got := fp.ask(t, ts, target, ts.cookies[user])
				want := builtin.status
				switch {
				case want == http.StatusPermanentRedirect:
					want = http.StatusBadRequest
				case want == http.StatusFound && fp.name == "nginx auth_request":
					want = http.StatusUnauthorized // ?redirect=0
				}
				if got.status != want {
					t.Errorf("%s, %s for %q: %d, the built-in proxy %d", fp.name, target, user, got.status, builtin.status)
				}
				if got.status == http.StatusFound && !strings.Contains(got.header.Get("Location"), "/.aero2/start?rd=") {
					t.Errorf("%s, %s: sent to %q", fp.name, target, got.header.Get("Location"))
				}
				if id := got.header.Get("X-Forwarded-User"); id != "" && id != user {
					t.Errorf("%s, %s for %q: admitted as %q", fp.name, target, user, id)
				}
				if user != "u-alice" && slices.Contains(pathreadtest.AdminReadings, target) && got.status == http.StatusOK {
					t.Errorf("%s admits %q to %s", fp.name, user, target)
				}
			}
		}
	}
}

// TestForwardAuthRefusesAmbiguousRequests: what a front proxy sends must
// describe one request.
func TestForwardAuthRefusesAmbiguousRequests(t *testing.T) {
	s := start(t, nil, routesYAML, nil)
	host := strings.TrimPrefix(s.in.URL, "http://")
	for name, tc := range map[string]struct {
		target  string
		headers []string
		want    int
	}{
		"X-Forwarded-Uri twice":    {"/.aero2/forward-auth", []string{"X-Forwarded-Host: " + host, "X-Forwarded-Uri: /public/x", "X-Forwarded-Uri: /admin/x"}, 400},
		"X-Forwarded-Host twice":   {"/.aero2/forward-auth", []string{"X-Forwarded-Host: " + host, "X-Forwarded-Host: other", "X-Forwarded-Uri: /public/x"}, 400},
		"X-Forwarded-Method twice": {"/.aero2/forward-auth", []string{"X-Forwarded-Method: GET", "X-Forwarded-Method: POST", "X-Forwarded-Host: " + host, "X-Forwarded-Uri: /public/x"}, 400},
		"not a method":             {"/.aero2/forward-auth", []string{"X-Forwarded-Method: GE(T", "X-Forwarded-Host: " + host, "X-Forwarded-Uri: /public/x"}, 400},
		"absolute URI":             {"/.aero2/forward-auth", []string{"X-Forwarded-Host: " + host, "X-Forwarded-Uri: http://" + host + "/public/x"}, 400},
		"no URI":                   {"/.aero2/forward-auth", []string{"X-Forwarded-Host: " + host}, 400},
		"Envoy prefix encoded":     {"/.aero2/forward-auth/%65nvoy/public/x", nil, 400},
		"Envoy prefix glued":       {"/.aero2/forward-auth/envoyx/public", []string{"X-Forwarded-Host: " + host, "X-Forwarded-Uri: /public/x"}, 200},
		"a control character":      {"/.aero2/forward-auth", []string{"X-Forwarded-Host: " + host, "X-Forwarded-Uri: /public/x?a=\x01"}, 400},
		"public, for control":      {"/.aero2/forward-auth", []string{"X-Forwarded-Host: " + host, "X-Forwarded-Uri: /public/x"}, 200},
	} {
		if a := send(t, host, "GET", tc.target, tc.headers...); a.status != tc.want {
			t.Errorf("%s: %d, want %d: %s", name, a.status, tc.want, a.body)
		}
	}
	// Envoy's query is the original request's, not the endpoint's own:
	// ?redirect=0 there changes nothing.
	a := send(t, host, "GET", "/.aero2/forward-auth/envoy/app/x?redirect=0", "Accept: text/html")
	if a.status != 302 || !strings.Contains(a.header.Get("Location"), "/.aero2/start?rd="+url.QueryEscape("/app/x?redirect=0")) {
		t.Errorf("Envoy with the original query redirect=0: %d %q", a.status, a.header.Get("Location"))
	}
}

// TestStripPrefixCutsTheMatchedSegments: the route's segments are cut off
// the escaped path they were matched on, whatever their escaping.
func TestStripPrefixCutsTheMatchedSegments(t *testing.T) {
	s := start(t, nil, routesYAML, nil)
	b := servertest.NewBrowser(t)
	b.Get(s.in.URL + "/app") // signs in
	for target, want := range map[string]string{
		"/str%69pped/a%20b/c": "/base/a%20b/c",
		"/STRIPPED/x":         "",
		"/stripped":           "/base/",
		"/stripped/":          "/base/",
	} {
		p := b.Get(s.in.URL + target)
		seen := s.up.Last(t)
		got := (&url.URL{Path: seen.Path, RawPath: seen.RawPath}).EscapedPath()
		if want == "" {
			if p.Status != 400 {
				t.Errorf("%s: %d", target, p.Status)
			}
			continue
		}
		if p.Status != 200 || got != want {
			t.Errorf("%s: %d, upstream got %q (raw %q), want %q", target, p.Status, seen.Path, seen.RawPath, want)
		}
	}
}

// TestEncodedSlashesOnlyWhereAllowed: %2F reaches an upstream only on a
// route with allow_encoded_slashes, and unchanged.
func TestEncodedSlashesOnlyWhereAllowed(t *testing.T) {
	s := start(t, nil, `
routes:
  - {path: /app, upstream: "UP", policy: {public: true}}
  - {path: /files, upstream: "UP", policy: {public: true}, allow_encoded_slashes: true}
`, nil)
	host := strings.TrimPrefix(s.in.URL, "http://")
	if a := send(t, host, "GET", "/app/a%2Fb"); a.status != 400 || !strings.Contains(a.body, "Encoded slashes") {
		t.Errorf("/app/a%%2Fb: %d", a.status)
	}
	if a := send(t, host, "GET", "/files/group%2Fproject"); a.status != 200 {
		t.Fatalf("/files/group%%2Fproject: %d %s", a.status, a.body)
	}
	if seen := s.up.Last(t); seen.RawPath != "/files/group%2Fproject" {
		t.Errorf("upstream got %q (raw %q)", seen.Path, seen.RawPath)
	}
	// Allowed, but not to climb: a reader that splits on them would.
	if a := send(t, host, "GET", "/files/..%2F..%2Fapp"); a.status != 400 {
		t.Errorf("/files/..%%2F..%%2Fapp: %d", a.status)
	}
}
