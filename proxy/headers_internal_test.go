package proxy

import (
	"bufio"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aero2/aero2/config"
)

// familyOf is an independent reading of the header lists, as a CGI
// gateway would see a name (upper case, '-' and '_' alike): the oracle the
// strip set is checked against.
func familyOf(name string, trustedPeer bool, routeHeaders ...string) bool {
	cgi := func(s string) string { return strings.ToUpper(strings.ReplaceAll(s, "-", "_")) }
	n := cgi(name)
	for _, x := range append(routeHeaders, strippedHeaders...) {
		if n == cgi(x) {
			return true
		}
	}
	for _, x := range strippedPrefixes {
		if strings.HasPrefix(n, cgi(x)) {
			return true
		}
	}
	if !trustedPeer {
		for _, x := range untrustedHeaders {
			if n == cgi(x) {
				return true
			}
		}
	}
	return false
}

func TestStripHeadersRemovesEveryFamily(t *testing.T) {
	s := newStripSet([]headerPlan{newHeaderPlan(testHeaders("X-Custom-User"))})
	h := http.Header{}
	spoofed := []string{
		"Remote-User", "remote-email", "REMOTE-GROUPS", "Remote_Name", "X-Rewrite-Url", "X-Original-Url",
		"X-Webauth-User", "x-webauth-email", "X-Authenticated-User", "X-Authenticated-Groups", "X-User", "X_Email",
		"X-Id-Token", "X-Amzn-Oidc-Identity", "X-Amzn-Oidc-Data", "X-Goog-Authenticated-User-Email",
		"X-Ms-Client-Principal", "X-Ms-Client-Principal-Name", "X-Pomerium-Jwt-Assertion", "X-Auth-Request-Anything",
		"X-Forwarded-User", "x_forwarded_groups", "X-Custom-User", "x_custom_user", "Cf-Access-Authenticated-User-Email", "Forwarded",
	}
	clientIP := []string{
		"True-Client-Ip", "X-Client-Ip", "Cf-Connecting-Ip", "X-Cluster-Client-Ip", "X-Forwarded-Ssl",
		"X-Forwarded-Scheme", "X-Url-Scheme", "Front-End-Https", "X-Original-Host", "X-Host", "X-Forwarded-Server",
	}
	kept := []string{"Accept", "Cookie", "Authorization", "User-Agent", "X-Request-Id", "X-Auth-Token", "X-Users-Count"}
	fill := func() {
		clear(h)
		for _, n := range append(append(append([]string{}, spoofed...), clientIP...), kept...) {
			h[n] = []string{"mallory", "mallory2"}
		}
	}
	fill()
	s.strip(h, false)
	for _, n := range append(spoofed, clientIP...) {
		if _, ok := h[n]; ok {
			t.Errorf("%s survived", n)
		}
	}
	for _, n := range kept {
		if _, ok := h[n]; !ok {
			t.Errorf("%s was removed", n)
		}
	}
	// From a trusted proxy, the client-address and scheme headers stay;
	// identity headers go all the same.
	fill()
	s.strip(h, true)
	for _, n := range spoofed {
		if _, ok := h[n]; ok {
			t.Errorf("%s survived from a trusted proxy", n)
		}
	}
	for _, n := range append(clientIP, kept...) {
		if _, ok := h[n]; !ok {
			t.Errorf("%s from a trusted proxy was removed", n)
		}
	}
}

func testHeaders(user string) (h config.IdentityHeaders) {
	h.User = []string{user}
	return h
}

