package authz

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/aero2/aero2/audit"
	"github.com/aero2/aero2/session"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/web"
)

// consentTTL is how long a remembered consent lasts.
const consentTTL = 365 * 24 * time.Hour

// consentKey names the set of scopes a user granted a client
// (store.ConsentKey: stores that keep consents as rows parse it).
func consentKey(userID, clientID string) string { return store.ConsentKey(userID, clientID) }

// consentsKey indexes the clients a user has consented to, for the
// account page's list of applications with access.
func consentsKey(userID string) string { return "authz:consents:" + userID }

func consentPurpose(pendingID string) string { return "consent " + pendingID }

// Consent is a client the user allowed, with the scopes it was allowed.
type Consent struct {
	ClientID string
	// Client is the client's name, as the consent page showed it.
	Client string
	// Scopes describe what the client may see, for people.
	Scopes []string
}

// Consents lists the clients the user has allowed (remembered consents),
// by name. A client that has left the configuration is not listed: its
// tokens are worthless already.
func (p *Provider) Consents(ctx context.Context, userID string) ([]Consent, error) {
	ids, err := p.st.SetMembers(ctx, consentsKey(userID))
	if err != nil {
		return nil, err
	}
	var out []Consent
	for _, id := range ids {
		c := p.clients.get(id)
		if c == nil {
			continue
		}
		scopes, err := p.st.SetMembers(ctx, consentKey(userID, id))
		if err != nil {
			return nil, err
		}
		if len(scopes) == 0 {
			continue // expired, or removed half-way: nothing is remembered
		}
		sort.Strings(scopes)
		var lines []string
		for _, l := range scopeLines(scopes) {
			lines = append(lines, l.Description)
		}
		out = append(out, Consent{ClientID: id, Client: c.Name, Scopes: lines})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Client < out[j].Client })
	return out, nil
}

// RemoveConsent forgets that the user allowed the client and revokes
// every token the client holds for the user: its next authorization
// request asks the user again. Removing a consent that does not exist is
// not an error.
//
// The order is what keeps it whole. Tokens are revoked before the consent
// is forgotten, so a failure leaves the client listed and the user can
// try again; they are revoked once more after, for a code issued by a
// request that read the consent just before it was forgotten; the index
// entry goes last, so that nothing is unlisted while it still has access.
func (p *Provider) RemoveConsent(ctx context.Context, userID, clientID string) error {
	if err := p.tokens.RevokeUserClient(ctx, userID, clientID); err != nil {
		return err
	}
	// A set is emptied, not deleted: Delete is for records (the memory
	// store keeps sets apart).
	key := consentKey(userID, clientID)
	scopes, err := p.st.SetMembers(ctx, key)
	if err != nil {
		return err
	}
	if len(scopes) > 0 {
		if err := p.st.SetRemove(ctx, key, scopes...); err != nil {
			return err
		}
	}
	if err := p.tokens.RevokeUserClient(ctx, userID, clientID); err != nil {
		return err
	}
	if err := p.st.SetRemove(ctx, consentsKey(userID), clientID); err != nil {
		return err
	}
	p.log.Info("consent removed", "user", userID, "client", clientID)
	return nil
}

// hasConsent reports whether the user granted the client every scope asked.
func (p *Provider) hasConsent(ctx context.Context, userID, clientID string, scopes []string) (bool, error) {
	granted, err := p.st.SetMembers(ctx, consentKey(userID, clientID))
	if err != nil {
		return false, err
	}
	have := map[string]bool{}
	for _, s := range granted {
		have[s] = true
	}
	for _, s := range scopes {
		if !have[s] {
			return false, nil
		}
	}
	return true, nil
}

type scopeLine struct{ Name, Description string }

var scopeDescriptions = map[string]string{
	"openid":         "Sign you in with your account",
	"profile":        "Your name, username and picture",
	"email":          "Your email address",
	"groups":         "The groups you belong to",
	"offline_access": "Stay connected when you are not using it",
}

// scopeLines describe scopes to the user (the consent and device pages).
func scopeLines(scopes []string) []scopeLine {
	var lines []scopeLine
	for _, s := range scopes {
		d, ok := scopeDescriptions[s]
		if !ok {
			d = "Permission “" + s + "”"
		}
		lines = append(lines, scopeLine{s, d})
	}
	return lines
}

func (p *Provider) renderConsent(w http.ResponseWriter, sess *store.Session, user *store.User, c *Client, scopes []string, pendingID string) {
	lines := scopeLines(scopes)
	web.Render(w, http.StatusOK, "consent", web.Page{Title: "Allow access?", AppName: p.opts.DisplayName, Data: struct {
		Client     string
		User       *store.User
		Scopes     []scopeLine
		Action     string
		Request    string
		CSRF       string
		AccountURL string
	}{c.Name, user, lines, p.url("/oauth2/consent"), pendingID, p.opts.Sessions.CSRFToken(sess, consentPurpose(pendingID)), p.url("/account")}})
}

