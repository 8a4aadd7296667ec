package proxy

import (
	"bufio"
	"net/http"
	"net/url"
	"path"
	"strings"
	"testing"
	"unicode"

	"github.com/aero2/aero2/pathread/pathreadtest"
)

// fuzzRoutes are the route paths the fuzz targets match against: the
// servlet fixture's, and some deeper and overlapping ones.
var fuzzRoutes = []string{"/", "/admin", "/desk", "/public", "/static", "/admin/public", "/api/v1", "/Caf\u00e9"}

func fuzzTable(t testing.TB) *table {
	var routes []*Route
	for _, p := range fuzzRoutes {
		segs, folded, err := compilePath(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		// Encoded slashes allowed: then only the readers that split on
		// them keep "/public/..%2Fadmin" out.
		routes = append(routes, &Route{name: p, prefix: strings.TrimSuffix(p, "/"), segments: segs, folded: folded, allowEncodedSlashes: true})
	}
	return newTable(routes)
}

// The models say how some upstreams read a path, written apart from
// pathread with the standard library: each returns the segments the
// upstream routes on, and whether it compares them ignoring case.
type model struct {
	name string
	read func(escaped string) ([]string, bool, bool) // segments, fold, ok
}

func split(p string) []string {
	var out []string
	for _, s := range strings.Split(p, "/") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func cutEach(p string, sep byte) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if j := strings.IndexByte(s, sep); j >= 0 {
			segs[i] = s[:j]
		}
	}
	return strings.Join(segs, "/")
}

// lax decodes what it can, as a lenient second decoder does.
func lax(s string) string {
	if d, err := url.PathUnescape(s); err == nil {
		return d
	}
	return s
}

