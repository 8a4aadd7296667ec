package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Proxy defaults. docs/config-routes.md repeats them for readers.
const (
	DefaultProxyClientID     = "aero2-proxy"
	DefaultProxyCookieName   = "aero2_proxy"
	DefaultProxySessionCache = 2 * time.Second
	DefaultProxyTokenCache   = 10 * time.Second
	MaxProxySessionCache     = 30 * time.Second
	MaxProxyInvalidatedCache = time.Hour
	MaxProxyTokenCache       = 60 * time.Second
	DefaultUpstreamDial      = 10 * time.Second
	DefaultUpstreamHeader    = 60 * time.Second
	DefaultUpstreamIdle      = 90 * time.Second
)

// ReservedPrefix is where the proxy serves its own endpoints (callback,
// sign-out, forward-auth, static assets) on every host. No route may use
// it, so no upstream can shadow them.
const ReservedPrefix = "/.aero2/"

// AssertionAudiencePrefix starts the audience of every identity assertion
// the proxy sends upstream: "urn:aero2:assertion:" and the route's origin
// and path, e.g. "urn:aero2:assertion:https://app.example.com/admin". No
// access token can have an audience there (client audiences and
// proxy.audiences are refused in this namespace, and an issuer is an
// https URL), so an upstream that checks aud never takes one for the
// other — even for a route "/" on the issuer's own origin.
const AssertionAudiencePrefix = "urn:aero2:assertion:"

// IsAssertionAudience reports whether aud lies in the assertions'
// namespace (URN namespace identifiers are case-insensitive, RFC 8141).
func IsAssertionAudience(aud string) bool {
	return len(aud) >= len(AssertionAudiencePrefix) && strings.EqualFold(aud[:len(AssertionAudiencePrefix)], AssertionAudiencePrefix)
}

// DefaultProxyScopes are proxy.scopes when it is not set: groups for
// policies on groups, offline_access for a refresh token that keeps a
// forwarded access token fresh (asked for only where one is forwarded:
// ProxyRequestScopes).
var DefaultProxyScopes = []string{"openid", "profile", "email", "groups", "offline_access"}

// ProxyRequestScopes are the scopes the proxy asks its provider for:
// proxy.scopes as written, or the default without offline_access where
// no refresh token serves anything (ProxyRefreshes).
func (a *Application) ProxyRequestScopes() []string {
	if a.ProxyRefreshes() {
		return slices.Clone(a.Proxy.Scopes)
	}
	return slices.DeleteFunc(slices.Clone(a.Proxy.Scopes), func(s string) bool { return s == "offline_access" })
}

// ProxyRefreshes reports whether the proxy has a use for refresh tokens:
// unless its provider is the application's own, proxy.scopes is the
// default and no route sends the access token upstream. There the proxy
// keeps no token (its session is a reference to the provider session,
// and stands or falls with it), so a refresh token would never be
// redeemed, and the provider would store it, and index it under the
// grant, for its whole lifetime, for nothing: the proxy's client is then
// not given the refresh_token grant (the provider issues refresh tokens
// to every client that has it, offline_access or not), nor asks for
// offline_access. The proxy calls its own provider in process, so a
// reload that adds an access_token route changes both sides at once.
func (a *Application) ProxyRefreshes() bool {
	return !a.Proxy.ScopesDefault || a.Proxy.Provider != a.Issuer || a.ForwardsAccessToken()
}

// ForwardsAccessToken reports whether a route of the application sends
// the user's access token upstream (headers.access_token).
func (a *Application) ForwardsAccessToken() bool {
	for _, r := range a.ProxyRoutes() {
		if len(r.Headers.AccessToken) > 0 {
			return true
		}
	}
	return false
}

// forbiddenIdentityHeaders cannot carry identity: the proxy or the HTTP
// layer owns them (RFC 9110 §7.6.1 for the hop-by-hop ones).
var forbiddenIdentityHeaders = map[string]bool{
	"host": true, "cookie": true, "connection": true, "content-length": true, "content-type": true,
	"transfer-encoding": true, "te": true, "trailer": true, "upgrade": true, "keep-alive": true,
	"proxy-authorization": true, "proxy-authenticate": true, "proxy-connection": true,
	"x-forwarded-for": true, "x-forwarded-proto": true, "x-forwarded-host": true, "forwarded": true,
}

