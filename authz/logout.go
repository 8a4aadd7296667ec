package authz

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"

	fjwt "github.com/ory/fosite/token/jwt"

	"github.com/aero2/aero2/session"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/web"
)

const logoutPurpose = "logout"

// idTokenHint is what logout needs from an id_token_hint.
type idTokenHint struct {
	Subject string
	SID     string
	Aud     []string
}

// verifyIDTokenHint checks that hint is an ID token this provider signed.
// An expired one is accepted (OIDC RP-Initiated Logout §2: the RP may hold
// only an expired token), a forged, foreign or access token is not.
func (p *Provider) verifyIDTokenHint(ctx context.Context, hint string) (*idTokenHint, error) {
	t, err := p.signer.Decode(ctx, hint)
	var ve *fjwt.ValidationError
	if err != nil && !(errors.As(err, &ve) && ve.Errors == fjwt.ValidationErrorExpired) {
		return nil, err // the expired case is reached only after the signature verified
	}
	if typ, _ := t.Header["typ"].(string); typ == AccessTokenType {
		return nil, errors.New("an access token is not an ID token")
	}
	if iss, _ := t.Claims["iss"].(string); iss != p.issuer {
		return nil, errors.New("issued by someone else")
	}
	h := &idTokenHint{}
	h.Subject, _ = t.Claims["sub"].(string)
	h.SID, _ = t.Claims["sid"].(string)
	switch aud := t.Claims["aud"].(type) {
	case string:
		h.Aud = []string{aud}
	case []any:
		for _, a := range aud {
			if s, ok := a.(string); ok {
				h.Aud = append(h.Aud, s)
			}
		}
	}
	if h.Subject == "" || len(h.Aud) == 0 {
		return nil, errors.New("no subject or audience")
	}
	return h, nil
}

// hintNames reports whether the hint's subject is userID as the hint's
// client sees it (its pairwise subject, for a pairwise client).
func (p *Provider) hintNames(h *idTokenHint, userID string) bool {
	for _, aud := range h.Aud {
		if c := p.clients.get(aud); c != nil && c.subjects.subject(userID) == h.Subject {
			return true
		}
	}
	return false
}

type hiddenField struct{ Name, Value string }

// logout is RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0).
// It ends the browser session, and with it the tokens issued in it, then
// returns to the client's post_logout_redirect_uri — only one registered
// for that client, compared exactly — with state.
//
// Without a valid id_token_hint for the signed-in user, the user is asked
// to confirm: a page any site can link to must not sign people out (or
// bounce them to a client's URI) on its own.
func (p *Provider) logout(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var params url.Values
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		if err := r.ParseForm(); err != nil {
			p.page(w, http.StatusBadRequest, "Sign-out refused", "The request could not be read.", "invalid_request")
			return
		}
		params = r.PostForm
	} else {
		var err error
		if params, err = url.ParseQuery(r.URL.RawQuery); err != nil || len(r.URL.RawQuery) > maxQueryBytes {
			p.page(w, http.StatusBadRequest, "Sign-out refused", "The request could not be read.", "invalid_request")
			return
		}
	}
	refuse := func(msg string) {
		p.page(w, http.StatusBadRequest, "Sign-out refused", msg, "invalid_request")
	}

	var hint *idTokenHint
	if raw := params.Get("id_token_hint"); raw != "" {
		h, err := p.verifyIDTokenHint(ctx, raw)
		if err != nil {
			refuse("The id_token_hint is not an ID token issued here.")
			return
		}
		hint = h
	}
	clientID := params.Get("client_id")
	if hint != nil {
		if clientID != "" && !slices.Contains(hint.Aud, clientID) {
			refuse("The client_id does not match the id_token_hint.")
			return
		}
		if clientID == "" && len(hint.Aud) == 1 {
			clientID = hint.Aud[0]
		}
	}
	var client *Client
	if clientID != "" {
		if client = p.clients.get(clientID); client == nil {
			refuse("Unknown client.")
			return
		}
	}
	target := params.Get("post_logout_redirect_uri")
	if target != "" {
		if client == nil {
			refuse("post_logout_redirect_uri needs an id_token_hint or client_id naming the client.")
			return
		}
		if !slices.Contains(client.PostLogoutRedirectURIs, target) {
			refuse("The post_logout_redirect_uri is not registered for this client.")
			return
		}
	}

	cur, err := p.opts.Sessions.Current(r)
	if errors.Is(err, session.ErrNoSession) {
		cur = nil
	} else if err != nil {
		p.pageFailure(w, r, err)
		return
	}
	hintMatches := hint != nil && (cur == nil || cur.ID == hint.SID || p.hintNames(hint, cur.UserID))
	confirmed := r.Method == http.MethodPost && cur != nil && params.Get("confirm") == "yes" &&
		p.opts.Sessions.VerifyCSRF(cur, logoutPurpose, params.Get("csrf"))
	if cur != nil && !hintMatches && !confirmed {
		p.renderLogoutConfirm(w, cur, client, params)
		return
	}

	// The session manager ends sessions, and its end hook (RevokeSessions)
	// revokes what was issued in them. The RP's own session (the hint's
	// sid) may be one this browser no longer carries — it timed out, or
	// lives in another browser of the user: it ends too, and its tokens
	// with it.
	if hint != nil && hint.SID != "" && (cur == nil || hint.SID != cur.ID) {
		if err := p.opts.Sessions.EndSession(ctx, hint.Subject, hint.SID); err != nil {
			p.pageFailure(w, r, err)
			return
		}
	}
	if cur != nil {
		if err := p.opts.Sessions.End(w, r); err != nil {
			p.pageFailure(w, r, err)
			return
		}
	}

	if target != "" {
		u, _ := url.Parse(target) // registered, so it parses
		if st := params.Get("state"); st != "" {
			q := u.Query()
			q.Set("state", st)
			u.RawQuery = q.Encode()
		}
		noStore(w)
		http.Redirect(w, r, u.String(), http.StatusSeeOther)
		return
	}
	web.SignedOut(w, p.opts.DisplayName, p.opts.LoginURL(p.url("/account")))
}

func (p *Provider) renderLogoutConfirm(w http.ResponseWriter, cur *store.Session, client *Client, params url.Values) {
	var fields []hiddenField
	for _, k := range []string{"id_token_hint", "client_id", "post_logout_redirect_uri", "state"} {
		if v := params.Get(k); v != "" {
			fields = append(fields, hiddenField{k, v})
		}
	}
	name := ""
	if client != nil {
		name = client.Name
	}
	web.Render(w, http.StatusOK, "logout", web.Page{Title: "Sign out?", AppName: p.opts.DisplayName, Data: struct {
		Client string
		App    string
		Action string
		Fields []hiddenField
		CSRF   string
	}{name, p.opts.DisplayName, p.url("/oauth2/logout"), fields, p.opts.Sessions.CSRFToken(cur, logoutPurpose)}})
}
