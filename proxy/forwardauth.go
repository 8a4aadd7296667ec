package proxy

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/ratelimit"
)

// envoyPrefix is the path_prefix of Envoy's ext_authz HTTP service: Envoy
// appends the original path and keeps the original method and Host.
const envoyPrefix = forwardAuthPfx + "/envoy"

// forwardAuth answers another proxy's question "may this request pass?"
// (nginx auth_request, Traefik ForwardAuth, Caddy forward_auth, Envoy
// ext_authz): 200 with the identity headers, 401 or a redirect to sign in,
// 403 when denied.
//
// The original request is described by X-Forwarded-Method/Host/Uri (or,
// for Envoy, by the request itself). Those headers are believed only from
// trusted proxies: anyone else who can reach the port could otherwise ask
// about any URL with any headers, so they get 403 without an answer.
func (h *Handler) forwardAuth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if !h.trusted(h.peer(r)) {
		h.log.Warn("forward-auth request from an untrusted peer", "peer", h.peer(r).String())
		h.apiError(w, http.StatusForbidden, "untrusted_peer", "Forward-auth answers trusted proxies only.")
		return
	}
	method, host, uri := r.Header.Get("X-Forwarded-Method"), r.Header.Get("X-Forwarded-Host"), r.Header.Get("X-Forwarded-Uri")
	if strings.HasPrefix(r.URL.Path, envoyPrefix+"/") || r.URL.Path == envoyPrefix {
		method, host, uri = r.Method, r.Host, strings.TrimPrefix(r.URL.Path, envoyPrefix)
		if uri == "" {
			uri = "/"
		}
		if r.URL.RawQuery != "" {
			uri += "?" + r.URL.RawQuery
		}
	}
	if method == "" {
		method = http.MethodGet
	}
	u, err := url.ParseRequestURI(uri)
	if host == "" || err != nil {
		h.apiError(w, http.StatusBadRequest, "invalid_request", "X-Forwarded-Host and X-Forwarded-Uri are required.")
		return
	}
	// The request as the client sent it: its headers (cookies,
	// Authorization, Accept) and the original method, host and URI.
	orig := r.Clone(r.Context())
	orig.Method, orig.Host, orig.URL, orig.RequestURI = method, host, u, uri
	orig.Header.Del("X-Forwarded-Method")
	orig.Header.Del("X-Forwarded-Uri")
	orig.Header.Del("X-Forwarded-Host")
	if v, _ := canonicalPath(orig); v != pathOK {
		h.apiError(w, http.StatusBadRequest, "invalid_request", "This address is not valid.")
		return
	}
	rt := h.table.match(config.NormalizeHost(host), u.Path)
	if rt == nil {
		h.apiError(w, http.StatusForbidden, "no_route", "No route covers this address.")
		return
	}
	if !rt.allowEncodedSlashes && hasEncodedSlash(u.RawPath) {
		h.apiError(w, http.StatusBadRequest, "invalid_request", "Encoded slashes are not allowed in this address.")
		return
	}
	// An address that has used up its denials (server.rate_limits.
	// forward_auth_denials) is refused before anything is checked: no
	// session lookup, no token introspection.
	addr := ratelimit.Address(r)
	if d := h.limits.Check(r.Context(), rt.app.name, ratelimit.Peek(ratelimit.ForwardAuthDenials, addr)); !d.Allowed {
		ratelimit.WriteJSON(w, d)
		return
	}
	// The "redirect=0" choice is the auth endpoint's own query.
	orig.URL.RawQuery = u.RawQuery
	fw := &forwardWriter{ResponseWriter: w, redirectOff: r.URL.Query().Get("redirect") == "0"}
	res, ok := h.authorizeForward(fw, orig, rt, uri)
	if !ok {
		h.limits.Allow(context.WithoutCancel(r.Context()), rt.app.name, ratelimit.ForwardAuthDenials, addr)
		return
	}
	if res.id != nil {
		at, as, err := h.credentials(orig, rt, res)
		if err != nil {
			h.unavailable(w, r, err)
			return
		}
		hd := w.Header()
		rt.headers.set(hd, res.id)
		for _, n := range rt.headers.accessToken {
			if at != "" {
				if n == "Authorization" {
					hd.Set(n, "Bearer "+at)
				} else {
					hd.Set(n, at)
				}
			}
		}
		if as != "" {
			hd.Set(rt.headers.assertion, as)
		}
	}
	w.WriteHeader(http.StatusOK)
}

// authorizeForward is authorize for forward-auth: unauthenticated
// browsers go to /.aero2/start on the application's host, unless the
// caller asked for plain 401s (?redirect=0, for nginx).
func (h *Handler) authorizeForward(w *forwardWriter, r *http.Request, rt *Route, target string) (*authResult, bool) {
	if w.redirectOff {
		r.Header.Set("X-Requested-With", "aero2-forward-auth")
	}
	return h.authorize(w, r, rt, target, true)
}

type forwardWriter struct {
	http.ResponseWriter
	redirectOff bool
}