// ProxyRoutes are the application's routes with the sidecar shorthand
// expanded: `upstream:` alone is one route for every host and path.
func (a *Application) ProxyRoutes() []Route {
	if a.Upstream != "" && len(a.Routes) == 0 {
		return []Route{{Path: "/", Upstream: a.Upstream}}
	}
	return a.Routes
}

// RoutePath is the config path of route i, for problems: the shorthand's
// problems point at `upstream`.
func (a *Application) RoutePath(prefix string, i int) string {
	if a.Upstream != "" && len(a.Routes) == 0 {
		return prefix + "upstream"
	}
	return indexPath(prefix+"routes", i)
}

func (a *Application) applyProxyDefaults() {
	p := &a.Proxy
	if p.Provider == "" {
		p.Provider = a.Issuer
	}
	p.Provider = strings.TrimSuffix(p.Provider, "/")
	if p.ClientID == "" {
		p.ClientID = DefaultProxyClientID
	}
	if len(p.Scopes) == 0 {
		p.Scopes = append([]string(nil), DefaultProxyScopes...)
		p.ScopesDefault = true
	}
	if len(p.Audiences) == 0 {
		p.Audiences = []string{p.ClientID}
	}
	if p.CookieName == "" {
		p.CookieName = DefaultProxyCookieName
		if a.Name != DefaultApplication {
			p.CookieName += "_" + strings.ReplaceAll(a.Name, "-", "_")
		}
	}
	setDuration(&p.TokenCache, DefaultProxyTokenCache)
	for i := range a.Routes {
		r := &a.Routes[i]
		if r.Path == "" {
			r.Path = "/"
		}
		r.Host = strings.TrimSuffix(strings.ToLower(r.Host), ".")
	}
	for i, h := range a.Hosts {
		a.Hosts[i] = strings.TrimSuffix(strings.ToLower(h), ".")
	}
}

// RouteKey identifies a route's place in the match table: two routes with
// one key would be ambiguous.
func RouteKey(host, p string) string {
	return strings.ToLower(host) + " " + strings.ToLower(strings.TrimSuffix(p, "/"))
}

// validateRoutes checks the application's proxy settings and routes; seen
// collects route keys across applications.
func (c *Config) validateRoutes(ps *problems, a *Application, prefix string, seen map[string]string) {
	p := a.Proxy
	// Without proxy.provider in the file it is the issuer, whose own
	// problem is reported where the issuer is written.
	if c.inFile(prefix+"proxy.provider") && p.Provider != a.Issuer {
		if err := c.checkBaseURL(p.Provider); err != nil {
			ps.at(prefix+"proxy.provider", "%v", err)
		}
	}
	if p.SessionCache < 0 || p.SessionCache > MaxProxySessionCache {
		ps.at(prefix+"proxy.session_cache", "must be between 0 and %s: it is how long a sign-out elsewhere may go unnoticed", MaxProxySessionCache)
	}
	if p.SessionCacheInvalidated < 0 || p.SessionCacheInvalidated > MaxProxyInvalidatedCache {
		ps.at(prefix+"proxy.session_cache_invalidated", "must be between 0 and %s", MaxProxyInvalidatedCache)
	}
	if p.TokenCache < 0 || p.TokenCache > MaxProxyTokenCache {
		ps.at(prefix+"proxy.token_cache", "must be between 0 and %s: it is how long a revoked token may still be accepted", MaxProxyTokenCache)
	}
	if !cookieRE.MatchString(p.CookieName) {
		c.checkCookieName(ps, a, prefix, "proxy.cookie_name", p.CookieName)
	} else if p.CookieName == a.Session.CookieName {
		ps.at(prefix+"proxy.cookie_name", "must differ from session.cookie_name")
	}
	if !containsString(p.Scopes, "openid") {
		ps.at(prefix+"proxy.scopes", "must include openid")
	}
	for i, aud := range p.Audiences {
		if IsAssertionAudience(aud) {
			ps.at(indexPath(prefix+"proxy.audiences", i), "%s… is the audience of identity assertions, never of an access token", AssertionAudiencePrefix)
		}
	}
	if a.Upstream != "" && len(a.Routes) > 0 {
		ps.at(prefix+"upstream", "`upstream` is the shorthand for a single route; with `routes`, give each route its upstream (if this one belongs to the route above, indent it into that route)")
	}
	for i, r := range a.ProxyRoutes() {
		rp := a.RoutePath(prefix, i)
		field := func(name string) string {
			if a.Upstream != "" && len(a.Routes) == 0 {
				return rp
			}
			return rp + "." + name
		}
		c.validateRoute(ps, r, rp, field)
		key := RouteKey(r.Host, r.Path)
		if prev, dup := seen[key]; dup {
			ps.at(field("path"), "host %q and path %q are already routed by %s (paths match ignoring case)", r.Host, r.Path, prev)
		}
		seen[key] = rp
	}
	c.validateHosts(ps, a, prefix)
}

