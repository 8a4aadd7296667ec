package federation

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"time"

	"github.com/aero2/aero2/audit"
	"github.com/aero2/aero2/session"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/web"
)

// csrfPurpose names the account page's forms in their CSRF tokens.
const csrfPurpose = "account"

// Consents are what the provider remembers a user allowed. federation
// does not import the provider: the server adapts it to this.
type Consents interface {
	// Consents lists the clients the user has allowed.
	Consents(ctx context.Context, userID string) ([]Consent, error)
	// RemoveConsent forgets the user's consent to the client and revokes
	// the tokens the client holds for the user. Removing an absent
	// consent is not an error.
	RemoveConsent(ctx context.Context, userID, clientID string) error
}

// Consent is a client the user allowed.
type Consent struct {
	ClientID string
	// Client is the client's display name.
	Client string
	// Scopes describe, for people, what the client was allowed.
	Scopes []string
}

// identityRow is a linked identity with its provider's display name.
type identityRow struct {
	*store.Identity
	Provider string
}

type sessionRow struct {
	// Handle is the session's store ID (a hash of its cookie token): it
	// names the session in the form without being usable as a cookie.
	Handle   string
	Started  time.Time
	LastSeen time.Time
	// IDP is the identity provider's display name.
	IDP string
	IP  string
	// Browser names the session's browser for people ("Chrome on
	// macOS"), from its User-Agent header.
	Browser string
	Current bool
}

// SignOutLabel is the session's sign-out button, which says which
// session it ends (to people and to screen readers alike).
func (r sessionRow) SignOutLabel() string {
	return "Sign out this session: " + r.Browser + ", signed in " + r.Started.Format(timeFormat)
}

// timeFormat is how the account page shows times.
const timeFormat = "2 Jan 2006, 15:04 MST"

// providerName is an identity provider's display name (its id when it
// has left the configuration).
func (h *Handler) providerName(id string) string {
	if p, ok := h.providers[id]; ok && p.Name != "" {
		return p.Name
	}
	return id
}

// account shows who is signed in, with their identities and sessions.
func (h *Handler) account(w http.ResponseWriter, r *http.Request) {
	s, u, err := h.opts.Sessions.CurrentUser(r)
	if errors.Is(err, session.ErrNoSession) {
		http.Redirect(w, r, h.LoginURL(h.URL("/account")), http.StatusFound)
		return
	}
	if err != nil {
		h.storeFailure(w, r, err)
		return
	}
	ctx := r.Context()
	idents, err := h.opts.Store.Identities(ctx, u.ID)
	if err != nil {
		h.storeFailure(w, r, err)
		return
	}
	sort.Slice(idents, func(i, j int) bool { return idents[i].LinkedAt.Before(idents[j].LinkedAt) })
	identRows := make([]identityRow, 0, len(idents))
	for _, x := range idents {
		identRows = append(identRows, identityRow{Identity: x, Provider: h.providerName(x.IDP)})
	}
	sessions, err := h.opts.Store.UserSessions(ctx, u.ID)
	if err != nil {
		h.storeFailure(w, r, err)
		return
	}
	rows := make([]sessionRow, 0, len(sessions))
	for _, x := range sessions {
		rows = append(rows, sessionRow{Handle: x.ID, Started: x.CreatedAt, LastSeen: x.LastSeen, IDP: h.providerName(x.IDP), IP: x.IP, Browser: describeAgent(x.UserAgent), Current: x.ID == s.ID})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].LastSeen.After(rows[j].LastSeen) })
	var consents []Consent
	if h.opts.Consents != nil {
		if consents, err = h.opts.Consents.Consents(ctx, u.ID); err != nil {
			h.storeFailure(w, r, err)
			return
		}
	}
	notice := ""
	switch r.URL.Query().Get("ended") {
	case "1":
		notice = "The session was signed out."
	case "all":
		notice = "Every other session was signed out."
	}
	if r.URL.Query().Get("removed") == "1" {
		notice = "The application's access was removed. It will ask you again before it can use your account."
	}
	web.Render(w, http.StatusOK, "account", web.Page{Title: "Your account", AppName: h.appName, Data: struct {
		User          *store.User
		Session       *store.Session
		SignedInWith  string
		TimeFormat    string
		Identities    []identityRow
		Sessions      []sessionRow
		Consents      []Consent
		CSRF          string
		LogoutURL     string
		EndSessionURL string
		RemoveURL     string
		Notice        string
	}{u, s, h.providerName(s.IDP), timeFormat, identRows, rows, consents, h.opts.Sessions.CSRFToken(s, csrfPurpose), h.URL("/logout"), h.URL("/account/sessions/end"), h.URL("/account/consents/remove"), notice}})
}