// FuzzStripHeaders reads a header line off the wire as Go's server does,
// strips, and checks against the independent reading of the lists: no
// header of a stripped family survives, under any spelling Go lets
// through, and nothing else is removed.
func FuzzStripHeaders(f *testing.F) {
	for _, seed := range []string{
		"X-Forwarded-User", "x_forwarded_user", "REMOTE-USER", "Remote_Groups", "X-Webauth-User", "X-Auth-Request-Email",
		"X-Amzn-Oidc-Identity", "X-Ms-Client-Principal", "X-Rewrite-Url", "x-original-url", "True-Client-IP",
		"Forwarded", "X-Forwarded-For", "X-User", "X-Users", "Accept", "X-Custom-User", "X.Forwarded.User", "X-Forwarded-User ",
	} {
		f.Add(seed, "mallory", false)
	}
	s := newStripSet([]headerPlan{newHeaderPlan(testHeaders("X-Custom-User"))})
	f.Fuzz(func(t *testing.T, name, value string, trusted bool) {
		raw := "GET / HTTP/1.1\r\nHost: x\r\n" + name + ": " + value + "\r\n" + name + ": again\r\n\r\n"
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		if err != nil {
			return // Go's server refuses it before the proxy sees it
		}
		before := map[string]bool{}
		for k := range req.Header {
			before[k] = true
		}
		s.strip(req.Header, trusted)
		for k := range before {
			_, still := req.Header[k]
			if want := !familyOf(k, trusted, "X-Custom-User"); still != want {
				t.Fatalf("header %q (from %q): kept %v, want %v", k, name, still, want)
			}
		}
	})
}

