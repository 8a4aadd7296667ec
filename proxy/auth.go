package proxy

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/reqlog"
	"github.com/aero2/aero2/session"
	"github.com/aero2/aero2/store"
)

// authResult is who a request comes from, once admitted.
type authResult struct {
	id     *Identity // nil on public routes
	live   *live     // the proxy session, when the cookie admitted
	token  string    // its cookie token
	bearer bool      // admitted by an Authorization: Bearer token
}

// authorize decides whether r may use rt. When it may not, authorize has
// answered: 401 (with WWW-Authenticate) or a redirect to sign in for the
// unauthenticated, 403 for the denied, 503 when the store or the provider
// cannot be asked. target is the request URI to return to after sign-in;
// forwardAuth makes unauthenticated browsers go through /.aero2/start.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request, rt *Route, target string, forwardAuth bool) (*authResult, bool) {
	if rt.policy.Public {
		return &authResult{}, true
	}
	ctx := r.Context()
	res := &authResult{}
	if token, ok := bearerToken(r); ok {
		id, err := rt.app.provider.VerifyAccessToken(ctx, token)
		if errors.Is(err, ErrInvalidToken) {
			h.log.Info("bearer token refused", "route", rt.name, "err", err)
			w.Header().Set("WWW-Authenticate", `Bearer realm="aero2", error="invalid_token"`)
			h.apiError(w, http.StatusUnauthorized, "invalid_token", "The access token is not valid here.")
			return nil, false
		}
		if err != nil {
			h.unavailable(w, r, err)
			return nil, false
		}
		if alive := rt.app.sessions.alive; alive != nil && id.SessionID != "" {
			if ok, err := alive.Alive(ctx, id.SessionID); err != nil {
				h.unavailable(w, r, err)
				return nil, false
			} else if !ok {
				w.Header().Set("WWW-Authenticate", `Bearer realm="aero2", error="invalid_token"`)
				h.apiError(w, http.StatusUnauthorized, "invalid_token", "The session this token belongs to has ended.")
				return nil, false
			}
		}
		res.id, res.bearer = id, true
	} else if c, err := r.Cookie(session.CookieName(rt.app.cookie, rt.app.secure, "/")); err == nil {
		// A session serves the origin it was created for only: a cookie
		// carried to another host, even one of the same application,
		// admits nobody there.
		l, err := rt.app.sessions.load(ctx, c.Value, rt.origin(config.NormalizeHost(r.Host)))
		switch {
		case err == nil:
			id := l.rec.Identity
			res.id, res.live, res.token = &id, l, c.Value
		case !errors.Is(err, errNoSession):
			h.unavailable(w, r, err)
			return nil, false
		}
	}
	if res.id == nil {
		h.challenge(w, r, rt, target, forwardAuth)
		return nil, false
	}
	// For the access log. A client's own token (client credentials) has
	// the client as its subject, and no user.
	client, _ := res.id.Claims["client_id"].(string)
	if res.bearer {
		reqlog.SetClient(ctx, client)
	}
	if !res.bearer || res.id.Subject != client {
		reqlog.SetUser(ctx, res.id.Subject)
	}
	if !rt.policy.Allows(res.id) {
		h.log.Info("access denied", "route", rt.name, "sub", res.id.Subject)
		h.forbidden(w, r, res.id)
		return nil, false
	}
	return res, true
}

// bearerToken returns the token of an "Authorization: Bearer" header
// (RFC 6750 §2.1; the scheme is case-insensitive).
func bearerToken(r *http.Request) (string, bool) {
	v := r.Header.Get("Authorization")
	if len(v) < 7 || !strings.EqualFold(v[:7], "bearer ") {
		return "", false
	}
	t := strings.TrimSpace(v[7:])
	return t, t != ""
}

// wantsRedirect tells a browser navigation, which is sent to sign in, from
// an API call or script, which gets 401: only GET navigations can come
// back to where they were after the round trip through the provider.
func wantsRedirect(r *http.Request) bool {
	if r.Method != http.MethodGet || r.Header.Get("X-Requested-With") != "" {
		return false
	}
	if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		return false
	}
	accept := r.Header.Get("Accept")
	return !strings.Contains(accept, "application/json") || strings.Contains(accept, "text/html")
}

// challenge answers an unauthenticated request.
func (h *Handler) challenge(w http.ResponseWriter, r *http.Request, rt *Route, target string, forwardAuth bool) {
	target = returnPath(target)
	if !wantsRedirect(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="aero2"`)
		h.apiError(w, http.StatusUnauthorized, "unauthorized", "Sign-in required.")
		return
	}
	if forwardAuth {
		// The sign-in runs on the application's host, which the proxy in
		// front routes /.aero2/ to Aero2 for.
		http.Redirect(w, r, rt.origin(config.NormalizeHost(r.Host))+startPath+"?rd="+url.QueryEscape(target), http.StatusFound)
		return
	}
	h.startSignIn(w, r, rt.app, rt.origin(config.NormalizeHost(r.Host)), target)
}

// unavailable answers a failure to ask the store or the provider: 503,
// never the error itself.
func (h *Handler) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	h.log.Warn("proxy cannot check the session", "path", r.URL.Path, "err", err, "store_unavailable", errors.Is(err, store.ErrUnavailable))
	w.Header().Set("Retry-After", "5")
	if !wantsHTML(r) {
		h.apiError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "Aero2 cannot check the session right now.")
		return
	}
	h.page(w, r, http.StatusServiceUnavailable, "Temporarily unavailable", "Aero2 cannot check your session right now. Please try again in a few seconds.")
}
