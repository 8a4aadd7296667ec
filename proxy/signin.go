package proxy

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/ratelimit"
	"github.com/aero2/aero2/reqlog"
	"github.com/aero2/aero2/safeurl"
	"github.com/aero2/aero2/session"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/web"
)

// Reserved endpoints, under config.ReservedPrefix on every host.
const (
	callbackPath   = "/.aero2/callback"
	handoffPath    = "/.aero2/handoff"
	startPath      = "/.aero2/start"
	signOutPath    = "/.aero2/sign_out"
	signedOutPath  = "/.aero2/signed_out"
	forwardAuthPfx = "/.aero2/forward-auth"
)

// stateTTL is how long a sign-in may take; handoffTTL how long the
// browser has to carry the result from the callback to the route's host.
const (
	stateTTL   = 10 * time.Minute
	handoffTTL = time.Minute
)

// A sign-in crosses hosts. It starts on the route's host R, which sets a
// binding cookie (host-only, on R). The provider answers at the
// application's own origin (callbackURL), which exchanges the code and
// keeps the tokens under a one-time handoff code. The browser carries that
// code back to R, where the handoff takes it (atomically), checks it was
// issued for R and for the browser holding R's binding cookie, and only
// then creates the session and sets R's session cookie. A handoff link
// sent to someone else is worthless: their browser lacks the binding.

// signInState is kept under "proxy-state:<state>" until the callback takes
// it (atomically: a replayed callback finds nothing).
type signInState struct {
	Origin   string `json:"origin"` // scheme://host of R
	ReturnTo string `json:"return_to"`
	Binding  string `json:"binding"` // SHA-256 of R's binding cookie
	Nonce    string `json:"nonce"`
	Verifier string `json:"verifier"`
}

// handoffState is kept under "proxy-handoff:<code>" for handoffTTL, sealed
// with the code (it carries tokens).
type handoffState struct {
	Origin   string  `json:"origin"`
	ReturnTo string  `json:"return_to"`
	Binding  string  `json:"binding"`
	Tokens   *Tokens `json:"tokens"`
}

func stateKey(state string) string  { return "proxy-state:" + state }
func handoffKey(code string) string { return "proxy-handoff:" + code }

func random32() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// startSignIn sends a browser to the provider. origin is where the
// sign-in comes back to (Route.origin: derived from the configuration,
// never from the request) and returnTo a path there (checked by the
// caller).
func (h *Handler) startSignIn(w http.ResponseWriter, r *http.Request, ap *appProxy, origin, returnTo string) {
	if origin == "" {
		// Unreachable: the server answers 421 for a host no route
		// serves. Refuse rather than store an origin nobody configured.
		Misdirected(w, r)
		return
	}
	secure := ap.secure
	bindName := session.CookieName(ap.loginCookie, secure, "/")
	// One binding per browser serves every sign-in under way, so two tabs
	// do not overwrite each other's.
	binding := ""
	if c, err := r.Cookie(bindName); err == nil && len(c.Value) == 43 {
		binding = c.Value
	} else {
		binding = random32()
	}
	// The application's name leads the state, so the callback (one URL
	// for every application on the host) knows whose it is.
	state := ap.name + "." + random32()
	st := signInState{
		Origin: origin, ReturnTo: returnTo, Binding: hash(binding),
		Nonce: random32(), Verifier: random32() + random32()[:21], // 64 characters (RFC 7636 §4.1: 43-128)
	}
	// Anyone can make the proxy keep a state: how many one address may is
	// limited, and each is small (returnPath, and a bounded Host). Checked
	// before the provider is asked: with PAR, asking stores the request
	// there too.
	if !h.allow(w, r, ap.name, ratelimit.AnonymousState, ratelimit.Address(r)) {
		return
	}
	target, err := ap.provider.AuthCodeURL(r.Context(), AuthRequest{RedirectURI: ap.callbackURL, State: state, Nonce: st.Nonce, Verifier: st.Verifier})
	if errors.Is(err, ErrProviderUnavailable) {
		h.unavailable(w, r, err)
		return
	}
	if err != nil {
		h.log.Error("sign-in provider unusable", "app", ap.name, "err", err)
		h.problem(w, r, errSignInUnavailable)
		return
	}
	val, _ := json.Marshal(st)
	if err := ap.sessions.records.Create(r.Context(), stateKey(state), val, stateTTL); err != nil {
		h.unavailable(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: bindName, Value: binding, Path: "/", MaxAge: int(stateTTL.Seconds()),
		HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode,
	})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target, http.StatusFound)
}