// TestTraefikExampleRegexCoversTheList: with Traefik, the front proxy
// replaces the client's headers by Aero2's answer only for names its
// authResponseHeadersRegex matches. The example's regex must match the
// whole list and the family forward-auth answers (Cookie included), and
// not the headers a request needs. (Traefik is not in Debian: this is its
// test, next to e2e/forwardauth's runs of nginx and Caddy.)
func TestTraefikExampleRegexCoversTheList(t *testing.T) {
	b, err := os.ReadFile("../examples/forward-auth/traefik.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`authResponseHeadersRegex:\s*'([^']+)'`).FindSubmatch(b)
	if m == nil {
		t.Fatal("examples/forward-auth/traefik.yaml has no authResponseHeadersRegex")
	}
	re := regexp.MustCompile(string(m[1]))
	for _, n := range slices.Concat(strippedHeaders, forwardAuthFamily(nil)) {
		for _, v := range []string{n, http.CanonicalHeaderKey(n), strings.ReplaceAll(n, "-", "_")} {
			if !re.MatchString(v) {
				t.Errorf("the example's regex does not match %s", v)
			}
		}
	}
	for _, p := range strippedPrefixes {
		if v := http.CanonicalHeaderKey(p + "x"); !re.MatchString(v) {
			t.Errorf("the example's regex does not match %s", v)
		}
	}
	for _, n := range []string{"Accept", "Authorization", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Request-Id", "Cookies"} {
		if re.MatchString(n) {
			t.Errorf("the example's regex matches %s", n)
		}
	}
}

// TestCaddyExampleCoversTheList: the Caddy example deletes the client's
// copies of the whole list, then copies the family forward-auth answers.
// (e2e/forwardauth runs it with the real Caddy.)
func TestCaddyExampleCoversTheList(t *testing.T) {
	b, err := os.ReadFile("../examples/forward-auth/Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	deleted := map[string]bool{}
	var prefixes []string
	for _, m := range regexp.MustCompile(`(?m)^\s*request_header -(\S+)$`).FindAllStringSubmatch(string(b), -1) {
		if n, ok := strings.CutSuffix(m[1], "*"); ok {
			prefixes = append(prefixes, stripKey(n))
		} else {
			deleted[stripKey(n)] = true
		}
	}
	for _, n := range strippedHeaders {
		if !deleted[stripKey(n)] {
			t.Errorf("the Caddyfile does not delete %s", n)
		}
	}
	for _, p := range strippedPrefixes {
		if !slices.Contains(prefixes, p) {
			t.Errorf("the Caddyfile does not delete the %s* family", p)
		}
	}
	// Names with '_', which CGI gateways read as names with '-'.
	if !regexp.MustCompile(`(?m)^\s*request_header -\*_\*$`).MatchString(string(b)) {
		t.Error("the Caddyfile does not delete names with '_'")
	}
	m := regexp.MustCompile(`(?s)copy_headers \{(.*?)\}`).FindStringSubmatch(string(b))
	if m == nil {
		t.Fatal("the Caddyfile copies no headers")
	}
	copied := strings.Fields(m[1])
	if want := forwardAuthFamily(nil); !slices.Equal(sorted(copied), want) {
		t.Errorf("the Caddyfile copies %q, want forward-auth's family %q", sorted(copied), want)
	}
}

// TestNginxExampleCoversTheList: the nginx example clears the client's
// copies of the whole list (headers-more, which can match prefixes), then
// sets every name of the family from Aero2's answer, each from its own
// response header. (e2e/forwardauth runs it with the real nginx.)
func TestNginxExampleCoversTheList(t *testing.T) {
	b, err := os.ReadFile("../examples/forward-auth/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	m := regexp.MustCompile(`more_clear_input_headers([^;]*);`).FindStringSubmatch(s)
	if m == nil {
		t.Fatal("the nginx example clears no input headers")
	}
	cleared := map[string]bool{}
	var prefixes []string
	for _, n := range strings.Fields(m[1]) {
		if p, ok := strings.CutSuffix(n, "*"); ok {
			prefixes = append(prefixes, stripKey(p))
		} else {
			cleared[stripKey(n)] = true
		}
	}
	for _, n := range strippedHeaders {
		if !cleared[stripKey(n)] {
			t.Errorf("the nginx example does not clear %s", n)
		}
	}
	for _, p := range strippedPrefixes {
		if !slices.Contains(prefixes, p) {
			t.Errorf("the nginx example does not clear the %s* family", p)
		}
	}
	vars := map[string]string{} // $variable: the response header it holds
	for _, m := range regexp.MustCompile(`(?m)^\s*auth_request_set \$(\w+) \$upstream_http_(\w+);`).FindAllStringSubmatch(s, -1) {
		vars[m[1]] = m[2]
	}
	var set []string
	for _, m := range regexp.MustCompile(`(?m)^\s*proxy_set_header (\S+) \$(\w+);`).FindAllStringSubmatch(s, -1) {
		from, ok := vars[m[2]]
		if !ok {
			continue
		}
		if want := strings.ReplaceAll(strings.ToLower(m[1]), "-", "_"); from != want {
			t.Errorf("the nginx example sets %s from %s", m[1], from)
		}
		set = append(set, http.CanonicalHeaderKey(m[1]))
	}
	if want := forwardAuthFamily(nil); !slices.Equal(sorted(set), want) {
		t.Errorf("the nginx example sets %q from Aero2's answer, want forward-auth's family %q", sorted(set), want)
	}
}

// TestEnvoyExampleCoversTheList: the Envoy example's Lua filter removes
// the client's copies of the whole list; ext_authz then allows onto the
// upstream request exactly the family forward-auth answers. (Envoy is not
// in Debian: this is its test.)
func TestEnvoyExampleCoversTheList(t *testing.T) {
	b, err := os.ReadFile("../examples/forward-auth/envoy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	quoted := func(block string) []string {
		var out []string
		for _, m := range regexp.MustCompile(`"([^"]+)"`).FindAllStringSubmatch(block, -1) {
			out = append(out, m[1])
		}
		return out
	}
	names := regexp.MustCompile(`(?s)for _, n in ipairs\(\{(.*?)\}\)`).FindStringSubmatch(s)
	prefixes := regexp.MustCompile(`(?s)local prefixes = \{(.*?)\}`).FindStringSubmatch(s)
	if names == nil || prefixes == nil {
		t.Fatal("the Envoy example's Lua filter lists no names or prefixes")
	}
	var want []string
	for _, n := range strippedHeaders {
		want = append(want, stripKey(n))
	}
	if got := quoted(names[1]); !slices.Equal(sorted(got), sorted(want)) {
		t.Errorf("the Lua filter removes %q, want %q", got, want)
	}
	if got := quoted(prefixes[1]); !slices.Equal(sorted(got), sorted(strippedPrefixes)) {
		t.Errorf("the Lua filter removes the families %q, want %q", got, strippedPrefixes)
	}
	up := regexp.MustCompile(`(?s)allowed_upstream_headers:\s*patterns:(.*?)allowed_client_headers`).FindStringSubmatch(s)
	if up == nil {
		t.Fatal("the Envoy example allows no upstream headers")
	}
	var allowed []string
	for _, m := range regexp.MustCompile(`\{exact: ([\w-]+)\}`).FindAllStringSubmatch(up[1], -1) {
		allowed = append(allowed, http.CanonicalHeaderKey(m[1]))
	}
	if want := forwardAuthFamily(nil); !slices.Equal(sorted(allowed), want) {
		t.Errorf("the Envoy example allows %q upstream, want forward-auth's family %q", sorted(allowed), want)
	}
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	for i, n := range out {
		out[i] = http.CanonicalHeaderKey(n)
	}
	slices.Sort(out)
	return out
}

// TestIdentityHeadersShareNoSlice: the identity headers' values share one
// backing array (one allocation), yet each header is its own: adding a
// value to one changes no other.
func TestIdentityHeadersShareNoSlice(t *testing.T) {
	p := newHeaderPlan(config.IdentityHeaders{})
	h := http.Header{}
	p.set(h, &Identity{Subject: "u1", Email: "a@example.com", PreferredUsername: "alice", Groups: []string{"g"}})
	if len(h) < 4 {
		t.Fatalf("identity headers: %v", h)
	}
	want := h.Clone()
	for k := range h {
		h.Add(k, "added")
		for k2, v := range want {
			if k2 != k && !slices.Equal(h[k2], v) {
				t.Fatalf("adding to %s changed %s: %q", k, k2, h[k2])
			}
		}
		h[k] = want[k]
	}
}

// TestStripAllocatesNothing: stripping runs on every header of every
// proxied request, and reads each name in a buffer of its own, not a
// string made of it; names too long for the buffer (only hostile ones)
// are read as before, and removed as before.
func TestStripAllocatesNothing(t *testing.T) {
	s := newStripSet([]headerPlan{newHeaderPlan(testHeaders("X-Custom-User"))})
	browser := http.Header{}
	for _, n := range []string{"Accept", "Accept-Encoding", "Accept-Language", "Cookie", "User-Agent", "Referer",
		"Sec-Fetch-Mode", "Sec-Ch-Ua", "Upgrade-Insecure-Requests", "X_Request_Id", "Priority"} {
		browser[n] = []string{"v"}
	}
	if n := testing.AllocsPerRun(100, func() { s.strip(browser, false) }); n != 0 {
		t.Errorf("stripping a browser's headers: %v allocations, want 0", n)
	}
	if len(browser) != 11 {
		t.Errorf("a browser's header was removed: %v", browser)
	}
	for _, name := range []string{"X-Forwarded-User", "x_custom_user", "REMOTE_USER", "X-Auth-Request-Email", "X-Forwarded-Ssl"} {
		if n := testing.AllocsPerRun(100, func() {
			if !s.drops(name, false) {
				t.Fatalf("%s is kept", name)
			}
		}); n != 0 {
			t.Errorf("drops(%q): %v allocations, want 0", name, n)
		}
	}
	long := strings.Repeat("A", 200)
	for _, tc := range []struct {
		name  string
		drops bool
	}{
		{"X_Auth_Request_" + long, true},
		{"x-webauth-" + long, true},
		{"X-Auth-Request-" + strings.Repeat("b", 128-len("X-Auth-Request-")), true}, // fills the buffer exactly
		{"X-Auth-Request-" + strings.Repeat("b", 129-len("X-Auth-Request-")), true}, // one past it
		{"X-Custom-User" + long, false},
		{"X-Other-" + long, false},
	} {
		if got := s.drops(tc.name, false); got != tc.drops || got != familyOf(tc.name, false, "X-Custom-User") {
			t.Errorf("drops(%.30q… %d bytes) = %v, want %v", tc.name, len(tc.name), got, tc.drops)
		}
	}
}
