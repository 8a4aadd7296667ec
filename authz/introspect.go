package authz

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/ory/fosite"

	"github.com/aero2/aero2/audit"
	"github.com/aero2/aero2/authz/oauthstore"
	"github.com/aero2/aero2/dpop"
	"github.com/aero2/aero2/ratelimit"
	"github.com/aero2/aero2/reqlog"
)

// authenticateClient authenticates a confidential client by
// client_secret_basic, client_secret_post or private_key_jwt. Public
// clients cannot authenticate, so they cannot introspect.
func (p *Provider) authenticateClient(w http.ResponseWriter, r *http.Request) (fosite.Client, bool) {
	c, err := p.oauth.AuthenticateClient(withClientAuth(r.Context()), r, r.PostForm)
	if err == nil && c.IsPublic() {
		err = fosite.ErrInvalidClient.WithHint("A public client cannot authenticate.")
	}
	if err != nil {
		p.clientAuthError(w, r, err)
		return nil, false
	}
	return c, true
}

// clientAuthError answers a failed client authentication: 401
// invalid_client with fosite's hint (which names what was wrong, never a
// secret) — missing credentials too (RFC 6749 §5.2) —, 400 for a request
// with two methods, 503 when the store is down.
func (p *Provider) clientAuthError(w http.ResponseWriter, r *http.Request, err error) {
	if isUnavailable(err) {
		p.unavailable(w, r, err)
		return
	}
	rfc := fosite.ErrorToRFC6749Error(err)
	if rfc.HintField == hintMultipleAuthMethods {
		writeJSONError(w, http.StatusBadRequest, "invalid_request", rfc.GetDescription())
		return
	}
	desc := "Client authentication failed."
	if rfc.ErrorField == fosite.ErrInvalidClient.ErrorField && rfc.HintField != "" {
		desc += " " + rfc.HintField
	}
	w.Header().Set("WWW-Authenticate", `Basic realm="`+p.issuer+`"`)
	writeJSONError(w, http.StatusUnauthorized, "invalid_client", desc)
}

// introspect is RFC 7662 token introspection. Only authenticated
// confidential clients may ask; an unknown, expired, revoked or forged
// token is {"active": false} and nothing more (§2.2), and so is a token the
// caller has no business with (§4, see mayIntrospect).
func (p *Provider) introspect(w http.ResponseWriter, r *http.Request) {
	caller, ok := p.authenticateClient(w, r)
	if ok {
		reqlog.SetClient(r.Context(), caller.GetID())
	}
	if !ok || !p.limitClient(w, r, ratelimit.Introspect, caller.GetID()) {
		return
	}
	tok := r.PostForm.Get("token")
	if tok == "" {
		writeJSONError(w, http.StatusBadRequest, "invalid_request", "The token parameter is missing.")
		return
	}
	hint := fosite.TokenUse(r.PostForm.Get("token_type_hint"))
	// A refresh token that names its user is read with the user
	// (oauthstore.NamedSignature); the Request keeps that user for
	// grantUser below, which then asks the store nothing. Introspection
	// writes nothing, so the Request holds nothing to commit; Release
	// only ends it.
	ctx, held := oauthstore.WithRequest(r.Context())
	defer p.releaseTokenRequest(ctx, held)
	tu, ar, err := p.oauth.IntrospectToken(ctx, tok, hint, oauthstore.NewSession())
	if isUnavailable(err) {
		p.unavailable(w, r, err)
		return
	}
	if err != nil || !mayIntrospect(caller, tu, ar) {
		writeJSON(w, map[string]any{"active": false})
		return
	}
	sess := ar.GetSession().(*oauthstore.Session)
	if err := p.grantUser(ctx, sess); err != nil {
		if isUnavailable(err) {
			p.unavailable(w, r, err)
			return
		}
		// A disabled or deleted user's tokens are no longer active
		// (RFC 7662 §2.2: "active" is the server's current judgement).
		writeJSON(w, map[string]any{"active": false})
		return
	}
	out := map[string]any{
		"active":    true,
		"iss":       p.issuer,
		"client_id": ar.GetClient().GetID(),
		"sub":       sess.Subject,
		"iat":       ar.GetRequestedAt().Unix(),
		"token_use": string(tu),
	}
	if sc := ar.GetGrantedScopes(); len(sc) > 0 {
		out["scope"] = strings.Join(sc, " ")
	}
	if sess.Username != "" {
		out["username"] = sess.Username
	}
	switch tu {
	case fosite.AccessToken:
		out["token_type"] = "Bearer"
		if sess.JKT != "" {
			// RFC 9449 §6.2: the resource server checks the proof's key.
			out["token_type"] = dpop.Scheme
			out["cnf"] = map[string]any{"jkt": sess.JKT}
		}
		out["exp"] = sess.GetExpiresAt(fosite.AccessToken).Unix()
		aud := []string(ar.GetGrantedAudience())
		if len(aud) == 0 {
			aud = []string{p.issuer}
		}
		out["aud"] = aud
	case fosite.RefreshToken:
		if exp := sess.GetExpiresAt(fosite.RefreshToken); !exp.IsZero() {
			out["exp"] = exp.Unix()
		}
	}
	if !sess.AuthTime.IsZero() {
		out["auth_time"] = sess.AuthTime.Unix()
	}
	if sess.SID != "" {
		out["sid"] = sess.SID
	}
	writeJSON(w, out)
}