// start is GET /.aero2/start?rd=/path: sign in, then go to rd on this
// host. Forward-auth sends browsers here.
func (h *Handler) start(w http.ResponseWriter, r *http.Request) {
	rd := r.URL.Query().Get("rd")
	if rd == "" {
		rd = "/"
	}
	if !safeurl.LocalPath(rd) {
		h.problem(w, r, errSignInRefused)
		return
	}
	u, _ := url.Parse(rd)
	host := config.NormalizeHost(r.Host)
	d := h.table.choose(host, u.EscapedPath())
	if d.verdict != pathOK {
		h.problem(w, r, errSignInRefused)
		return
	}
	rt := d.route
	if rt == nil {
		h.problem(w, r, web.NotFound)
		return
	}
	h.startSignIn(w, r, rt.app, rt.origin(host), u.RequestURI())
}

// callback is GET /.aero2/callback?code&state on the application's own
// origin: the provider's answer. It redeems the code and hands the tokens
// to the route's host (see handoffState).
func (h *Handler) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state := q.Get("state")
	appName, _, _ := strings.Cut(state, ".")
	ap, ok := h.apps[appName]
	if !ok || len(state) > 256 || config.NormalizeHost(r.Host) != ap.issuerHost {
		// The callback is on the application's own origin only (the one
		// redirect URI the provider knows).
		h.signInFailed(w, r, http.StatusBadRequest, "This sign-in was not started here, or took too long. Please try again.")
		return
	}
	if !h.allow(w, r, ap.name, ratelimit.Callback, ratelimit.Address(r)) {
		return
	}
	ctx := r.Context()
	raw, ok := h.takeOnce(w, r, ap, stateKey(state))
	if !ok {
		return
	}
	var st signInState
	if err := json.Unmarshal(raw, &st); err != nil {
		h.unavailable(w, r, err)
		return
	}
	// RFC 9207: when the provider names itself, it must be ours (mix-up).
	if iss := q.Get("iss"); q.Has("iss") && iss != ap.issuer {
		h.log.Warn("callback from another issuer", "app", ap.name, "iss", iss)
		h.signInFailedAt(w, r, http.StatusBadRequest, "The answer came from another sign-in service than the one this sign-in started with.", ap.restart(st.Origin, st.ReturnTo))
		return
	}
	if e := q.Get("error"); e != "" {
		h.log.Info("provider refused sign-in", "app", ap.name, "error", e)
		h.signInFailedAt(w, r, http.StatusForbidden, "The sign-in was cancelled or refused.", ap.restart(st.Origin, st.ReturnTo))
		return
	}
	tokens, err := ap.provider.Exchange(ctx, AuthRequest{RedirectURI: ap.callbackURL, State: state, Nonce: st.Nonce, Verifier: st.Verifier}, q.Get("code"))
	if err != nil {
		h.log.Warn("sign-in failed", "app", ap.name, "err", err)
		h.signInFailedAt(w, r, http.StatusBadGateway, "Aero2 could not complete the sign-in. Please try again.", ap.restart(st.Origin, st.ReturnTo))
		return
	}
	if tokens.Identity.Subject == "" {
		h.signInFailedAt(w, r, http.StatusBadGateway, "The sign-in service did not say who you are.", ap.restart(st.Origin, st.ReturnTo))
		return
	}
	// The browser carries a code that signs it in: only ever to an origin
	// the configuration names (st.Origin was derived from it; check it
	// again here, where the code leaves).
	if st.Origin == "" || ap.origin(hostOf(st.Origin)) != st.Origin {
		h.log.Error("sign-in state names an origin this application does not serve", "app", ap.name, "origin", st.Origin)
		h.signInFailed(w, r, http.StatusBadRequest, "This sign-in was started on an address this site does not serve. Please try again.")
		return
	}
	code := random32()
	val, err := sealJSON("handoff", code, handoffState{Origin: st.Origin, ReturnTo: st.ReturnTo, Binding: st.Binding, Tokens: tokens})
	if err != nil {
		h.unavailable(w, r, err)
		return
	}
	if err := ap.sessions.records.Create(ctx, handoffKey(code), val, handoffTTL); err != nil {
		h.unavailable(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	// The application's name leads the code, as it leads the state.
	http.Redirect(w, r, st.Origin+handoffPath+"?"+url.Values{"code": {ap.name + "." + code}}.Encode(), http.StatusFound)
}

// handoff is GET /.aero2/handoff?code on the route's host: it turns the
// tokens the callback kept into a session of this browser on this host.
func (h *Handler) handoff(w http.ResponseWriter, r *http.Request) {
	appName, code, _ := strings.Cut(r.URL.Query().Get("code"), ".")
	ap, ok := h.apps[appName]
	if !ok || len(code) != 43 {
		h.signInFailed(w, r, http.StatusBadRequest, "This sign-in link is not valid. Please try again.")
		return
	}
	secure := ap.secure
	c, cerr := r.Cookie(session.CookieName(ap.loginCookie, secure, "/"))
	if cerr != nil {
		h.signInFailed(w, r, http.StatusBadRequest, "This sign-in was not started in this browser, or took too long. Please try again.")
		return
	}
	ctx := r.Context()
	raw, ok := h.takeOnce(w, r, ap, handoffKey(code))
	if !ok {
		return
	}
	var hs handoffState
	if err := unsealJSON("handoff", code, raw, &hs); err != nil || hs.Tokens == nil {
		h.unavailable(w, r, fmt.Errorf("handoff record: %v", err))
		return
	}
	// Only on the host that started it; ap.origin is "" on a host the
	// application does not serve.
	if origin := ap.origin(config.NormalizeHost(r.Host)); origin == "" || hs.Origin != origin {
		h.signInFailed(w, r, http.StatusBadRequest, "This sign-in was started on another site. Please try again.")
		return
	}
	if subtle.ConstantTimeCompare([]byte(hash(c.Value)), []byte(hs.Binding)) != 1 {
		h.signInFailedAt(w, r, http.StatusBadRequest, "This sign-in was not started in this browser. Please try again.", ap.restart(hs.Origin, hs.ReturnTo))
		return
	}
	name := session.CookieName(ap.cookie, secure, "/")
	// A new sign-in always gets a new session (no fixation); the old one
	// ends.
	if old, err := r.Cookie(name); err == nil {
		if err := ap.sessions.end(ctx, old.Value); err != nil {
			h.unavailable(w, r, err)
			return
		}
	}
	token, l, err := ap.sessions.create(ctx, hs.Tokens, hs.Origin)
	if err != nil {
		h.unavailable(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: token, Path: "/", Expires: l.rec.ExpiresAt,
		HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode,
	})
	h.log.Info("proxy sign-in", "app", ap.name, "sub", hs.Tokens.Identity.Subject)
	reqlog.SetUser(ctx, hs.Tokens.Identity.Subject)
	target := hs.ReturnTo
	if !safeurl.LocalPath(target) {
		target = "/"
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target, http.StatusFound)
}

// takeOnce takes a single-use record (atomically: a replay, even one racing
// the first use, finds nothing). It has answered the request when ok is
// false.
func (h *Handler) takeOnce(w http.ResponseWriter, r *http.Request, ap *appProxy, key string) ([]byte, bool) {
	raw, err := ap.sessions.records.Take(r.Context(), key)
	if errors.Is(err, store.ErrNotFound) {
		h.signInFailed(w, r, http.StatusBadRequest, "This sign-in link was already used or has expired. Please try again.")
		return nil, false
	}
	if err != nil {
		h.unavailable(w, r, err)
		return nil, false
	}
	return raw, true
}

// signInFailed answers a sign-in that cannot finish, with a "Start
// again" link to the host's start page.
func (h *Handler) signInFailed(w http.ResponseWriter, r *http.Request, status int, msg string) {
	h.signInFailedAt(w, r, status, msg, "/")
}

// signInFailedAt is signInFailed with "Start again" leading to again.
func (h *Handler) signInFailedAt(w http.ResponseWriter, r *http.Request, status int, msg, again string) {
	h.problem(w, r, withStatus(errSignInFailed, status).With(msg).WithBack(again, "Start again"))
}

// restart is where "Start again" leads once a sign-in's own record is
// read: a new sign-in to the page it was for, on the host it started on
// (the origin is checked to be one the application serves, as where the
// sign-in's code goes); "/" otherwise.
func (ap *appProxy) restart(origin, returnTo string) string {
	if origin == "" || ap.origin(hostOf(origin)) != origin || !safeurl.LocalPath(returnTo) {
		return "/"
	}
	return origin + startPath + "?" + url.Values{"rd": {returnTo}}.Encode()
}

// origin is the application's origin on a normalised host, or "" when
// none of its routes serves the host.
func (ap *appProxy) origin(host string) string {
	for _, rt := range ap.routes {
		if rt.Serves(host) {
			return ap.scheme + "://" + host
		}
	}
	return ""
}

// hostOf is the normalised host of an origin.
func hostOf(origin string) string {
	_, host, _ := strings.Cut(origin, "://")
	return config.NormalizeHost(host)
}

// originOf is scheme://host of an absolute URL.
func originOf(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("not an absolute URL: %q", raw)
	}
	return u.Scheme + "://" + u.Host, nil
}
