package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/aero2/aero2/audit"
	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/dpop"
	"github.com/aero2/aero2/ratelimit"
	"github.com/aero2/aero2/reqlog"
	"github.com/aero2/aero2/session"
	"github.com/aero2/aero2/store"
)

// Authentication is decided once, by authenticate, and answered by one
// writer per mode, as Caddy's Authenticate returns a result that its
// handler chain answers: answerProxy for requests the built-in proxy
// serves, answerForwardAuth for another proxy's question (with or without
// redirects). The decision never writes; the writers never decide.

// verdict is what authenticate decided about a request.
type verdict int

const (
	// verdictAdmitted: the route's policy admits the request. The
	// decision holds who it comes from (nil on a public route) and the
	// credentials the route sends upstream.
	verdictAdmitted verdict = iota
	// verdictSignIn: nobody is signed in — no credentials, a proxy
	// session that ended, or one whose tokens the provider no longer
	// refreshes. The answer is the same in every mode: sign in again.
	verdictSignIn
	// verdictDenied: who the request comes from is known, and the
	// route's policy does not admit them.
	verdictDenied
	// verdictTokenInvalid: a bearer token that is not valid here
	// (malformed, foreign, expired, revoked, not an access token).
	verdictTokenInvalid
	// verdictSessionEnded: a valid bearer token whose provider session
	// (its sid) has ended.
	verdictSessionEnded
	// verdictUnavailable: the store or the provider could not be asked.
	verdictUnavailable
)

var verdictNames = [...]string{"admitted", "sign-in", "denied", "token-invalid", "session-ended", "unavailable"}

func (v verdict) String() string {
	if int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return fmt.Sprintf("verdict(%d)", int(v))
}

// decision is authenticate's answer about one request.
type decision struct {
	verdict verdict
	id      *Identity // who, when known (admitted or denied)
	live    *live     // the proxy session, when the cookie admitted
	token   string    // its cookie token
	bearer  bool      // the request carried an access token (Authorization: Bearer or DPoP)
	// dpop, for a token refused for how it was presented, is the DPoP
	// challenge's error code.
	dpop string
	// accessToken and assertion are what an admitted request carries
	// upstream, when the route sends them.
	accessToken, assertion string
	// err says why, for the log: the failure (unavailable), or why a
	// token was refused.
	err error
}

func refused(v verdict, err error) decision { return decision{verdict: v, err: err} }

