package proxy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"sort"
	"strings"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/session"
	"github.com/aero2/aero2/web"
)

// serveReserved dispatches the proxy's own endpoints.
func (h *Handler) serveReserved(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == callbackPath && r.Method == http.MethodGet:
		h.callback(w, r)
	case p == handoffPath && r.Method == http.MethodGet:
		h.handoff(w, r)
	case p == startPath && r.Method == http.MethodGet:
		h.start(w, r)
	case p == signOutPath && r.Method == http.MethodGet:
		h.signOutPage(w, r)
	case p == signOutPath && r.Method == http.MethodPost:
		h.cop.Handler(http.HandlerFunc(h.signOut)).ServeHTTP(w, r)
	case p == signedOutPath && r.Method == http.MethodGet:
		web.Render(w, http.StatusOK, "signout", web.Page{Title: "Signed out", Data: struct{ SignedIn bool }{false}})
	case p == forwardAuthPfx || strings.HasPrefix(p, forwardAuthPfx+"/"):
		h.forwardAuth(w, r)
	case strings.HasPrefix(p, web.StaticPrefix):
		web.Static().ServeHTTP(w, r)
	default:
		h.page(w, r, http.StatusNotFound, "Not found", "Nothing is served at this address.")
	}
}

// browserSessions are the proxy session cookies this request carries, one
// per application at most.
func (h *Handler) browserSessions(r *http.Request) map[*appProxy]string {
	out := map[*appProxy]string{}
	secure := h.secure(r)
	for _, ap := range h.order {
		if c, err := r.Cookie(session.CookieName(ap.cookie, secure, "/")); err == nil {
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
		if l, err := ap.sessions.load(r.Context(), token); err == nil {
			user = l.rec.Identity.Display()
		}
	}
	web.Render(w, http.StatusOK, "signout", web.Page{Title: "Sign out", Data: struct {
		SignedIn   bool
		User       string
		SignOutURL string
		CSRF       string
	}{user != "", user, signOutPath, h.csrfToken(r)}})
}

// signOut ends this browser's proxy sessions on this host and sends it to
// the provider's logout (RP-initiated logout), which ends the provider
// session, and with it every proxy session on every host.
func (h *Handler) signOut(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		h.page(w, r, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return
	}
	if !hmac.Equal([]byte(r.PostForm.Get("csrf")), []byte(h.csrfToken(r))) {
		h.page(w, r, http.StatusForbidden, "Request refused", "This form has expired or did not come from this site. Reload the page and try again.")
		return
	}
	secure := h.secure(r)
	logout := ""
	for ap, token := range h.browserSessions(r) {
		rec, err := ap.sessions.end(r.Context(), token)
		if err != nil {
			h.unavailable(w, r, err)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: session.CookieName(ap.cookie, secure, "/"), Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode})
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
