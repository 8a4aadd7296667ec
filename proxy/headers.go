package proxy

import (
	"net/http"
	"slices"
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

// The headers no client may send upstream, in one place (docs/proxy.md,
// "Headers", lists the same). Each is matched whatever its case and with
// '_' read as '-' (stripKey), however often it is repeated.
//
// strippedHeaders and strippedPrefixes say who the user is or how the
// request was routed. Some upstream trusts each of them: oauth2-proxy's
// and Aero2's own, Authelia's Remote-*, Apache's and Grafana's
// X-Webauth-*, nginx/IIS rewrites (X-Original-Url, X-Rewrite-Url), and the
// identity headers of cloud front ends (AWS ALB, Google IAP, Azure App
// Service, Cloudflare Access, Pomerium, Authentik, Tailscale), which an
// application moved behind Aero2 may still believe.
var strippedHeaders = slices.Concat(identityHeaders, routingHeaders)

// identityHeaders say who the user is. Forward-auth's 200 carries every
// one of them (forwardAuthFamily), empty when Aero2 knows no value.
var identityHeaders = []string{
	"X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Preferred-Username", "X-Forwarded-Groups",
	"X-Forwarded-Name", "X-Forwarded-Access-Token", "X-Forwarded-Uid", "X-Aero2-Assertion",
	"X-User", "X-Email", "X-Id-Token",
}

// routingHeaders say how the request was routed. A front proxy sets some
// of them itself, so forward-auth does not answer them: the examples
// remove the client's copies.
var routingHeaders = []string{
	"X-Real-Ip", "X-Forwarded-Method", "X-Forwarded-Uri", "X-Forwarded-Port", "X-Forwarded-Prefix",
	"X-Original-Url", "X-Original-Uri", "X-Original-Method", "X-Rewrite-Url",
	// RFC 7239: Aero2 writes X-Forwarded-For, -Host and -Proto instead
	// (httputil.ReverseProxy's Rewrite drops it too).
	"Forwarded",
}

// strippedPrefixes are whole families: every header whose name starts so
// (normalised by stripKey) is removed.
var strippedPrefixes = []string{
	"x-auth-request-", // oauth2-proxy
	"remote-",         // Authelia: Remote-User, -Email, -Groups, -Name
	"x-remote-",
	"x-webauth-", // Apache, Grafana, Gitea reverse-proxy auth
	"x-authenticated-",
	"x-amzn-oidc-",          // AWS ALB
	"x-goog-authenticated-", // Google IAP
	"x-goog-iap-",
	"x-ms-client-principal", // Azure App Service, with and without a suffix
	"x-ms-token-",
	"cf-access-", // Cloudflare Access
	"x-pomerium-",
	"x-authentik-",
	"tailscale-user-",
}

// untrustedHeaders say where the client is or which scheme and host it
// used. A proxy in front (server.trusted_proxies) may set them; from
// anyone else they are removed. X-Forwarded-For, -Host and -Proto are not
// here: Aero2 always writes those itself, whoever the peer.
var untrustedHeaders = []string{
	"True-Client-Ip", "X-Client-Ip", "Cf-Connecting-Ip", "X-Cluster-Client-Ip",
	"X-Forwarded-Ssl", "X-Forwarded-Scheme", "X-Url-Scheme", "Front-End-Https",
	"X-Original-Host", "X-Host", "X-Forwarded-Server",
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

// stripSet is the headers removed from every request before it goes
// upstream, normalised by stripKey. Besides the lists above it holds every
// name any route sets, so that a header meant for one route cannot be
// smuggled through another.
type stripSet struct {
	always    map[string]bool
	untrusted map[string]bool // kept only from a trusted proxy
}

func newStripSet(plans []headerPlan) stripSet {
	s := stripSet{always: map[string]bool{}, untrusted: map[string]bool{}}
	for _, n := range strippedHeaders {
		s.always[stripKey(n)] = true
	}
	for _, n := range untrustedHeaders {
		s.untrusted[stripKey(n)] = true
	}
	for _, p := range plans {
		for _, n := range p.names() {
			if !strings.EqualFold(n, "Authorization") {
				s.always[stripKey(n)] = true
			}
		}
	}
	return s
}

// forwardAuthFamily is every header forward-auth's 200 carries, in
// canonical form and sorted: the identity headers of the list above,
// the default names (docs/proxy.md) and every name any route sets, each
// present even when empty, and Cookie. A front proxy copies them all onto
// the upstream request, so whatever the client sent under those names is
// replaced, also when Aero2 knows no value (a user without groups, a
// public route): Caddy 2.6's copy_headers, given a header the answer
// lacks, sends its placeholder ("{http.reverse_proxy.header.…}") instead,
// and nginx's auth_request_set would need a default per name. The
// Authorization header a route may set is not among them: a front proxy
// that copied it empty would remove the client's own credentials.
func forwardAuthFamily(plans []headerPlan) []string {
	seen := map[string]bool{}
	var out []string
	add := func(n string) {
		n = http.CanonicalHeaderKey(n)
		if !seen[n] && n != "Authorization" {
			seen[n] = true
			out = append(out, n)
		}
	}
	for _, set := range [][]string{identityHeaders, defaultUserHeaders, defaultEmailHeaders, defaultUsernameHeaders, defaultGroupsHeaders, {"Cookie"}} {
		for _, n := range set {
			add(n)
		}
	}
	for _, p := range plans {
		for _, n := range p.names() {
			add(n)
		}
	}
	slices.Sort(out)
	return out
}

// stripKey lower-cases a header name and reads '_' as '-': CGI, PHP, WSGI
// and nginx (with underscores_in_headers) turn X_Forwarded_User and
// X-Forwarded-User into the same variable, so both must go.
func stripKey(name string) string {
	var buf [128]byte
	return string(stripKeyIn(&buf, name))
}

// stripKeyIn is stripKey written into buf when name fits it (every name
// but a hostile one): drops runs on every header of every proxied request,
// and a string made of each name was an allocation apiece.
func stripKeyIn(buf *[128]byte, name string) []byte {
	if len(name) > len(buf) {
		return []byte(strings.ReplaceAll(strings.ToLower(name), "_", "-"))
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
	return b
}

// drops reports whether a header named name is removed; trustedPeer says
// whether the connection comes from a trusted proxy.
func (s stripSet) drops(name string, trustedPeer bool) bool {
	var buf [128]byte
	n := stripKeyIn(&buf, name)
	// string(n) in a map index and a comparison is not a copy.
	if s.always[string(n)] || (!trustedPeer && s.untrusted[string(n)]) {
		return true
	}
	for _, p := range strippedPrefixes {
		if len(n) >= len(p) && string(n[:len(p)]) == p {
			return true
		}
	}
	return false
}

// strip removes from h every header drops names, whatever its case,
// however often repeated, with '_' for '-'.
func (s stripSet) strip(h http.Header, trustedPeer bool) {
	for k := range h {
		if s.drops(k, trustedPeer) {
			delete(h, k)
		}
	}
}

// write sets what an admitted request carries upstream: the identity,
// and the access token and assertion when the route sends them.
func (p headerPlan) write(h http.Header, d *decision) {
	if d.id == nil {
		return
	}
	p.set(h, d.id)
	if d.accessToken != "" {
		for _, n := range p.accessToken {
			v := d.accessToken
			if n == "Authorization" {
				v = "Bearer " + v
			}
			h[n] = []string{v}
		}
	}
	if d.assertion != "" {
		h[p.assertion] = []string{d.assertion}
	}
}

// set writes the identity. Values with control characters are not sent
// (they cannot be represented safely in a header).
func (p headerPlan) set(h http.Header, id *Identity) {
	// One backing array for every value: a []string per header name was
	// a tenth of the allocations of a proxied request. Each header gets a
	// slice of capacity 1, so that appending to one never writes into
	// the next.
	vals := make([]string, 0, len(p.user)+len(p.email)+len(p.username)+len(p.groups))
	put := func(names []string, v string) {
		if v == "" || !headerValueOK(v) {
			return
		}
		for _, n := range names {
			vals = append(vals, v)
			i := len(vals)
			h[n] = vals[i-1 : i : i]
		}
	}
	put(p.user, id.Subject)
	put(p.email, id.Email)
	put(p.username, id.PreferredUsername)
	put(p.groups, id.groupsValue())
}

func headerValueOK(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
