package federation

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/aero2/aero2/audit"
	"github.com/aero2/aero2/ratelimit"
	"github.com/aero2/aero2/reqlog"
	"github.com/aero2/aero2/session"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/web"
)

// StateTTL is how long a sign-in may take from /rp/authorize to the
// callback.
const StateTTL = 10 * time.Minute

// maxFormBytes bounds the forms Aero2's pages post.
const maxFormBytes = 16 << 10

// Store is what a Handler keeps for its one application: login state
// (created once, taken once), users with their linked identities, and the
// sessions the account page lists. Name is the application's name.
type Store interface {
	Name() string
	Create(ctx context.Context, key string, value []byte, ttl time.Duration) error
	Take(ctx context.Context, key string) ([]byte, error)
	store.AppUsers
	UserSessions(ctx context.Context, userID string) ([]*store.Session, error)
}

// Options configure a Handler.
type Options struct {
	// Issuer is the application's base URL.
	Issuer string
	// DisplayName is the application's name on pages (its
	// display_name); empty means App.
	DisplayName string
	// AutoRedirect sends the sign-in page straight to the one identity
	// provider (auto_redirect).
	AutoRedirect bool
	// Store holds login state, users and sessions: the application's
	// handle (store.ForApp), so nothing here can name another
	// application's records.
	Store Store
	// Sessions reads and writes the application's browser sessions.
	Sessions *session.Manager
	// Providers are the opened identity providers, in login-page order.
	Providers []Provider
	// GroupsMaxAge is how long after its last sign-in a linked identity's
	// groups still count among the user's: the application's
	// session.absolute_timeout, as long as a session started there could
	// have relied on them. 0 counts only the identity signing in.
	GroupsMaxAge time.Duration
	// Redirects decides where the browser may go after signing in.
	Redirects *Redirects
	// StateCookie is the base name of the cookie binding a sign-in to the
	// browser; Secure and CookiePath (the application's base path, bound
	// into the name: session.CookieName) as the session cookie's.
	StateCookie string
	Secure      bool
	CookiePath  string
	Logger      *slog.Logger
	// Consents are the applications users have allowed, which the
	// account page lists and removes: the provider's, wired by the
	// server. nil lists none.
	Consents Consents
	// Limits are the rate limits (server.rate_limits); nil limits nothing.
	Limits *ratelimit.Limiter
	// Audit records sign-ins and account links; nil records nothing.
	Audit audit.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Handler serves the sign-in pages and the /rp/* flow of one application.
type Handler struct {
	opts      Options
	app       string // the application's name, its store handle's
	appName   string // shown on pages
	providers map[string]Provider
	stateName string
	csrf      *http.CrossOriginProtection
	log       *slog.Logger
}

// New returns the application's handler.
func New(opts Options) *Handler {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.StateCookie == "" {
		opts.StateCookie = "aero2_login"
	}
	if opts.CookiePath == "" {
		opts.CookiePath = "/"
	}
	h := &Handler{
		opts:      opts,
		app:       opts.Store.Name(),
		appName:   opts.DisplayName,
		providers: map[string]Provider{},
		stateName: session.CookieName(opts.StateCookie, opts.Secure, opts.CookiePath),
		csrf:      http.NewCrossOriginProtection(),
		log:       opts.Logger.With("app", opts.Store.Name()),
	}
	if h.appName == "" {
		h.appName = h.app
	}
	for _, p := range opts.Providers {
		h.providers[p.ID] = p
	}
	return h
}

// Register adds the handler's routes to mux. Paths are relative to the
// application's base URL (the server strips a path issuer's prefix).
func (h *Handler) Register(mux *http.ServeMux) {
	// Each endpoint names its kind for the request metrics (reqlog).
	handle := func(pattern, kind string, hd http.Handler) { mux.Handle(pattern, reqlog.Endpoint(kind, hd)) }
	handle("GET /{$}", "account", http.HandlerFunc(h.home))
	handle("GET /login", "login", http.HandlerFunc(h.login))
	handle("GET /rp/authorize", "sign_in", h.withIDP(h.limitAddress(ratelimit.SignIn, http.HandlerFunc(h.authorize)), func(r *http.Request) string { return r.URL.Query().Get("idp") }))
	handle("GET /rp/callback/{idp}", "sign_in_callback", h.withIDP(h.limitAddress(ratelimit.Callback, http.HandlerFunc(h.callback)), func(r *http.Request) string { return r.PathValue("idp") }))
	handle("POST /logout", "logout", h.csrf.Handler(http.HandlerFunc(h.logout)))
	handle("GET /account", "account", http.HandlerFunc(h.account))
	handle("POST /account/sessions/end", "account", h.csrf.Handler(http.HandlerFunc(h.endSession)))
	handle("POST /account/consents/remove", "account", h.csrf.Handler(http.HandlerFunc(h.removeConsent)))
	for id, p := range h.providers {
		if hc, ok := p.Connector.(HTTPConnector); ok {
			prefix := "/rp/idp/" + id
			// A provider's own pages (the dev login) start sign-ins with
			// their POSTs.
			handle(prefix+"/", "sign_in", http.StripPrefix(prefix, h.csrf.Handler(h.limitPosts(ratelimit.SignIn, hc.Handler()))))
		}
	}
}

// withIDP refines the request's kind with the identity provider it names,
// when that is one of the application's: a client can name any, and only
// configured ones may become metric labels.
func (h *Handler) withIDP(next http.Handler, idp func(*http.Request) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id := idp(r); id != "" {
			if _, ok := h.providers[id]; ok {
				reqlog.SetDetail(r.Context(), id)
			}
		}
		next.ServeHTTP(w, r)
	})
}

// URL makes an absolute URL of a path under the application.
func (h *Handler) URL(path string) string { return h.opts.Issuer + path }

// LoginURL is the sign-in page that returns to returnTo afterwards.
func (h *Handler) LoginURL(returnTo string) string {
	return h.URL("/login?" + url.Values{"return_to": {returnTo}}.Encode())
}

func (h *Handler) home(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, h.URL("/account"), http.StatusFound)
}

type providerLink struct{ Name, URL string }

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	returnTo := r.URL.Query().Get("return_to")
	if returnTo == "" {
		returnTo = h.URL("/account")
	}
	if !h.opts.Redirects.Allowed(returnTo) {
		h.fail(w, http.StatusBadRequest, "Sign-in refused", "The page asked to return to an address this application does not allow.", "invalid_redirect", false)
		return
	}
	var links []providerLink
	for _, p := range h.opts.Providers {
		links = append(links, providerLink{p.Name, h.URL("/rp/authorize?" + url.Values{"idp": {p.ID}, "redirect_uri": {returnTo}}.Encode())})
	}
	if r.URL.Query().Get("signed_out") == "1" {
		// Where signing out ends: the one signed-out page. Its link
		// signs in again, to the same place; never by itself, which with
		// auto_redirect would sign the user straight back in wherever the
		// provider still has a session.
		web.SignedOut(w, h.appName, h.LoginURL(returnTo))
		return
	}
	// auto_redirect: no choice to make.
	if h.opts.AutoRedirect && len(links) == 1 {
		http.Redirect(w, r, links[0].URL, http.StatusFound)
		return
	}
	web.Render(w, http.StatusOK, "login", web.Page{Title: "Sign in", AppName: h.appName, Data: struct{ Providers []providerLink }{links}})
}

// fail renders an error page. startAgain offers a link back to sign-in.
func (h *Handler) fail(w http.ResponseWriter, status int, title, msg, code string, startAgain bool) {
	d := web.ErrorData{Message: msg, Code: code}
	if startAgain {
		d.Back = h.URL("/login")
	}
	web.Error(w, status, h.appName, title, d)
}

// signInFailed records a refused or failed sign-in at idp ("" before the
// answer's provider is known to be one of the application's). reason is
// one of Aero2's words (docs/audit.md), never the provider's text.
func (h *Handler) signInFailed(r *http.Request, idp, reason string) {
	audit.Log(r.Context(), h.opts.Audit, audit.Event{Type: audit.SignInFailed, App: h.app, IDP: idp, Reason: reason})
}

// storeFailure answers an error from the store: 503 when the store is
// unreachable (the client may retry), 500 otherwise. The error is logged,
// never shown.
func (h *Handler) storeFailure(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, store.ErrUnavailable) {
		h.log.Warn("store unavailable", "path", r.URL.Path, "err", err)
		web.StoreUnavailable.WritePage(w, h.appName)
		return
	}
	h.log.Error("request failed", "path", r.URL.Path, "err", err)
	web.InternalError.WithBack(h.URL("/login"), "").WritePage(w, h.appName)
}

func (h *Handler) now() time.Time { return h.opts.Now() }

// limitAddress spends one request of limit per client address, and
// answers 429 when the address is over it.
func (h *Handler) limitAddress(name ratelimit.Name, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !h.allow(w, r, name, ratelimit.Address(r)) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

// limitPosts is limitAddress for requests other than GET and HEAD.
func (h *Handler) limitPosts(name ratelimit.Name, next http.Handler) http.Handler {
	limited := h.limitAddress(name, next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		limited.ServeHTTP(w, r)
	})
}

// allow spends one request of limit for each key; it has answered 429
// when it returns false.
func (h *Handler) allow(w http.ResponseWriter, r *http.Request, name ratelimit.Name, keys ...ratelimit.Key) bool {
	d := h.opts.Limits.Allow(r.Context(), h.app, name, keys...)
	if !d.Allowed {
		ratelimit.WritePage(w, h.appName, d)
	}
	return d.Allowed
}