func (c *Config) validateRoute(ps *problems, r Route, rp string, field func(string) string) {
	u, err := url.Parse(r.Upstream)
	switch {
	case r.Upstream == "":
		// A route without upstream only answers forward-auth: valid, and
		// what a forward-auth set-up wants, but also what a forgotten
		// upstream looks like, which would otherwise show only as a 404
		// once requests arrive.
		ps.notice(rp, "forward-auth only: this route has no upstream, so Aero2 answers a front proxy's forward-auth checks for it and proxies nothing (add upstream: to proxy it)")
	case err != nil || u.Host == "" || u.Opaque != "" || (u.Scheme != "http" && u.Scheme != "https"):
		ps.at(field("upstream"), "expected an http or https URL such as http://127.0.0.1:3000, got %q", r.Upstream)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		ps.at(field("upstream"), "must not have user info, a query or a fragment: %q", r.Upstream)
	}
	if err := checkRouteHost(r.Host); err != nil {
		ps.at(field("host"), "%v", err)
	}
	if err := checkRoutePath(r.Path); err != nil {
		ps.at(field("path"), "%v", err)
	}
	if (r.TLS.CAFile != "" || r.TLS.ServerName != "") && err == nil && u.Scheme != "https" {
		ps.at(field("tls"), "tls settings need an https upstream")
	}
	for name, d := range map[string]time.Duration{"dial": r.Timeouts.Dial, "response_header": r.Timeouts.ResponseHeader, "idle": r.Timeouts.Idle} {
		if d < 0 {
			ps.at(field("timeouts."+name), "must not be negative")
		}
	}
	c.validatePolicy(ps, r.Policy, field)
	h := r.Headers
	lists2 := map[string][]string{"user": h.User, "email": h.Email, "preferred_username": h.PreferredUsername, "groups": h.Groups, "access_token": h.AccessToken}
	for name, list := range lists2 {
		for i, n := range list {
			if err := checkHeaderName(n, name == "access_token"); err != nil {
				ps.at(indexPath(field("headers."+name), i), "%v", err)
			}
		}
	}
	if h.Assertion != "" {
		if err := checkHeaderName(h.Assertion, false); err != nil {
			ps.at(field("headers.assertion"), "%v", err)
		}
	}
}

// validatePolicy checks a route's policy. An allow-list that is written
// but empty (`allowed_emails: []`, or with no value) is refused: it reads
// as "nobody", yet a policy whose lists are all absent admits every
// signed-in user, and a list emptied by mistake (an edit, a variable
// that expanded to nothing) must not open a route to everyone.
func (c *Config) validatePolicy(ps *problems, pol Policy, field func(string) string) {
	lists := len(pol.AllowedEmails) + len(pol.AllowedDomains) + len(pol.AllowedGroups) + len(pol.AllowedClaims)
	if pol.Public && (lists > 0 || pol.AllowClientCredentials) {
		ps.at(field("policy.public"), "a public route admits everyone: remove the allow-lists and allow_client_credentials, or public: true")
	}
	written := func(key string) bool {
		p := field("policy." + key) // the shorthand's problems point at `upstream`: it has no policy
		_, ok := c.positions[p]
		return ok && strings.HasSuffix(p, key)
	}
	for key, n := range map[string]int{
		"allowed_emails": len(pol.AllowedEmails), "allowed_domains": len(pol.AllowedDomains),
		"allowed_groups": len(pol.AllowedGroups), "allowed_claims": len(pol.AllowedClaims),
	} {
		if n == 0 && written(key) {
			ps.at(field("policy."+key), "an empty list admits nobody, and is not the way to admit everyone: list who may pass, or remove %s (then any signed-in user passes)", key)
		}
	}
	for k, vs := range pol.AllowedClaims {
		if k == "" || len(vs) == 0 {
			ps.at(field("policy.allowed_claims."+k), "claim %q needs at least one accepted value", k)
		}
	}
}