// consent receives the consent page's decision. The CSRF token is bound to
// the browser session and to this one parked request, so a forged or
// replayed form cannot grant anything.
func (p *Provider) consent(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	if err := r.ParseForm(); err != nil {
		p.page(w, http.StatusBadRequest, "Bad request", "The form could not be read.", "invalid_request")
		return
	}
	sess, user, err := p.opts.Sessions.CurrentUser(r)
	if errors.Is(err, session.ErrNoSession) {
		p.page(w, http.StatusBadRequest, "Signed out", "You are no longer signed in. Go back to the application and start again.", "login_required")
		return
	}
	if err != nil {
		p.pageFailure(w, r, err)
		return
	}
	id := r.PostForm.Get("request")
	if !p.opts.Sessions.VerifyCSRF(sess, consentPurpose(id), r.PostForm.Get("csrf")) {
		p.page(w, http.StatusForbidden, "Request refused", "The form was not sent by this page. Go back to the application and start again.", "invalid_request")
		return
	}
	pr, err := p.loadPending(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		p.page(w, http.StatusBadRequest, "Sign-in expired", "This request took too long or was already completed. Go back to the application and start again.", "invalid_request")
		return
	}
	if err != nil {
		p.pageFailure(w, r, err)
		return
	}
	ar, err := p.parseAuthorize(r, pr.Params)
	if err != nil {
		p.authorizeError(w, r, ar, err)
		return
	}
	if r.PostForm.Get("decision") != "allow" {
		_ = p.st.Delete(r.Context(), pendingKey(id))
		p.authorizeError(w, r, ar, fosite.ErrAccessDenied.WithHint("The user declined."))
		return
	}
	client := ar.GetClient().(*Client)
	// The index first: a consent the account page cannot list is one the
	// user cannot remove.
	if err := p.st.SetAdd(r.Context(), consentsKey(user.ID), consentTTL, client.GetID()); err != nil {
		p.pageFailure(w, r, err)
		return
	}
	if err := p.st.SetAdd(r.Context(), consentKey(user.ID, client.GetID()), consentTTL, ar.GetRequestedScopes()...); err != nil {
		p.pageFailure(w, r, err)
		return
	}
	audit.Log(r.Context(), p.opts.Audit, audit.Event{Type: audit.ConsentGiven, App: p.app, User: user.ID, Client: client.GetID()})
	p.finishAuthorize(w, r, ar, sess, user, pr.Started, id)
}

// ConsentRecord is what one user allowed one client, as the store holds
// it (`aero2 consents list`).
type ConsentRecord struct {
	App      string   `json:"app"`
	UserID   string   `json:"user_id"`
	ClientID string   `json:"client_id"`
	Scopes   []string `json:"scopes"`
}

// ConsentStore is what listing every user's consents needs.
type ConsentStore interface {
	store.Sets
	SetKeys(ctx context.Context, app, prefix string) ([]string, error)
}

// parseConsentKey reverses consentKey.
func parseConsentKey(key string) (userID, clientID string, ok bool) {
	rest, ok := strings.CutPrefix(key, "authz:consent:")
	if !ok {
		return "", "", false
	}
	n, rest, ok := strings.Cut(rest, ":")
	l, err := strconv.Atoi(n)
	if !ok || err != nil || l < 0 || len(rest) < l+1 || rest[l] != ':' {
		return "", "", false
	}
	return rest[:l], rest[l+1:], true
}

// ListConsents lists the consents given in app: userID's, or everyone's
// when userID is "". Unlike Provider.Consents (the account page's), it
// names the scopes, and clients that left the configuration too.
func ListConsents(ctx context.Context, st ConsentStore, app, userID string) ([]ConsentRecord, error) {
	prefix := "authz:consent:"
	if userID != "" {
		prefix = consentKey(userID, "")
	}
	keys, err := st.SetKeys(ctx, app, prefix)
	if err != nil {
		return nil, err
	}
	var out []ConsentRecord
	for _, k := range keys {
		uid, cid, ok := parseConsentKey(k)
		if !ok {
			continue
		}
		scopes, err := st.SetMembers(ctx, app, k)
		if err != nil {
			return nil, err
		}
		if len(scopes) == 0 {
			continue // removed since the listing
		}
		slices.Sort(scopes)
		out = append(out, ConsentRecord{App: app, UserID: uid, ClientID: cid, Scopes: scopes})
	}
	slices.SortFunc(out, func(a, b ConsentRecord) int {
		return cmp.Or(cmp.Compare(a.UserID, b.UserID), cmp.Compare(a.ClientID, b.ClientID))
	})
	return out, nil
}