var models = []model{
	{"Go ServeMux", func(e string) ([]string, bool, bool) {
		var out []string
		for _, s := range split(e) {
			d, err := url.PathUnescape(s)
			if err != nil {
				return nil, false, false
			}
			out = append(out, d)
		}
		return out, false, true
	}},
	{"nginx", func(e string) ([]string, bool, bool) {
		d, err := url.PathUnescape(e)
		return split(path.Clean(d)), false, err == nil
	}},
	{"Tomcat", func(e string) ([]string, bool, bool) {
		d, err := url.PathUnescape(cutEach(e, ';'))
		return split(path.Clean(d)), false, err == nil
	}},
	{"Spring", func(e string) ([]string, bool, bool) {
		d, err := url.PathUnescape(e)
		return split(path.Clean(cutEach(d, ';'))), false, err == nil
	}},
	{"IIS on NTFS", func(e string) ([]string, bool, bool) {
		d, err := url.PathUnescape(e)
		if err != nil {
			return nil, false, false
		}
		d = strings.ReplaceAll(lax(d), `\`, "/")
		segs := strings.Split(d, "/")
		for i, s := range segs {
			s, _, _ = strings.Cut(s, ":")
			if t := strings.TrimRight(s, ". "); t != "" || !strings.Contains(s, ".") {
				s = t
			}
			segs[i] = s
		}
		return split(path.Clean(strings.Join(segs, "/"))), true, true
	}},
}

// sameName is a case-insensitive comparison as the models' servers make
// it: Unicode simple folding, and Java's per-character upper/lower case.
func sameName(a, b string) bool {
	if strings.EqualFold(a, b) {
		return true
	}
	ra, rb := []rune(a), []rune(b)
	if len(ra) != len(rb) {
		return false
	}
	for i := range ra {
		if unicode.ToLower(unicode.ToUpper(ra[i])) != unicode.ToLower(unicode.ToUpper(rb[i])) {
			return false
		}
	}
	return true
}

// modelRoute is the longest fuzz route that segs start with.
func modelRoute(segs []string, fold bool) string {
	best, n := "/", 0
	for _, r := range fuzzRoutes {
		rs := split(r)
		if len(rs) < n || len(rs) > len(segs) {
			continue
		}
		ok := true
		for i := range rs {
			if rs[i] != segs[i] && !(fold && sameName(rs[i], segs[i])) {
				ok = false
				break
			}
		}
		if ok && len(rs) >= n {
			best, n = r, len(rs)
		}
	}
	return best
}

func fuzzSeeds(f *testing.F) {
	for _, s := range append(append([]string{}, pathreadtest.AdminReadings...), pathreadtest.Benign...) {
		f.Add(s)
	}
}

// FuzzChoose: every reading of an admitted request maps to the same
// route. Whenever choose admits a path under a route, each model upstream
// reads it as a path under that same route.
func FuzzChoose(f *testing.F) {
	fuzzSeeds(f)
	tbl := fuzzTable(f)
	f.Fuzz(func(t *testing.T, target string) {
		escaped, _, _ := strings.Cut(target, "?")
		d := tbl.choose("h", escaped)
		if d.verdict == pathRedirect {
			// The clean form is chosen afresh, and reads the same.
			if c := tbl.choose("h", d.clean); c.verdict == pathRedirect {
				t.Fatalf("%q: its clean form %q is not clean", escaped, d.clean)
			}
			return
		}
		if d.verdict != pathOK || d.route == nil {
			return
		}
		for _, m := range models {
			segs, fold, ok := m.read(escaped)
			if !ok {
				continue
			}
			if got := modelRoute(segs, fold); got != d.route.name {
				t.Errorf("%q admitted under %s, but %s reads %q (route %s)", escaped, d.route.name, m.name, segs, got)
			}
		}
	})
}

// FuzzForwardAuthURI: forward-auth reads the original URI exactly once,
// in every mode. The target a front proxy reports comes back unchanged
// (never decoded), every mode makes the same decision, and it is the
// built-in proxy's decision for the same request line.
func FuzzForwardAuthURI(f *testing.F) {
	fuzzSeeds(f)
	tbl := fuzzTable(f)
	parse := func(raw string) *http.Request {
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		if err != nil {
			return nil
		}
		return r
	}
	f.Fuzz(func(t *testing.T, target string) {
		if strings.ContainsAny(target, "\r\n") {
			return // not a request line, nor a header value
		}
		modes := map[string]*http.Request{
			// nginx, Traefik and Caddy: the target in X-Forwarded-Uri.
			"X-Forwarded-Uri": parse("GET /.aero2/forward-auth?redirect=0 HTTP/1.1\r\nHost: a\r\nX-Forwarded-Host: h\r\nX-Forwarded-Uri: " + target + "\r\n\r\n"),
			// Envoy: path_prefix, then the target.
			"Envoy": parse("GET " + envoyPrefix + target + " HTTP/1.1\r\nHost: h\r\n\r\n"),
		}
		var decisions []pathDecision
		for mode, r := range modes {
			if r == nil {
				continue // Go's server would refuse the auth request itself
			}
			o, err := readOriginal(r)
			if err != nil {
				continue
			}
			want := target
			if mode == "Envoy" && (want == "" || want[0] == '?') {
				want = "/" + want // Envoy's :path is never empty
			}
			if mode != "Envoy" {
				want = strings.Trim(want, " \t") // as a header value
			}
			if o.target != want {
				t.Fatalf("%s: %q read as %q", mode, want, o.target)
			}
			if o.path+"?"+o.query != o.target && o.path != o.target {
				t.Fatalf("%s: %q split as %q and %q", mode, o.target, o.path, o.query)
			}
			decisions = append(decisions, tbl.choose("h", o.path))
		}
		for _, d := range decisions[min(1, len(decisions)):] {
			if d.verdict != decisions[0].verdict || d.route != decisions[0].route {
				t.Fatalf("%q: the modes decide differently: %+v, %+v", target, decisions[0], d)
			}
		}
		builtin := parse("GET " + target + " HTTP/1.1\r\nHost: h\r\n\r\n")
		if builtin == nil || len(decisions) == 0 || decisions[0].verdict != pathOK {
			return
		}
		if b := tbl.choose("h", builtin.URL.EscapedPath()); b.verdict == pathOK && b.route != decisions[0].route {
			t.Fatalf("%q: forward-auth chooses %s, the built-in proxy %s", target, routeName(decisions[0].route), routeName(b.route))
		}
	})
}