// checkRouteHost accepts "", a host name or IP literal with an optional
// port, or "*.<domain>" (a wildcard of one or more labels).
func checkRouteHost(h string) error {
	if h == "" {
		return nil
	}
	// A URL where a host belongs is the common mistake; saying "invalid
	// port" about the "//app…" after "https:" would not help.
	if strings.Contains(h, ":/") {
		u, err := url.Parse(h)
		if err != nil || u.Host == "" {
			return fmt.Errorf("expected a host such as app.example.com, not a URL: %q", h)
		}
		host := strings.ToLower(u.Host)
		if u.Path != "" && u.Path != "/" {
			return fmt.Errorf("expected a host, not a URL: write %s, and %s as a route's path (the scheme is the request's)", host, u.Path)
		}
		return fmt.Errorf("expected a host, not a URL: write %s (the scheme is the request's)", host)
	}
	if i := strings.IndexByte(h, '/'); i >= 0 {
		return fmt.Errorf("expected a host without a path: write %s, and %s as a route's path", h[:i], h[i:])
	}
	if strings.ContainsAny(h, "@?# \t") {
		return fmt.Errorf("expected a host name such as app.example.com or a wildcard such as *.example.com, got %q", h)
	}
	host := h
	if hh, pp, err := net.SplitHostPort(h); err == nil {
		host = hh
		if n, err := strconv.Atoi(pp); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("invalid port in host %q", h)
		}
	}
	if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return nil
	}
	name := strings.TrimPrefix(host, "*.")
	if strings.Contains(name, "*") || !hostLabels(name) {
		return fmt.Errorf("expected a host name such as app.example.com or a wildcard such as *.example.com, got %q", h)
	}
	return nil
}

func hostLabels(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// checkRoutePath accepts a clean absolute path outside the reserved
// prefix. A route path with dot segments, '%' or '\' could never match a
// request the proxy accepts (it refuses such paths), so it is a mistake.
func checkRoutePath(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("expected a path starting with '/', got %q", p)
	}
	for _, c := range p {
		if c < 0x21 || c == 0x7f || strings.ContainsRune(`?#%\`, c) {
			return fmt.Errorf("must be a plain path without spaces, '?', '#', '%%' or '\\': %q", p)
		}
	}
	if clean := path.Clean(p); clean != strings.TrimSuffix(p, "/") && clean != p {
		return fmt.Errorf("must not contain '//', '.' or '..' segments: %q", p)
	}
	lower := strings.ToLower(p)
	if strings.HasPrefix(lower+"/", ReservedPrefix) || strings.HasPrefix(lower, ReservedPrefix) {
		return fmt.Errorf("%s is reserved for Aero2's own endpoints", ReservedPrefix)
	}
	return nil
}

// checkHeaderName accepts an RFC 9110 token that is not a header the proxy
// or HTTP itself owns. Authorization may carry the access token only.
func checkHeaderName(n string, accessToken bool) error {
	if n == "" {
		return fmt.Errorf("empty header name")
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$&'*+-.^_`|~", c) >= 0) {
			return fmt.Errorf("invalid header name %q", n)
		}
	}
	l := strings.ToLower(n)
	if forbiddenIdentityHeaders[l] || (l == "authorization" && !accessToken) {
		return fmt.Errorf("header %s cannot carry identity", n)
	}
	return nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