// authenticate decides whether r may use rt, and gets what an admitted
// request carries upstream. It writes nothing.
func (h *Handler) authenticate(r *http.Request, rt *Route) decision {
	if rt.policy.Public {
		return decision{verdict: verdictAdmitted}
	}
	ctx := r.Context()
	var d decision
	if scheme, token := dpop.ParseAuthorization(r.Header.Get("Authorization")); token != "" {
		id, err := rt.app.provider.VerifyAccessToken(ctx, token)
		if errors.Is(err, ErrInvalidToken) {
			d := refused(verdictTokenInvalid, err)
			if scheme == dpop.Scheme {
				d.dpop = "invalid_token"
			}
			return d
		}
		if err != nil {
			return refused(verdictUnavailable, err)
		}
		var de *errDPoP
		if err := rt.checkDPoP(r, scheme, token, id); errors.As(err, &de) {
			d := refused(verdictTokenInvalid, err)
			d.dpop = de.code
			return d
		} else if err != nil {
			return refused(verdictUnavailable, err)
		}
		if rt.app.sessions.alive != nil && id.SessionID != "" {
			ok, err := rt.app.sessions.providerAlive(ctx, id.SessionID)
			if err != nil {
				return refused(verdictUnavailable, err)
			}
			if !ok {
				return refused(verdictSessionEnded, errors.New("the token's provider session has ended"))
			}
		}
		d.id, d.bearer = id, true
	} else if c, err := r.Cookie(session.CookieName(rt.app.cookie, rt.app.secure, "/")); err == nil {
		// A session serves the origin it was created for only: a cookie
		// carried to another host, even one of the same application,
		// admits nobody there.
		l, err := rt.app.sessions.load(ctx, c.Value, rt.origin(config.NormalizeHost(r.Host)))
		switch {
		case err == nil:
			// The cached record's own: records are never changed once
			// made (a refresh makes a new one), and a copy was an
			// allocation per request.
			d.id, d.live, d.token = &l.rec.Identity, l, c.Value
		case !errors.Is(err, errNoSession):
			return refused(verdictUnavailable, err)
		}
	}
	if d.id == nil {
		return refused(verdictSignIn, nil)
	}
	// For the access log. A client's own token (client credentials) has
	// the client as its subject, and no user.
	client, _ := d.id.Claims["client_id"].(string)
	if d.bearer {
		reqlog.SetClient(ctx, client)
	}
	if !d.bearer || d.id.Subject != client {
		reqlog.SetUser(ctx, d.id.Subject)
	}
	if !rt.policy.Allows(d.id) {
		d.verdict = verdictDenied
		return d
	}
	var err error
	d.accessToken, d.assertion, err = h.credentials(r, rt, &d)
	switch {
	case errors.Is(err, errNoSession):
		// The provider refused to refresh the session's tokens: the
		// session is over, whatever mode asks.
		return refused(verdictSignIn, err)
	case err != nil:
		return refused(verdictUnavailable, err)
	}
	return d
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

// answerProxy is the built-in proxy's answer: an admitted request goes
// upstream; a browser that must sign in goes to the provider, and is
// brought back to the same URL; scripts get 401, and pages or JSON say
// the rest.
func (h *Handler) answerProxy(w http.ResponseWriter, r *http.Request, rt *Route, d decision) {
	if d.verdict == verdictAdmitted {
		h.forward(w, r, rt, d)
		return
	}
	var signIn func()
	if wantsRedirect(r) {
		signIn = func() {
			h.startSignIn(w, r, rt.app, rt.origin(config.NormalizeHost(r.Host)), returnPath(r.URL.RequestURI()))
		}
	}
	h.refuse(w, r, rt, d, wantsHTML(r), signIn)
}

// answerForwardAuth is forward-auth's answer about orig, the request as
// the client sent it to the proxy in front: 200 with the identity headers
// when admitted (every one of h.family, empty when unknown, and the
// client's Cookie header without Aero2's cookies). A browser that must sign in is sent to /.aero2/start on
// the application's host (which the proxy in front routes to Aero2) and
// back to target — unless redirects is false (?redirect=0, for nginx,
// whose auth_request takes only 2xx, 401 and 403), which answers 401 and
// JSON only.
//
// Every answer but 200 counts against the client address's forward-auth
// denials (server.rate_limits.forward_auth_denials), which forwardAuth
// checks before asking anything.
func (h *Handler) answerForwardAuth(w http.ResponseWriter, orig *http.Request, rt *Route, target string, d decision, redirects bool) {
	if d.verdict == verdictAdmitted {
		// Every name of the family, empty unless set below: the front
		// proxy replaces the client's copies with these.
		hd := w.Header()
		for _, n := range h.family {
			hd[n] = []string{""}
		}
		rt.headers.write(hd, &d)
		hd["Cookie"] = []string{h.cookies.without(orig.Header)}
		w.WriteHeader(http.StatusOK)
		return
	}
	h.limits.Allow(context.WithoutCancel(orig.Context()), rt.app.name, ratelimit.ForwardAuthDenials, ratelimit.Address(orig))
	var signIn func()
	if redirects && wantsRedirect(orig) {
		signIn = func() {
			// The sign-in runs on the application's host, which the proxy
			// in front routes /.aero2/ to Aero2 for.
			http.Redirect(w, orig, rt.origin(config.NormalizeHost(orig.Host))+startPath+"?rd="+url.QueryEscape(returnPath(target)), http.StatusFound)
		}
	}
	h.refuse(w, orig, rt, d, redirects && wantsHTML(orig), signIn)
}

// refuse answers what authenticate did not admit. pages chooses HTML
// pages over JSON; signIn, when set, sends a browser to sign in (else
// 401 with a Bearer challenge, RFC 6750 §3).
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, rt *Route, d decision, pages bool, signIn func()) {
	switch d.verdict {
	case verdictSignIn:
		if d.err != nil {
			h.log.Info("proxy session over", "route", rt.name, "err", d.err)
		}
		if signIn != nil {
			signIn()
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="aero2"`)
		h.apiError(w, http.StatusUnauthorized, "unauthorized", "Sign-in required.")
	case verdictTokenInvalid, verdictSessionEnded:
		h.log.Info("bearer token refused", "route", rt.name, "err", d.err)
		if d.dpop == "invalid_dpop_proof" {
			w.Header().Set("WWW-Authenticate", dpopChallenge(d.dpop))
			h.apiError(w, http.StatusUnauthorized, d.dpop, "The DPoP proof is missing or not valid for this request and token.")
			return
		}
		if d.dpop != "" {
			w.Header().Set("WWW-Authenticate", dpopChallenge(d.dpop))
		} else {
			w.Header().Set("WWW-Authenticate", `Bearer realm="aero2", error="invalid_token"`)
		}
		msg := "The access token is not valid here."
		if d.verdict == verdictSessionEnded {
			msg = "The session this token belongs to has ended."
		}
		h.apiError(w, http.StatusUnauthorized, "invalid_token", msg)
	case verdictDenied:
		h.log.Info("access denied", "route", rt.name, "sub", d.id.Subject, "bearer", d.bearer)
		audit.Log(r.Context(), h.audit, audit.Event{Type: audit.PolicyDenied, App: rt.app.name, Route: rt.name, User: d.id.Subject, Client: d.id.Client})
		if d.bearer {
			// RFC 6750 §3.1: a valid token without the privileges.
			w.Header().Set("WWW-Authenticate", `Bearer realm="aero2", error="insufficient_scope"`)
		}
		h.forbidden(w, r, d.id, pages)
	default: // verdictUnavailable
		h.cannotCheck(w, r, d.err, pages)
	}
}

// unavailable answers a failure to ask the store or the provider: 503,
// never the error itself; a page for browsers.
func (h *Handler) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	h.cannotCheck(w, r, err, wantsHTML(r))
}

func (h *Handler) cannotCheck(w http.ResponseWriter, r *http.Request, err error, page bool) {
	if errors.Is(err, context.Canceled) {
		return
	}
	h.log.Warn("proxy cannot check the session", "path", r.URL.Path, "err", err, "store_unavailable", errors.Is(err, store.ErrUnavailable))
	errCannotCheck.Write(w, "", page)
}
