package server

import (
	"net/http"
	"strings"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/proxy"
	"github.com/aero2/aero2/web"
)

// ownerKind is who answers a request.
type ownerKind int

const (
	ownNone        ownerKind = iota // 404: nothing is served here
	ownMisdirected                  // 421: a host the configuration does not name
	ownHealth                       // /healthz, /readyz, on every host
	ownStatic                       // /.aero2/static/, on every host
	ownProxy                        // the proxy's own /.aero2/ paths
	ownApp                          // an application's pages and provider endpoints
	ownRoute                        // a route (or, route nil, the proxy's refusal)
)

// owner is the decision for one request.
type owner struct {
	kind   ownerKind
	app    *application // ownApp
	choice proxy.Choice // ownRoute: the route, or why there is none
}

// owner decides who answers a request for host (as the client sent it)
// and path (decoded, as ServeMux reads it; escaped is the same path as
// the upstream would receive it). It is the one place this is decided
// (docs/proxy.md, "Who answers"), in this order:
//
//  1. /healthz, /readyz and the static assets, on any host; forward-auth
//     on any host (the proxy in front picks the Host of its own request;
//     only trusted peers are answered, and the host they forward is
//     judged by these same rules).
//  2. A host that no issuer is on and no route serves is misdirected
//     (421): a route without `host` serves its application's hosts (its
//     issuer's and `hosts`), never whatever Host a client sends.
//  3. The proxy's endpoints (/.aero2/callback, …) on every host that is
//     served.
//  4. On an issuer's host, the application's own paths: everything under
//     an issuer's path, or, for an issuer at the root, its pages and
//     endpoints (config.IssuerOwns) and its home page "/" unless a route
//     for "/" serves the host.
//  5. Any other /.aero2/ path: the proxy's (404), never a route's.
//  6. On a host routes serve, the proxy: the most specific route, or its
//     refusal of a path no route covers.
//  7. Else 404.
//
// The method plays no part: a path Aero2 owns is Aero2's for every method
// (those it does not answer get 405 with Allow), so no method carries a
// request for Aero2 past it to an upstream.
func (s *Server) owner(rawHost, path, escaped string) owner {
	switch {
	case path == "/healthz" || path == "/readyz":
		return owner{kind: ownHealth}
	case strings.HasPrefix(path, web.StaticPrefix):
		return owner{kind: ownStatic}
	case s.proxy != nil && proxy.IsForwardAuth(path):
		return owner{kind: ownProxy}
	}
	host := config.NormalizeHost(rawHost)
	routed := s.proxy != nil && s.proxy.ServesHost(host)
	app, issuerHost := s.issuerFor(host, path)
	if !routed && !issuerHost {
		return owner{kind: ownMisdirected}
	}
	if s.proxy != nil && proxy.IsEndpoint(path) {
		return owner{kind: ownProxy}
	}
	if app != nil {
		switch {
		case app.basePath != "", config.IssuerOwns(path):
			return owner{kind: ownApp, app: app}
		case path == "/" && (!routed || s.proxy.Choose(host, "/").Route() == nil):
			return owner{kind: ownApp, app: app}
		}
	}
	if config.UnderPath(path, strings.TrimSuffix(config.ReservedPrefix, "/")) {
		if s.proxy != nil {
			return owner{kind: ownProxy}
		}
		return owner{kind: ownNone}
	}
	if routed {
		return owner{kind: ownRoute, choice: s.proxy.Choose(host, escaped)}
	}
	return owner{kind: ownNone}
}

// issuerFor returns the application whose issuer covers host and path
// (the longest issuer path first), and whether any issuer is on host.
func (s *Server) issuerFor(host, path string) (*application, bool) {
	on := false
	for _, a := range s.apps {
		if a.host != host {
			continue
		}
		on = true
		if a.basePath == "" || config.UnderPath(path, a.basePath) {
			return a, true
		}
	}
	return nil, on
}

// route answers a request as owner decides.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	o := s.owner(r.Host, r.URL.Path, r.URL.EscapedPath())
	switch o.kind {
	case ownHealth:
		if r.URL.Path == "/readyz" {
			s.ready(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	case ownStatic:
		web.Static().ServeHTTP(w, r)
	case ownMisdirected:
		proxy.Misdirected(w, r)
	case ownProxy:
		// The proxy's own endpoints read small forms, under
		// read_body_timeout (bodies.go).
		body := s.ownBody(w, r)
		s.proxy.ServeReserved(w, r)
		answerLate(w, body)
	case ownApp:
		if r.URL.Path == o.app.basePath {
			// The issuer's path itself: its home page is one slash on.
			http.Redirect(w, r, o.app.basePath+"/", http.StatusFound)
			return
		}
		s.ownBody(w, r)
		o.app.handler.ServeHTTP(w, r)
	case ownRoute:
		// Upstream, streaming: each read may pause at most
		// proxy_body_idle_timeout (bodies.go).
		body := limitBody(w, r, 0, s.cfg.Server.ProxyBodyIdleTimeout)
		s.proxy.ServeRoute(w, r, o.choice)
		answerLate(w, body)
	default:
		web.NotFound.WritePage(w, "")
	}
}
