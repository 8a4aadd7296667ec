package proxy

import (
	"net/http"
	"strings"

	"github.com/aero2/aero2/config"
)

// Default identity header names (docs/proxy.md).
var (
	defaultUserHeaders     = []string{"X-Forwarded-User", "X-Auth-Request-User"}
	defaultEmailHeaders    = []string{"X-Forwarded-Email", "X-Auth-Request-Email"}
	defaultUsernameHeaders = []string{"X-Forwarded-Preferred-Username", "X-Auth-Request-Preferred-Username"}
	defaultGroupsHeaders   = []string{"X-Forwarded-Groups", "X-Auth-Request-Groups"}
)

// alwaysStripped are identity headers removed from every request even
// when no route sets them: names that upstreams commonly trust.
var alwaysStripped = []string{
	"X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Preferred-Username", "X-Forwarded-Groups",
	"X-Forwarded-Name", "X-Forwarded-Access-Token", "X-Forwarded-Uid",
	"X-Aero2-Assertion", "Remote-User", "X-Remote-User", "X-Remote-Email", "X-Remote-Groups",
	"X-Real-Ip", "X-Forwarded-Method", "X-Forwarded-Uri", "X-Forwarded-Port", "X-Forwarded-Prefix",
	"X-Original-Url", "X-Original-Uri",
}

// headerPlan is a route's identity headers, resolved once at start-up.
type headerPlan struct {
	user, email, username, groups, accessToken []string
	assertion                                  string
}

func newHeaderPlan(h config.IdentityHeaders) headerPlan {
	pick := func(set, def []string) []string {
		if set != nil {
			return canonical(set)
		}
		return def
	}
	return headerPlan{
		user:        pick(h.User, defaultUserHeaders),
		email:       pick(h.Email, defaultEmailHeaders),
		username:    pick(h.PreferredUsername, defaultUsernameHeaders),
		groups:      pick(h.Groups, defaultGroupsHeaders),
		accessToken: canonical(h.AccessToken),
		assertion:   http.CanonicalHeaderKey(h.Assertion),
	}
}

func canonical(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = http.CanonicalHeaderKey(n)
	}
	return out
}

// names lists every header the plan may set.
func (p headerPlan) names() []string {
	out := append(append(append(append(append([]string{}, p.user...), p.email...), p.username...), p.groups...), p.accessToken...)
	if p.assertion != "" {
		out = append(out, p.assertion)
	}
	return out
}

// stripSet is the identity header names removed from every request,
// normalised by stripKey. It holds every name any route sets, so a header
// meant for one route cannot be smuggled through another.
type stripSet map[string]bool

func newStripSet(plans []headerPlan) stripSet {
	s := stripSet{}
	for _, n := range alwaysStripped {
		s[stripKey(n)] = true
	}
	for _, p := range plans {
		for _, n := range p.names() {
			if !strings.EqualFold(n, "Authorization") {
				s[stripKey(n)] = true
			}
		}
	}
	return s
}

// stripKey lower-cases a header name and reads '_' as '-': CGI, PHP, WSGI
// and nginx (with underscores_in_headers) turn X_Forwarded_User and
// X-Forwarded-User into the same variable, so both must go.
func stripKey(name string) string {
	var buf [128]byte
	if len(name) > len(buf) {
		return strings.ReplaceAll(strings.ToLower(name), "_", "-")
	}
	b := buf[:len(name)]
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case c == '_':
			c = '-'
		}
		b[i] = c
	}
	return string(b)
}

// strip removes every identity header from h, whatever its case, however
// often repeated, with '_' for '-': the whole X-Auth-Request-* family and
// every name in the set.
func (s stripSet) strip(h http.Header) {
	for k := range h {
		n := stripKey(k)
		if s[n] || strings.HasPrefix(n, "x-auth-request-") {
			delete(h, k)
		}
	}
}

// set writes the identity. Values with control characters are not sent
// (they cannot be represented safely in a header).
func (p headerPlan) set(h http.Header, id *Identity) {
	put := func(names []string, v string) {
		if v == "" || !headerValueOK(v) {
			return
		}
		for _, n := range names {
			h[n] = []string{v}
		}
	}
	put(p.user, id.Subject)
	put(p.email, id.Email)
	put(p.username, id.PreferredUsername)
	put(p.groups, groupsHeader(id.Groups))
}

func headerValueOK(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// stripCookies removes the named cookies from the Cookie headers: the
// proxy's own session cookie and the provider's must never reach an
// upstream, which could replay them.
func stripCookies(h http.Header, names []string) {
	lines := h["Cookie"]
	if len(lines) == 0 {
		return
	}
	found := false
	for _, l := range lines {
		for _, n := range names {
			if strings.Contains(l, n) {
				found = true
			}
		}
	}
	if !found {
		return
	}
	var kept []string
	for _, l := range lines {
		for _, part := range strings.Split(l, ";") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			name, _, _ := strings.Cut(part, "=")
			name = strings.TrimSpace(name)
			drop := false
			for _, n := range names {
				if name == n {
					drop = true
					break
				}
			}
			if !drop {
				kept = append(kept, part)
			}
		}
	}
	if len(kept) == 0 {
		delete(h, "Cookie")
		return
	}
	h["Cookie"] = []string{strings.Join(kept, "; ")}
}
