package config

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Who answers a request is decided by host and path, never by method:
// server.owner is that decision, docs/proxy.md ("Who answers") its
// description. This file holds the configuration's side of it: the paths
// an application at the root of its host keeps for itself, and the checks
// that make a configuration say plainly which hosts Aero2 serves.

// issuerExact and issuerSubtrees are the paths an application whose
// issuer is the root of its host answers itself, for every method (those
// it does not serve get 405 with Allow), ahead of any route: its pages
// (federation.Handler.Register) and its provider's endpoints
// (authz.Provider.Register). An endpoint registered outside them would be
// shadowed by a route for "/". An application whose issuer has a path
// keeps that whole path instead.
var (
	issuerExact    = []string{"/login", "/logout", "/account"}
	issuerSubtrees = []string{"/account/", "/rp/", "/oauth2/", "/.well-known/"}
)

// IssuerOwns reports whether an application at the root of its host
// answers path p itself. Letter case does not matter: an upstream that
// reads paths without case must not be handed /OAuth2/Token either. The
// home page "/" is not in the list: it is the application's unless a
// route for "/" serves the host (a sidecar's app keeps its front page).
func IssuerOwns(p string) bool {
	for _, e := range issuerExact {
		if strings.EqualFold(p, e) {
			return true
		}
	}
	for _, s := range issuerSubtrees {
		if len(p) >= len(s) && strings.EqualFold(p[:len(s)], s) {
			return true
		}
	}
	return false
}

// UnderPath reports whether p is base or below it, on whole segments and
// ignoring case: where an application whose issuer has the path base
// answers everything itself.
func UnderPath(p, base string) bool {
	if len(p) < len(base) || !strings.EqualFold(p[:len(base)], base) {
		return false
	}
	return len(p) == len(base) || p[len(base)] == '/'
}

// IssuerHostPath splits an issuer URL into its normalised host and its
// path without a trailing slash ("" at the root).
func IssuerHostPath(issuer string) (host, path string, err error) {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" {
		return "", "", fmt.Errorf("not an absolute URL: %q", issuer)
	}
	return NormalizeHost(u.Host), strings.TrimSuffix(u.EscapedPath(), "/"), nil
}

// issuerKey is the key that holds an application's issuer: the default
// application's comes from server.public_url unless `issuer` is given.
func (c *Config) issuerKey(prefix string) string {
	if prefix == "" && c.positions[prefix+"issuer"] == (Pos{}) {
		return "server.public_url"
	}
	return prefix + "issuer"
}

// checkIssuerPath accepts "" or plain segments of letters, digits and
// "-._~". The path is bound into the names of the application's cookies
// (session.CookieName), so it must be plain; it must stay out of the
// proxy's reserved prefix, except for exactly /.aero2: an issuer there
// puts every one of Aero2's pages and endpoints under the reserved prefix,
// and leaves every other path on the host to the routes (a sidecar whose
// app has its own /login).
func checkIssuerPath(p string) error {
	if p == "" {
		return nil
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("the issuer's path must be plain segments without '//', '.' or '..': %q", p)
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0) {
				return fmt.Errorf("the issuer's path may hold only letters, digits and \"-._~\": %q", p)
			}
		}
	}
	if lower := strings.ToLower(p); strings.HasPrefix(lower, ReservedPrefix) {
		return fmt.Errorf("an issuer under %s must be exactly %s (where it takes the whole reserved prefix): %q", ReservedPrefix, strings.TrimSuffix(ReservedPrefix, "/"), p)
	}
	return nil
}

// validateHosts checks the application's hosts: the issuer's path, the
// `hosts` its routes without `host` serve, and — for an application on
// plain http — that every host it serves is this machine.
func (c *Config) validateHosts(ps *problems, a *Application, prefix string) {
	issuerHost, issuerPath, err := IssuerHostPath(a.Issuer)
	if err != nil {
		return // validateApp reports the issuer itself
	}
	if err := checkIssuerPath(issuerPath); err != nil {
		ps.at(c.issuerKey(prefix), "%v", err)
	}
	plain := strings.HasPrefix(a.Issuer, "http://")
	hostless := false
	for i, r := range a.ProxyRoutes() {
		if r.Host == "" {
			hostless = true
			continue
		}
		if plain && !IsLoopbackHost(hostName(r.Host)) {
			ps.at(a.RoutePath(prefix, i)+".host", "the application's issuer is plain http, so its routes can be served only on this machine (localhost, *.localhost, loopback addresses): %q", r.Host)
		}
	}
	seen := map[string]bool{issuerHost: true}
	for i, h := range a.Hosts {
		key := indexPath(prefix+"hosts", i)
		switch err := checkRouteHost(h); {
		case h == "":
			ps.at(key, "expected a host such as app.example.com")
		case err != nil:
			ps.at(key, "%v", err)
		case plain && !IsLoopbackHost(hostName(h)):
			ps.at(key, "the application's issuer is plain http, so it can be served only on this machine (localhost, *.localhost, loopback addresses): %q", h)
		case seen[NormalizeHost(h)]:
			ps.at(key, "host %q is listed twice (the issuer's host is always served)", h)
		}
		seen[NormalizeHost(h)] = true
	}
	if len(a.Hosts) > 0 && !hostless {
		ps.at(prefix+"hosts", "lists the hosts that routes without `host` serve, but this application has no such route")
	}
}

// validateOwnership reports routes that could never be used because an
// application answers their path itself on their host: under an issuer's
// path, or on an issuer at the root of its host, one of its own paths.
func (c *Config) validateOwnership(ps *problems) {
	type issuer struct{ host, path string }
	var issuers []issuer
	for _, a := range c.Apps() {
		if h, p, err := IssuerHostPath(a.Issuer); err == nil {
			issuers = append(issuers, issuer{h, p})
		}
	}
	for ai, a := range c.Apps() {
		prefix := ""
		if len(c.Applications) > 0 {
			prefix = indexPath("applications", ai) + "."
		}
		ownHost, _, _ := IssuerHostPath(a.Issuer)
		for i, r := range a.ProxyRoutes() {
			hosts := []string{NormalizeHost(r.Host)}
			if r.Host == "" {
				hosts = []string{ownHost}
				for _, h := range a.Hosts {
					hosts = append(hosts, NormalizeHost(h))
				}
			}
			p := strings.TrimSuffix(r.Path, "/")
			for _, is := range issuers {
				if !containsString(hosts, is.host) {
					continue
				}
				dead := is.path != "" && UnderPath(p, is.path) || is.path == "" && (IssuerOwns(p) || IssuerOwns(p+"/"))
				if dead {
					field := a.RoutePath(prefix, i)
					if !(a.Upstream != "" && len(a.Routes) == 0) {
						field += ".path"
					}
					ps.at(field, "Aero2 answers %s on %s itself (the issuer %s%s is there), so this route would never be used", r.Path, is.host, is.host, is.path)
				}
			}
		}
	}
}

// hostName is a host without its port.
func hostName(h string) string {
	if name, _, err := net.SplitHostPort(h); err == nil {
		return name
	}
	return h
}
