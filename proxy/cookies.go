package proxy

import (
	"bytes"
	"net/http"
	"strings"
)

// ownCookies are the base names of Aero2's cookies on the hosts the proxy
// serves: every application's proxy session and sign-in binding cookies,
// and the provider's session and login cookies (Options.StripCookies).
// A name is Aero2's whatever its prefix (none, __Host-, __Secure-) and its
// case: browsers match the prefixes case-insensitively (RFC 6265bis §4.1.3),
// and an upstream must not get near any spelling of them.
type ownCookies map[string]bool

func (c ownCookies) add(base string) { c[strings.ToLower(base)] = true }

// has reports whether name is one of Aero2's cookies.
func (c ownCookies) has(name string) bool {
	n := strings.Trim(name, " \t")
	// An ASCII name is lowered into a buffer on the stack and looked up in
	// place (m[string(b)]): upstreams' cookies are often upper case
	// (JSESSIONID), and strings.ToLower made a string for each of them on
	// every proxied request. Any other name goes through strings.ToLower,
	// whose Unicode folding strips more, never less (U+212A, the Kelvin
	// sign, lowers to "k").
	var buf [64]byte
	b, ascii := lowerASCII(buf[:0], n)
	if !ascii {
		b = []byte(strings.ToLower(n))
	}
	b = bytes.TrimPrefix(bytes.TrimPrefix(b, hostPrefix), securePrefix)
	return c[string(b)]
}

// The cookie name prefixes of RFC 6265bis §4.1.3, lowered.
var hostPrefix, securePrefix = []byte("__host-"), []byte("__secure-")

// lowerASCII appends s lowered to b; false if s is not all ASCII.
func lowerASCII(b []byte, s string) ([]byte, bool) {
	for i := range len(s) {
		ch := s[i]
		if ch >= 0x80 {
			return b, false
		}
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		b = append(b, ch)
	}
	return b, true
}

// stripRequest removes Aero2's cookies from the Cookie headers: the
// proxy's own session cookie and the provider's must never reach an
// upstream, which could replay them.
func (c ownCookies) stripRequest(h http.Header) {
	lines := h["Cookie"]
	if len(lines) == 0 {
		return
	}
	var kept []string
	dropped := false
	for _, l := range lines {
		// The parts of strings.Split(l, ";"), one at a time: this runs on
		// every proxied request with a cookie, and the slice of them was
		// an allocation each time.
		for more := true; more; {
			var part string
			part, l, more = strings.Cut(l, ";")
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

// without is the Cookie header h carries once Aero2's cookies are
// removed ("" when nothing is left): what forward-auth tells the front
// proxy to send upstream instead of the client's, so that the session
// cookie never reaches an application behind nginx or Caddy either.
func (c ownCookies) without(h http.Header) string {
	rest := http.Header{"Cookie": h["Cookie"]}
	c.stripRequest(rest)
	return strings.Join(rest["Cookie"], "; ")
}

// stripResponse removes every Set-Cookie of an upstream's response that
// names one of Aero2's cookies, and reports whether it removed any. An
// upstream that could set, overwrite or delete them could fix a session
// on the browser (session fixation), sign its users out, or plant a
// sign-in binding.
func (c ownCookies) stripResponse(h http.Header) bool {
	lines := h["Set-Cookie"]
	var kept []string
	dropped := false
	for _, l := range lines {
		if c.has(setCookieName(l)) {
			dropped = true
			continue
		}
		kept = append(kept, l)
	}
	switch {
	case !dropped:
	case len(kept) == 0:
		delete(h, "Set-Cookie")
	default:
		h["Set-Cookie"] = kept
	}
	return dropped
}

// setCookieName is the cookie name a browser reads from a Set-Cookie line
// (RFC 6265bis §5.6): up to the first '=' of the part before the first
// ';', without surrounding whitespace. Without '=' the cookie is nameless
// and that text is its value, which the browser then sends back alone —
// and a server reads a lone Cookie value as a name, so it counts as one.
func setCookieName(line string) string {
	pair, _, _ := strings.Cut(line, ";")
	name, _, _ := strings.Cut(pair, "=")
	return strings.Trim(name, " \t")
}