// mayIntrospect decides whether caller may learn that the token is
// active, and what it carries (RFC 7662 §4: the server decides which
// protected resources may introspect which tokens, by audience). Otherwise
// any client of the application could read every user's tokens — their
// subject, scopes and session — and tell a live stolen token from a dead
// one. Allowed: the client the token was issued to; for an access token, a
// resource server its audience names (by client ID, or for the proxy
// client the server derives, by the audiences the proxy accepts); and
// clients configured as introspectors. Refresh tokens are for their
// client alone: no resource server is ever sent one.
func mayIntrospect(caller fosite.Client, tu fosite.TokenUse, ar fosite.Requester) bool {
	c, ok := caller.(*Client)
	if !ok {
		return false
	}
	if c.Introspector || ar.GetClient().GetID() == c.GetID() {
		return true
	}
	if tu != fosite.AccessToken {
		return false
	}
	for _, aud := range ar.GetGrantedAudience() {
		if slices.Contains(c.ResourceNames, aud) {
			return true
		}
	}
	return false
}

// revoke is RFC 7009 token revocation: revoking either token of a grant
// revokes the grant's access and refresh tokens. Unknown tokens are a
// success (§2.2): the client's goal, a dead token, is reached.
func (p *Provider) revoke(w http.ResponseWriter, r *http.Request) {
	if r.PostForm.Get("token") == "" {
		writeJSONError(w, http.StatusBadRequest, "invalid_request", "The token parameter is missing.")
		return
	}
	// The client is authenticated first, so that only it spends its
	// limit; fosite's authentication as it revokes repeats the answer
	// (withClientAuth).
	ctx := withClientAuth(r.Context())
	c, err := p.oauth.AuthenticateClient(ctx, r, r.PostForm)
	if err == nil {
		reqlog.SetClient(ctx, c.GetID())
	}
	if err == nil && !p.limitClient(w, r, ratelimit.Revoke, c.GetID()) {
		return
	}
	if err == nil {
		err = p.oauth.NewRevocationRequest(ctx, r)
	}
	if err == nil {
		// fosite revoked the token's grant (and checked the token is this
		// client's); a client-credentials token has no grant index, so
		// delete the presented access token itself too.
		if sig := p.strategy.AccessTokenSignature(r.Context(), r.PostForm.Get("token")); sig != "" {
			err = p.tokens.DeleteAccessTokenSession(r.Context(), sig)
		}
	}
	switch {
	case err == nil:
		// RFC 7009 §2.2 answers 200 for an unknown token too: the event
		// says a revocation was asked and done, not that a token existed.
		audit.Log(r.Context(), p.opts.Audit, audit.Event{Type: audit.TokenRevoked, App: p.app, Client: c.GetID()})
		noStore(w)
		w.WriteHeader(http.StatusOK)
	case isUnavailable(err), errors.Is(err, fosite.ErrTemporarilyUnavailable):
		// fosite answers a failed token lookup (other than "not found")
		// with its own temporarily_unavailable, without the cause: the
		// store is the only thing it looked in.
		p.unavailable(w, r, err)
	case errors.Is(err, fosite.ErrInvalidClient):
		p.clientAuthError(w, r, err)
	case errors.Is(err, fosite.ErrUnauthorizedClient):
		// The token belongs to another client: refused, and not revoked
		// (§2.1).
		writeJSONError(w, http.StatusBadRequest, "unauthorized_client", "The token was not issued to this client.")
	case errors.Is(err, fosite.ErrInvalidRequest):
		writeJSONError(w, http.StatusBadRequest, "invalid_request", fosite.ErrorToRFC6749Error(err).GetDescription())
	default:
		p.log.Error("revocation", "err", err)
		writeJSONError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "")
	}
}
