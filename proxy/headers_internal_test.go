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
// replaces the client's identity headers by Aero2's answer only for names
// its authResponseHeadersRegex matches. The example's regex must match the
// whole list (and not the headers a request needs).
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
	for _, n := range strippedHeaders {
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
	for _, n := range []string{"Accept", "Cookie", "Authorization", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Request-Id"} {
		if re.MatchString(n) {
			t.Errorf("the example's regex matches %s", n)
		}
	}
}

// TestCaddyExampleCoversTheList: the Caddy example copies some headers
// from Aero2's answer and deletes the rest of the list from the client's
// request; between them they must cover it.
func TestCaddyExampleCoversTheList(t *testing.T) {
	b, err := os.ReadFile("../examples/forward-auth/Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	var prefixes []string
	for _, m := range regexp.MustCompile(`(?m)^\s*request_header -(\S+)$`).FindAllStringSubmatch(string(b), -1) {
		if n, ok := strings.CutSuffix(m[1], "*"); ok {
			prefixes = append(prefixes, stripKey(n))
		} else {
			covered[stripKey(n)] = true
		}
	}
	copied := regexp.MustCompile(`(?m)^\s*copy_headers (.+)$`).FindStringSubmatch(string(b))
	if copied == nil {
		t.Fatal("the Caddyfile copies no headers")
	}
	for _, n := range strings.Fields(copied[1]) {
		covered[stripKey(n)] = true
	}
	for _, n := range strippedHeaders {
		if !covered[stripKey(n)] {
			t.Errorf("the Caddyfile neither copies nor deletes %s", n)
		}
	}
	for _, p := range strippedPrefixes {
		if !slices.Contains(prefixes, p) {
			t.Errorf("the Caddyfile does not delete the %s* family", p)
		}
	}
}
