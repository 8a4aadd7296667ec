package proxy

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/ratelimit"
	"github.com/aero2/aero2/reqlog"
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
// for Envoy, by the request itself: see readOriginal). Those headers are
// believed only from trusted proxies: anyone else who can reach the port
// could otherwise ask about any URL with any headers, so they get 403
// without an answer.
func (h *Handler) forwardAuth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if !h.trusted(h.peer(r)) {
		h.log.Warn("forward-auth request from an untrusted peer", "peer", h.peer(r).String())
		h.apiError(w, http.StatusForbidden, "untrusted_peer", "Forward-auth answers trusted proxies only.")
		return
	}
	o, err := readOriginal(r)
	reqlog.SetKind(r.Context(), "forward_auth", o.mode())
	if err != nil {
		h.apiError(w, http.StatusBadRequest, "invalid_request", "Not a forward-auth request: "+err.Error()+".")
		return
	}
	// The access log names the request asked about, not this endpoint,
	// with its path decoded as every access log line's is.
	logPath, err := url.PathUnescape(o.path)
	if err != nil {
		logPath = o.path
	}
	reqlog.SetChecked(r.Context(), o.method, o.host, logPath)
	// The request as the client sent it: its headers (cookies,
	// Authorization, Accept) and the original method, host and URI.
	orig := r.Clone(r.Context())
	orig.Method, orig.Host, orig.RequestURI = o.method, o.host, o.target
	orig.Header.Del("X-Forwarded-Method")
	orig.Header.Del("X-Forwarded-Uri")
	orig.Header.Del("X-Forwarded-Host")
	// The same decision as the built-in proxy's, on the path exactly as
	// the front proxy will send it upstream. There is no redirect to a
	// clean path: the front proxy would not follow it.
	d := h.table.choose(config.NormalizeHost(o.host), o.path)
	if d.verdict != pathOK {
		h.log.Info("forward-auth path refused", "path", o.path, "reason", d.reason)
		msg := "This address is not valid."
		if d.encodedSlash {
			msg = "Encoded slashes are not allowed in this address."
		}
		h.apiError(w, http.StatusBadRequest, "invalid_request", msg)
		return
	}
	rt := d.route
	if rt == nil {
		h.apiError(w, http.StatusForbidden, "no_route", "No route covers this address.")
		return
	}
	decoded, _ := url.PathUnescape(o.path) // choose has checked every escape
	orig.URL = &url.URL{Path: decoded, RawPath: o.path, RawQuery: o.query}
	// An address that has used up its denials (server.rate_limits.
	// forward_auth_denials) is refused before anything is checked: no
	// session lookup, no token introspection.
	addr := ratelimit.Address(r)
	if d := h.limits.Check(r.Context(), rt.app.name, ratelimit.Peek(ratelimit.ForwardAuthDenials, addr)); !d.Allowed {
		ratelimit.WriteJSON(w, d)
		return
	}
	h.answerForwardAuth(w, orig, rt, o.target, h.authenticate(orig, rt), !o.redirectOff)
}

// original is the request a front proxy asks about.
type original struct {
	method, host string
	// target is the original request target, still escaped, exactly as
	// the client sent it; path and query are its two halves.
	target, path, query string
	// redirectOff: the auth endpoint's own query asked for 401s rather
	// than redirects (?redirect=0, for nginx's auth_request).
	redirectOff bool
	// envoy: asked the Envoy ext_authz way.
	envoy bool
}

// mode names how the front proxy asked, for the request metrics: envoy
// (ext_authz), headers (X-Forwarded-*: nginx, Traefik, Caddy) or
// headers_no_redirect (?redirect=0).
func (o original) mode() string {
	switch {
	case o.envoy:
		return "envoy"
	case o.redirectOff:
		return "headers_no_redirect"
	}
	return "headers"
}

// readOriginal reads the original request once, from the bytes the front
// proxy sent, in the shape each one sends it:
//
//   - nginx auth_request, Traefik ForwardAuth and Caddy forward_auth:
//     X-Forwarded-Method, X-Forwarded-Host and X-Forwarded-Uri, the last
//     being the original request target, escaped ($request_uri in nginx,
//     Go's URL.RequestURI() in Traefik and Caddy);
//   - Envoy ext_authz: the original method and Host, and a request line of
//     path_prefix followed by the original :path, escaped.
//
// The target is never decoded here: choose reads the escaped path, as the
// built-in proxy does. (Decoding it and parsing the result again, as this
// code once did for Envoy, made "/x%3F/../admin" the path "/x" with a
// query, while the upstream serves /admin.)
func readOriginal(r *http.Request) (original, error) {
	var o original
	if strings.HasPrefix(r.URL.Path, envoyPrefix+"/") || r.URL.Path == envoyPrefix {
		raw := r.RequestURI
		rest, ok := strings.CutPrefix(raw, envoyPrefix)
		if !ok || rest != "" && rest[0] != '/' && rest[0] != '?' {
			// "/.aero2/forward-auth/%65nvoy/…" or an absolute URI: not
			// what Envoy sends.
			return o, errors.New("the Envoy request line must be path_prefix followed by the original path")
		}
		if rest == "" || rest[0] == '?' {
			rest = "/" + rest
		}
		o.method, o.host, o.target, o.envoy = r.Method, r.Host, rest, true
	} else {
		var err error
		if o.method, err = single(r, "X-Forwarded-Method"); err != nil {
			return o, err
		}
		if o.host, err = single(r, "X-Forwarded-Host"); err != nil {
			return o, err
		}
		if o.target, err = single(r, "X-Forwarded-Uri"); err != nil {
			return o, err
		}
		if o.host == "" || o.target == "" {
			return o, errors.New("X-Forwarded-Host and X-Forwarded-Uri are required")
		}
		// The endpoint's own query; Envoy's is the original request's.
		o.redirectOff = r.URL.Query().Get("redirect") == "0"
	}
	if o.method == "" {
		o.method = http.MethodGet
	}
	if !validMethod(o.method) {
		return o, errors.New("X-Forwarded-Method is not a method")
	}
	o.path, o.query, _ = strings.Cut(o.target, "?")
	if !strings.HasPrefix(o.path, "/") {
		return o, errors.New("X-Forwarded-Uri must be a path, as the client sent it")
	}
	for i := 0; i < len(o.query); i++ {
		if c := o.query[i]; c <= ' ' || c == 0x7f {
			return o, errors.New("the query is not valid")
		}
	}
	return o, nil
}

// single returns the one value of a header: a second one would mean a
// client's copy got through next to the front proxy's.
func single(r *http.Request, name string) (string, error) {
	vs := r.Header.Values(name)
	if len(vs) > 1 {
		return "", errors.New(name + " must be sent once")
	}
	if len(vs) == 0 {
		return "", nil
	}
	return vs[0], nil
}

// validMethod reports an RFC 9110 token.
func validMethod(m string) bool {
	for i := 0; i < len(m); i++ {
		c := m[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return m != ""
}
