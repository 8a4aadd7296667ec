package proxy

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// splitStripRequest is stripRequest as it was written with strings.Split:
// the oracle for the one that reads the parts one at a time.
func splitStripRequest(c ownCookies, h http.Header) {
	var kept []string
	dropped := false
	for _, l := range h["Cookie"] {
		for _, part := range strings.Split(l, ";") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			name, _, _ := strings.Cut(part, "=")
			if c.has(name) {
				dropped = true
				continue
			}
			kept = append(kept, part)
		}
	}
	switch {
	case !dropped:
	case len(kept) == 0:
		delete(h, "Cookie")
	default:
		h["Cookie"] = []string{strings.Join(kept, "; ")}
	}
}

// TestStripRequestCookies: Aero2's cookies leave a request's Cookie
// headers under every spelling a client can send (prefixes and case, as
// browsers match them; whitespace, empty parts, several lines, a lone
// name), the others stay as they were, and the result is the Split
// version's, part for part. A request whose cookies are all Aero2's (a
// browser on a route: the session cookie alone) costs no allocation.
func TestStripRequestCookies(t *testing.T) {
	c := ownCookies{}
	c.add("aero2_proxy")
	c.add("aero2_session")
	for _, tc := range []struct {
		lines []string
		want  []string // nil: no Cookie header left
	}{
		{[]string{"aero2_proxy=tok"}, nil},
		{[]string{"__Host-aero2_proxy=tok"}, nil},
		{[]string{"__SECURE-AERO2_PROXY=tok; a=1"}, []string{"a=1"}},
		{[]string{" \taero2_proxy \t=tok;;; ;a=1 ;b=2;"}, []string{"a=1; b=2"}},
		{[]string{"a=1", "aero2_session=x", "b=2; aero2_proxy"}, []string{"a=1; b=2"}}, // a lone name is a name
		{[]string{"a=1;b=2"}, []string{"a=1;b=2"}},                                     // nothing dropped: untouched
		{[]string{"aero2_proxy_x=1; x_aero2_proxy=2"}, []string{"aero2_proxy_x=1; x_aero2_proxy=2"}},
		{[]string{";", "", "=aero2_proxy; aero2_proxy=1"}, []string{"=aero2_proxy"}},
		{[]string{"a=\"aero2_proxy=1; b\"; aero2_proxy=2"}, []string{"a=\"aero2_proxy=1; b\""}},
		{[]string{""}, []string{""}},
	} {
		h := http.Header{"Cookie": slices.Clone(tc.lines)}
		c.stripRequest(h)
		if got := h["Cookie"]; !slices.Equal(got, tc.want) || (got == nil) != (tc.want == nil) {
			t.Errorf("Cookie %q: left %q, want %q", tc.lines, got, tc.want)
		}
		oracle := http.Header{"Cookie": slices.Clone(tc.lines)}
		splitStripRequest(c, oracle)
		if !slices.Equal(h["Cookie"], oracle["Cookie"]) {
			t.Errorf("Cookie %q: left %q, the Split version %q", tc.lines, h["Cookie"], oracle["Cookie"])
		}
	}
	h, line := http.Header{}, []string{"aero2_proxy=tok.sid"}
	if n := testing.AllocsPerRun(100, func() {
		h["Cookie"] = line
		c.stripRequest(h)
	}); n != 0 || len(h) != 0 {
		t.Errorf("stripping the session cookie alone: %v allocations, want 0", n)
	}
}

// FuzzStripRequestCookies holds stripRequest to the Split version on any
// Cookie lines, and no part naming one of Aero2's cookies is left.
func FuzzStripRequestCookies(f *testing.F) {
	for _, s := range []string{"aero2_proxy=1", "a=1; __Host-AERO2_PROXY=2;", " ; ;", "x", "aero2_proxy", "a=\"b;aero2_proxy=c\""} {
		f.Add(s, "b=2; aero2_session=3")
	}
	c := ownCookies{}
	c.add("aero2_proxy")
	c.add("aero2_session")
	f.Fuzz(func(t *testing.T, l1, l2 string) {
		h := http.Header{"Cookie": {l1, l2}}
		c.stripRequest(h)
		oracle := http.Header{"Cookie": {l1, l2}}
		splitStripRequest(c, oracle)
		if !slices.Equal(h["Cookie"], oracle["Cookie"]) {
			t.Fatalf("%q %q: left %q, the Split version %q", l1, l2, h["Cookie"], oracle["Cookie"])
		}
		for _, l := range h["Cookie"] {
			for _, part := range strings.Split(l, ";") {
				if name, _, _ := strings.Cut(part, "="); c.has(name) {
					t.Fatalf("%q %q: %q left", l1, l2, part)
				}
			}
		}
	})
}

// TestHasIsToLowersAnswer: has answers what strings.ToLower and the
// prefixes answered for every spelling (case, prefixes, whitespace,
// non-ASCII folding to ASCII, names past the stack buffer), and allocates
// nothing for an upper-case ASCII name.
func TestHasIsToLowersAnswer(t *testing.T) {
	c := ownCookies{}
	c.add("aero2_proxy")
	c.add("k")
	was := func(name string) bool {
		n := strings.ToLower(strings.Trim(name, " \t"))
		return c[strings.TrimPrefix(strings.TrimPrefix(n, "__host-"), "__secure-")]
	}
	long := strings.Repeat("A", 70)
	c.add(long)
	for _, name := range []string{
		"aero2_proxy", "AERO2_PROXY", " Aero2_Proxy\t", "__Host-AERO2_proxy", "__SECURE-aero2_proxy", "__host-__secure-aero2_proxy",
		"__secure-__host-aero2_proxy", "aero2_proxy2", "JSESSIONID", "", " ", "__Host-", "K", "\u212a", "__Host-\u212a", "aero2_pro\u212ay",
		long, strings.ToLower(long), long + "A", "__Host-" + long, "\xff", "aero2_proxy\xff",
	} {
		if got, want := c.has(name), was(name); got != want {
			t.Errorf("has(%q) = %v, strings.ToLower's answer %v", name, got, want)
		}
	}
	if !c.has("\u212a") {
		t.Error("the Kelvin sign, which lowers to k, is not stripped")
	}
	if n := testing.AllocsPerRun(100, func() {
		if c.has("JSESSIONID") || !c.has("__Host-AERO2_PROXY") {
			t.Fatal("wrong answer")
		}
	}); n != 0 {
		t.Errorf("has allocates %v times for upper-case names", n)
	}
}
