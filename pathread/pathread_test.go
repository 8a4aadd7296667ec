package pathread_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aero2/aero2/pathread"
)

// joined returns each reading as "/seg/seg", folded ones prefixed "fold:".
func joined(p *pathread.Path) []string {
	var out []string
	for _, rd := range p.Readings {
		s := "/" + strings.Join(rd.Segments, "/")
		if rd.Reader.Folded {
			s = "fold:" + s
		}
		out = append(out, s)
	}
	return out
}

func TestReadings(t *testing.T) {
	for _, tc := range []struct {
		path string
		want []string // every reading, plain RFC 3986 first
	}{
		{"/", []string{"/", "fold:/"}},
		{"/admin/secret", []string{"/admin/secret", "fold:/admin/secret"}},
		{"/Admin/x", []string{"/Admin/x", "fold:/admin/x"}},
		{"/admin/", []string{"/admin", "fold:/admin"}},
		// Servlet containers strip ;params per segment.
		{"/admin;x/secret", []string{"/admin;x/secret", "fold:/admin;x/secret", "/admin/secret", "fold:/admin/secret"}},
		{"/app/page;jsessionid=ABC", []string{"/app/page;jsessionid=ABC", "fold:/app/page;jsessionid=abc", "/app/page", "fold:/app/page"}},
		{"/;x/admin", []string{"/;x/admin", "fold:/;x/admin", "/admin", "fold:/admin"}},
		// Encoded ';' is data to Tomcat, a parameter to whoever strips
		// after decoding.
		{"/admin%3Bx/s", []string{"/admin;x/s", "fold:/admin;x/s", "/admin/s", "fold:/admin/s"}},
		// Tomcat strips at the raw ';' only; others at the first ';' once
		// decoded.
		{"/a%3Bb;c/d", []string{"/a;b;c/d", "fold:/a;b;c/d", "/a;b/d", "fold:/a;b/d", "/a/d", "fold:/a/d"}},
		// Percent-decoding, once and twice.
		{"/%61dmin", []string{"/admin", "fold:/admin"}},
		{"/%2561dmin", []string{"/%61dmin", "fold:/%61dmin", "/admin", "fold:/admin"}},
		// Encoded slashes: data, or a separator.
		{"/a%2Fb", []string{"/a/b", "fold:/a/b"}}, // one segment "a/b", then two
		// File system rules: trailing dots and spaces, streams, case.
		{"/admin./x", []string{"/admin./x", "fold:/admin/x"}},
		{"/admin%20/x", []string{"/admin /x", "fold:/admin/x"}},
		{"/admin::$DATA", []string{"/admin::$DATA", "fold:/admin"}},
		{"/ADM%C4%B0N", []string{"/ADMİN", "fold:/admin"}},            // dotted capital I (Java: 'i')
		{"/%C5%BFecret", []string{"/ſecret", "fold:/secret"}},         // long s
		{"/%E2%84%AAey", []string{"/\u212aey", "fold:/key"}},          // Kelvin sign
		{"/%EF%BD%81dmin", []string{"/ａdmin", "fold:/admin"}},         // fullwidth a (Windows best fit)
		{"/stra%C3%9Fe", []string{"/straße", "fold:/strasse"}},        // full folding
		{"/%C3%A9t%C3%A9", []string{"/été", "fold:/été"}},             // nothing to fold
		{"/caf%65%CC%81", []string{"/cafe\u0301", "fold:/caf\u00e9"}}, // NFKC composes
		{"/a%5Cb", []string{"/a\\b", "fold:/a/b", "/a/b"}},            // '\' as data, then as separator
		{"/%2e%2ea/x", []string{"/..a/x", "fold:/..a/x"}},             // not a dot segment
		{"/a.b/c%20d/e", []string{"/a.b/c d/e", "fold:/a.b/c d/e"}},   // nothing special
		// Compatibility forms of the bytes the file system rules act on
		// fold first: fullwidth '.', ':' and the ideographic space.
		{"/ADMIN%EF%BC%8E/x", []string{"/ADMIN．/x", "fold:/admin/x"}},
		{"/admin%E3%80%80/x", []string{"/admin\u3000/x", "fold:/admin/x"}},
		{"/admin%EF%BC%9A%EF%BC%9A$DATA", []string{"/admin：：$DATA", "fold:/admin"}},
	} {
		p, err := pathread.Read(tc.path)
		if err != nil {
			t.Errorf("%s: %v", tc.path, err)
			continue
		}
		got := joined(p)
		// A segment with '/' inside joins like two; compare as sets.
		if !sameSet(got, tc.want) {
			t.Errorf("%s: readings %q, want %q", tc.path, got, tc.want)
		}
		if got[0] != tc.want[0] {
			t.Errorf("%s: the first reading is %q, want the plain one %q", tc.path, got[0], tc.want[0])
		}
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

func TestEncodedSlashStaysInOneSegmentForThePlainReader(t *testing.T) {
	p, err := pathread.Read("/a%2Fb/c")
	if err != nil {
		t.Fatal(err)
	}
	if !p.EncodedSlash || !slices.Equal(p.Readings[0].Segments, []string{"a/b", "c"}) {
		t.Errorf("plain reading %q, encoded slash %v", p.Readings[0].Segments, p.EncodedSlash)
	}
	split := false
	for _, rd := range p.Readings {
		if rd.Reader.Split && slices.Equal(rd.Segments, []string{"a", "b", "c"}) {
			split = true
		}
	}
	if !split {
		t.Errorf("no reading splits %%2F: %v", p.Readings)
	}
}

func TestRefused(t *testing.T) {
	for _, tc := range []struct {
		path string
		err  error
	}{
		{"", pathread.ErrInvalid},
		{"admin", pathread.ErrInvalid},
		{"*", pathread.ErrInvalid},
		{"/a b", pathread.ErrInvalid},
		{"/a\tb", pathread.ErrInvalid},
		{`/public\..\admin`, pathread.ErrInvalid},
		{"/public#/../admin", pathread.ErrInvalid},
		{"/a?b", pathread.ErrInvalid},
		{"/a%", pathread.ErrInvalid},
		{"/a%2", pathread.ErrInvalid},
		{"/a%zz", pathread.ErrInvalid},
		{"/%u0061dmin", pathread.ErrInvalid}, // IIS %u encoding
		{"/admin%00.png", pathread.ErrInvalid},
		{"/admin%0a", pathread.ErrInvalid},
		{"/admin%2500.png", pathread.ErrInvalid}, // NUL once decoded twice
		{"/x%3F/../admin", pathread.ErrInvalid},  // issue 8, item 3
		{"/x%23/../admin", pathread.ErrInvalid},
		{"/%C0%AE%C0%AE/admin", pathread.ErrInvalid},     // overlong '.'
		{"/%25C0%25AE%25C0%25AE/a", pathread.ErrInvalid}, // overlong, twice
		{"/%E9t%E9", pathread.ErrInvalid},                // Latin-1, not UTF-8
		{"/\xff", pathread.ErrInvalid},
		{"/" + strings.Repeat("a", pathread.MaxLength), pathread.ErrInvalid},
		// Dot segments only some readers see.
		{"/public/..;/admin/secret", pathread.ErrDotSegment}, // issue 8, item 2
		{"/public/..;jsessionid=x/admin", pathread.ErrDotSegment},
		{"/public/.;/admin", pathread.ErrDotSegment},
		{"/public/..%3B/admin", pathread.ErrDotSegment},
		{"/public/%252e%252e/admin", pathread.ErrDotSegment},
		{"/public/..%2Fadmin", pathread.ErrDotSegment},
		{"/public%2F..%2Fadmin", pathread.ErrDotSegment},
		// Compatibility characters that fold to dots (NFKC): U+FE30 and
		// U+2025 are "..", fullwidth and small full stops are '.', U+2026
		// is "...".
		{"/%EF%B8%B0", pathread.ErrDotSegment},
		{"/public/%EF%B8%B0/admin", pathread.ErrDotSegment},
		{"/public/%E2%80%A5/admin", pathread.ErrDotSegment},
		{"/public/%EF%BC%8E%EF%BC%8E/admin", pathread.ErrDotSegment},
		{"/public/%EF%B9%92%EF%B9%92/admin", pathread.ErrDotSegment},
		{"/public/%E2%80%A4%E2%80%A4/admin", pathread.ErrDotSegment},
		{"/public/%E2%80%A6/admin", pathread.ErrDotSegment},
		{"/public/%EF%BC%8E/admin", pathread.ErrDotSegment},
		// ... and to separators: fullwidth and small solidus, reverse solidus.
		{"/public%EF%BC%8F..%EF%BC%8Fadmin", pathread.ErrInvalid},
		{"/a%EF%BC%8Fb", pathread.ErrInvalid},
		{"/a%EF%BC%BCb", pathread.ErrInvalid},
		{"/a%EF%B9%A8b", pathread.ErrInvalid},
		{"/public/..%5Cadmin", pathread.ErrDotSegment},
		{"/public/.. /admin", pathread.ErrInvalid}, // a raw space
		{"/public/..%20/admin", pathread.ErrDotSegment},
		{"/public/.../admin", pathread.ErrDotSegment},
		{"/public/..::$DATA/admin", pathread.ErrDotSegment},
		{"/public/..%252fadmin", pathread.ErrDotSegment},
		// Dot segments that readers resolve differently: no clean form.
		{"/p/..;/../x", pathread.ErrDotSegment},             // "..;" is plain to RFC 3986 readers
		{"/public/.;/../admin", pathread.ErrDotSegment},     // Tomcat: /admin; others: /public/admin
		{"/public/a%2F../../admin", pathread.ErrDotSegment}, // one segment, or two
		{"/public/.../../admin", pathread.ErrDotSegment},
		{"/public/..;/x/../admin", pathread.ErrDotSegment},
	} {
		p, err := pathread.Read(tc.path)
		if !errors.Is(err, tc.err) {
			t.Errorf("%q: %v (%v), want %v", tc.path, err, p, tc.err)
		}
	}
}

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"/public/../admin":      "/admin",
		"/public/%2e%2e/admin":  "/admin",
		"/public/%2E%2E/admin/": "/admin/",
		"//admin":               "/admin",
		"/a//b":                 "/a/b",
		"/a/./b":                "/a/b",
		"/a/.":                  "/a/",
		"/a/..":                 "/",
		"/..":                   "/",
		"/../../x":              "/x",
		"/a/%7E/../b%20c":       "/a/b%20c", // escaping kept
		"/a./../b":              "/b",       // every reader pops "a."
		"/A/../b":               "/b",
	} {
		p, err := pathread.Read(in)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if p.Canonical() || p.Clean != want || p.Readings != nil {
			t.Errorf("%s: clean %q (canonical %v), want %q", in, p.Clean, p.Canonical(), want)
		}
	}
}

func TestFold(t *testing.T) {
	for in, want := range map[string]string{
		"admin": "admin", "ADMIN": "admin", "ADMİN": "admin", "admın": "admin", "ſecret": "secret",
		"\u212aelvin": "kelvin", "ＡＤＭＩＮ": "admin", "STRASSE": "strasse", "Straße": "strasse", "ẞ": "ss",
		"Å": "å", "\u212b": "å", "ﬁle": "file",
		"\u210dome":    "home", // double-struck H: no lower case of its own, H once NFKC
		"\u2160\u2160": "ii",   // Roman numerals
	} {
		if got := pathread.Fold(in); got != want {
			t.Errorf("Fold(%q) = %q, want %q", in, got, want)
		}
	}
	// Folding can leave a decomposed form (ΐ folds to ι, dialytika,
	// tonos); another spelling folds to a composed one. Both are one name.
	if a, b := pathread.Fold("\u0390"), pathread.Fold("\u03aa\u0301"); a != b {
		t.Errorf("Fold(ΐ) = %q, Fold(Ϊ́) = %q", a, b)
	}
}