// formSession parses a bounded form and returns the session after checking
// its CSRF token. It has answered the request when ok is false.
func (h *Handler) formSession(w http.ResponseWriter, r *http.Request) (*store.Session, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		h.fail(w, http.StatusBadRequest, "Bad request", "The form could not be read.", "invalid_request", false)
		return nil, false
	}
	s, err := h.opts.Sessions.Current(r)
	if errors.Is(err, session.ErrNoSession) {
		http.Redirect(w, r, h.URL("/login"), http.StatusSeeOther)
		return nil, false
	}
	if err != nil {
		h.storeFailure(w, r, err)
		return nil, false
	}
	if !h.opts.Sessions.VerifyCSRF(s, csrfPurpose, r.PostForm.Get("csrf")) {
		h.fail(w, http.StatusForbidden, "Request refused", "This form has expired or did not come from Aero2. Reload the page and try again.", "invalid_csrf", false)
		return nil, false
	}
	return s, true
}

// logout ends this session, or every session of the user with
// everywhere=1. The session manager ends them, and with them what the
// provider issued in them.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	s, ok := h.formSession(w, r)
	if !ok {
		return
	}
	n := 1
	if r.PostForm.Get("everywhere") == "1" {
		var err error
		if n, err = h.opts.Sessions.EndAll(r.Context(), s.UserID); err != nil {
			h.storeFailure(w, r, err)
			return
		}
	}
	if err := h.opts.Sessions.End(w, r); err != nil {
		h.storeFailure(w, r, err)
		return
	}
	h.log.Info("signed out", "user", s.UserID, "sessions", n)
	http.Redirect(w, r, h.URL("/login?signed_out=1"), http.StatusSeeOther)
}

// endSession ends one of the user's other sessions (session=<handle>), or
// all of them (others=1), from the account page.
func (h *Handler) endSession(w http.ResponseWriter, r *http.Request) {
	s, ok := h.formSession(w, r)
	if !ok {
		return
	}
	if r.PostForm.Get("others") == "1" {
		n, err := h.opts.Sessions.EndOthers(r.Context(), s)
		if err != nil {
			h.storeFailure(w, r, err)
			return
		}
		h.log.Info("other sessions ended from the account page", "user", s.UserID, "sessions", n)
		http.Redirect(w, r, h.URL("/account?ended=all"), http.StatusSeeOther)
		return
	}
	target := r.PostForm.Get("session")
	if target == "" || len(target) > 128 {
		h.fail(w, http.StatusBadRequest, "Bad request", "No session was chosen.", "invalid_request", false)
		return
	}
	if target == s.ID {
		// This browser's own session: the sign-out button ends it with
		// its cookie; here it would leave a dead cookie behind.
		http.Redirect(w, r, h.URL("/account"), http.StatusSeeOther)
		return
	}
	// Only the user's own sessions: a handle of someone else's session
	// must not end it, nor reveal whether it exists (both are
	// ErrNoSession, and get the same answer).
	err := h.opts.Sessions.EndOther(r.Context(), s, target)
	if err != nil && !errors.Is(err, session.ErrNoSession) {
		h.storeFailure(w, r, err)
		return
	}
	if err == nil {
		h.log.Info("session ended from the account page", "user", s.UserID)
	}
	http.Redirect(w, r, h.URL("/account?ended=1"), http.StatusSeeOther)
}

// removeConsent removes an application's access (client=<id>) from the
// account page: the user's own consent only, since the user is the
// session's; a client never allowed, or unknown, changes nothing.
func (h *Handler) removeConsent(w http.ResponseWriter, r *http.Request) {
	s, ok := h.formSession(w, r)
	if !ok {
		return
	}
	client := r.PostForm.Get("client")
	if client == "" || len(client) > 256 || h.opts.Consents == nil {
		h.fail(w, http.StatusBadRequest, "Bad request", "No application was chosen.", "invalid_request", false)
		return
	}
	if err := h.opts.Consents.RemoveConsent(r.Context(), s.UserID, client); err != nil {
		h.storeFailure(w, r, err)
		return
	}
	audit.Log(r.Context(), h.opts.Audit, audit.Event{Type: audit.ConsentRemoved, App: h.app, User: s.UserID, Client: client})
	http.Redirect(w, r, h.URL("/account?removed=1"), http.StatusSeeOther)
}
