package pathread_test

import (
	"net/url"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/aero2/aero2/pathread"
	"github.com/aero2/aero2/pathread/pathreadtest"
)

// The models below are deliberately naive, written apart from pathread's
// own code: how Go/nginx, Tomcat and Spring clean a path, with the
// standard library doing the work.

// nginxModel decodes the whole path (so %2F is '/') and resolves dot
// segments and "//", as nginx does before matching locations.
func nginxModel(escaped string) (string, bool) {
	d, err := url.PathUnescape(escaped)
	if err != nil {
		return "", false
	}
	return path.Clean(d), true
}

// tomcatModel strips ";params" from each raw segment, then decodes and
// resolves dot segments (CoyoteAdapter: parsePathParameters, decode,
// normalize).
func tomcatModel(escaped string) (string, bool) {
	segs := strings.Split(escaped, "/")
	for i, s := range segs {
		if j := strings.IndexByte(s, ';'); j >= 0 {
			segs[i] = s[:j]
		}
	}
	d, err := url.PathUnescape(strings.Join(segs, "/"))
	if err != nil {
		return "", false
	}
	return path.Clean(d), true
}

// springModel decodes first and strips ";…" up to the next '/' after.
func springModel(escaped string) (string, bool) {
	d, err := url.PathUnescape(escaped)
	if err != nil {
		return "", false
	}
	segs := strings.Split(d, "/")
	for i, s := range segs {
		if j := strings.IndexByte(s, ';'); j >= 0 {
			segs[i] = s[:j]
		}
	}
	return path.Clean(strings.Join(segs, "/")), true
}

var models = map[string]func(string) (string, bool){"nginx": nginxModel, "tomcat": tomcatModel, "spring": springModel}

func joinedSet(p *pathread.Path) []string {
	var out []string
	for _, rd := range p.Readings {
		if !rd.Reader.Folded {
			out = append(out, "/"+strings.Join(rd.Segments, "/"))
		}
	}
	return out
}

// splitsFurther reports whether a reading of p is m's segments, each
// also split at '\'. Route paths never hold '\' (config.checkRoutePath
// refuses it), so such a reading selects every route that m selects (and
// maybe more, whose policies apply too). The file-system reader is one:
// "%5C%2F" is "\/", which nginx reads as the segment "\" and that
// reader as none.
func splitsFurther(p *pathread.Path, m string) bool {
	want := strings.FieldsFunc(m, func(r rune) bool { return r == '/' || r == '\\' })
	for _, rd := range p.Readings {
		if !rd.Reader.Folded && slices.Equal(rd.Segments, want) {
			return true
		}
	}
	return false
}

// FuzzRead: Read never panics; what it accepts has no dot segment and no
// empty segment in any reading, the plain reading is Go's, every model's
// cleaned path is one of the readings (so nothing a model resolves was let
// through unresolved), and a clean form is offered only when every model
// cleans the original to what it makes of the clean form.
func FuzzRead(f *testing.F) {
	for _, s := range append(append([]string{}, pathreadtest.AdminReadings...), pathreadtest.Benign...) {
		s, _, _ = strings.Cut(s, "?")
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, escaped string) {
		p, err := pathread.Read(escaped)
		if err != nil {
			if p != nil {
				t.Fatalf("%q: a Path with an error", escaped)
			}
			return
		}
		if !p.Canonical() {
			cp, err := pathread.Read(p.Clean)
			if err != nil || !cp.Canonical() {
				t.Fatalf("%q: clean form %q is not canonical (%v)", escaped, p.Clean, err)
			}
			for name, model := range models {
				a, ok1 := model(escaped)
				b, ok2 := model(p.Clean)
				if ok1 && ok2 && a != b {
					t.Errorf("%q: %s cleans it to %q, and its clean form %q to %q", escaped, name, a, p.Clean, b)
				}
			}
			return
		}
		if len(p.Readings) == 0 || p.Readings[0].Reader != (pathread.Reader{}) {
			t.Fatalf("%q: the plain reading is not first: %v", escaped, p.Readings)
		}
		for _, rd := range p.Readings {
			for _, s := range rd.Segments {
				if s == "" || s == "." || s == ".." {
					t.Fatalf("%q: a %s reads segment %q", escaped, rd.Reader, s)
				}
				// What a case-insensitive file system reads has had its
				// rules applied after folding: no separator, stream or
				// trailing dot or space is left in it.
				if rd.Reader.Folded && (strings.ContainsAny(s, `/\:`) || strings.TrimRight(s, ". ") != s) {
					t.Fatalf("%q: a %s reads segment %q", escaped, rd.Reader, s)
				}
			}
		}
		// The plain reading is Go's: each segment decoded.
		var goSegs []string
		for _, s := range strings.Split(escaped[1:], "/") {
			d, err := url.PathUnescape(s)
			if err != nil {
				t.Fatalf("%q: Go cannot decode %q: %v", escaped, s, err)
			}
			if d != "" {
				goSegs = append(goSegs, d)
			}
		}
		if !slices.Equal(goSegs, p.Readings[0].Segments) {
			t.Errorf("%q: plain reading %q, Go %q", escaped, p.Readings[0].Segments, goSegs)
		}
		have := joinedSet(p)
		for name, model := range models {
			m, ok := model(escaped)
			if !ok {
				continue
			}
			if m == "/" || m == "." {
				m = "/"
			}
			if !slices.Contains(have, m) && !slices.Contains(have, strings.TrimSuffix(m, "/")) && !splitsFurther(p, m) {
				t.Errorf("%q: %s reads %q, which no reading has: %q", escaped, name, m, have)
			}
		}
	})
}
