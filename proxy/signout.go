package proxy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"sort"
	"strings"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/reqlog"
	"github.com/aero2/aero2/session"
	"github.com/aero2/aero2/web"
)

// endpoints are the proxy's own paths under config.ReservedPrefix (but
// forward-auth) and the methods each answers. HEAD is not among them: a
// callback or handoff is single-use, and a HEAD must not spend one.
var endpoints = map[string]string{
	callbackPath: "GET", handoffPath: "GET", startPath: "GET",
	signOutPath: "GET, POST", signedOutPath: "GET",
	backchannelPath: "POST",
}

// IsEndpoint reports whether p is one of the proxy's own endpoints.
func IsEndpoint(p string) bool {
	_, ok := endpoints[p]
	return ok || IsForwardAuth(p)
}

// IsForwardAuth reports whether p is the forward-auth endpoint (or its
// Envoy form). It answers on any host — the proxy in front picks the Host
// of its own request — but only to trusted peers, and it judges the host
// they forward by the same rules as every request.
func IsForwardAuth(p string) bool {
	return p == forwardAuthPfx || strings.HasPrefix(p, forwardAuthPfx+"/")
}

// Misdirected answers a request for a host the configuration does not
// name: 421 Misdirected Request (RFC 9110 §15.5.20), the server is not
// one that answers for this address. Nothing there signs anyone in.
func Misdirected(w http.ResponseWriter, r *http.Request) {
	web.Error(w, http.StatusMisdirectedRequest, "", "Misdirected request", web.ErrorData{Message: "This server is not configured to answer for this address."})
}

// ServeReserved answers the proxy's own paths under config.ReservedPrefix:
// its endpoints (405 with Allow for a method they do not answer), the
// static assets, and 404 for the rest.
func (h *Handler) ServeReserved(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	reqlog.SetKind(r.Context(), "proxy_sign_in", "") // forward-auth names itself below
	if allow, ok := endpoints[p]; ok && !strings.Contains(", "+allow+", ", ", "+r.Method+", ") {
		w.Header().Set("Allow", allow)
		h.problem(w, r, errMethodNotAllowed)
		return
	}
	switch {
	case p == callbackPath:
		h.callback(w, r)
	case p == handoffPath:
		h.handoff(w, r)
	case p == startPath:
		h.start(w, r)
	case p == signOutPath && r.Method == http.MethodGet:
		h.signOutPage(w, r)
	case p == signOutPath:
		h.cop.Handler(http.HandlerFunc(h.signOut)).ServeHTTP(w, r)
	case p == backchannelPath:
		// Not behind CrossOriginProtection: the provider POSTs from its
		// server, and the logout token, not the origin, authenticates.
		h.backchannelLogout(w, r)
	case p == signedOutPath:
		// "/" leads on: the host's start page signs in again.
		web.SignedOut(w, "", "/")
	case IsForwardAuth(p):
		h.forwardAuth(w, r)
	case strings.HasPrefix(p, web.StaticPrefix):
		web.Static().ServeHTTP(w, r)
	default:
		h.problem(w, r, web.NotFound)
	}
}

// browserSessions are the proxy session cookies this request carries, one
// per application at most.
func (h *Handler) browserSessions(r *http.Request) map[*appProxy]string {
	out := map[*appProxy]string{}
	for _, ap := range h.order {
		if c, err := r.Cookie(session.CookieName(ap.cookie, ap.secure, "/")); err == nil {
			out[ap] = c.Value
		}
	}
	return out
}

// csrfToken binds the sign-out form to this browser's sessions on this
// host: an HMAC of the host and the session IDs.
func (h *Handler) csrfToken(r *http.Request) string {
	var ids []string
	for _, token := range h.browserSessions(r) {
		ids = append(ids, hash(token))
	}
	sort.Strings(ids)
	m := hmac.New(sha256.New, h.csrfKey)
	m.Write([]byte("aero2 proxy sign-out\x00" + config.NormalizeHost(r.Host) + "\x00" + strings.Join(ids, ",")))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (h *Handler) signOutPage(w http.ResponseWriter, r *http.Request) {
	user := ""
	for ap, token := range h.browserSessions(r) {
		if l, err := ap.sessions.load(r.Context(), token, ap.origin(config.NormalizeHost(r.Host))); err == nil {
			user = l.rec.Identity.Display()
		}
	}
	if user == "" {
		web.SignedOut(w, "", "/")
		return
	}
	web.Render(w, http.StatusOK, "signout", web.Page{Title: "Sign out", Data: struct {
		User       string
		SignOutURL string
		CSRF       string
	}{user, signOutPath, h.csrfToken(r)}})
}

// signOut ends this browser's proxy sessions on this host and sends it to
// the provider's logout (RP-initiated logout), which ends the provider
// session, and with it every proxy session on every host. At Aero2's own
// provider the provider session is ended here first, with what was issued
// in it: a browser that does not follow the redirect is signed out all
// the same, and the provider's logout, finding no session left to end,
// needs no id_token_hint (the record keeps none there, keepIDToken).
func (h *Handler) signOut(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		h.problem(w, r, errBadRequest.With("The form could not be read."))
		return
	}
	if !hmac.Equal([]byte(r.PostForm.Get("csrf")), []byte(h.csrfToken(r))) {
		h.problem(w, r, errFormRefused)
		return
	}
	logout := ""
	for ap, token := range h.browserSessions(r) {
		rec, err := ap.sessions.stored(r.Context(), token)
		if err == nil {
			err = ap.sessions.endProviderSession(r.Context(), rec)
		}
		if err == nil {
			err = ap.sessions.end(r.Context(), token)
		}
		if err != nil {
			h.unavailable(w, r, err)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: session.CookieName(ap.cookie, ap.secure, "/"), Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: ap.secure, SameSite: http.SameSiteLaxMode})
		if rec != nil && logout == "" {
			u, err := ap.provider.LogoutURL(r.Context(), rec.IDToken, ap.signedOutURL)
			if err != nil {
				h.log.Warn("provider logout unavailable", "app", ap.name, "err", err)
			}
			logout = u
			h.log.Info("proxy sign-out", "app", ap.name, "sub", rec.Identity.Subject)
		}
	}
	if logout == "" {
		logout = signedOutPath
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, logout, http.StatusSeeOther)
}
