package authz

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/ory/fosite"

	"github.com/aero2/aero2/audit"
	"github.com/aero2/aero2/authz/oauthstore"
	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/dpop"
	"github.com/aero2/aero2/ratelimit"
	"github.com/aero2/aero2/reqlog"
)

// token is the token endpoint (RFC 6749 §3.2): the code, refresh and
// client credentials grants. Responses carry Cache-Control: no-store.
func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	switch gt := r.PostForm.Get("grant_type"); gt {
	case "authorization_code", "refresh_token", "client_credentials", config.GrantDeviceCode, "":
		// One of the grant types Aero2 knows (or none): a bounded label.
		reqlog.SetDetail(ctx, gt)
	default:
		// Implicit and password do not exist here (RFC 9700 §2.1.2, §2.4).
		p.auditToken(ctx, audit.TokenRefused, "", "", "", "unsupported_grant_type")
		writeJSONError(w, http.StatusBadRequest, "unsupported_grant_type", "Supported grant types: authorization_code, refresh_token, client_credentials, "+config.GrantDeviceCode+".")
		return
	}
	// RFC 6749 §5.2: a request with no client authentication at all is
	// invalid_client (401), not a malformed request. (fosite answers
	// invalid_request.) A public client identifies itself with client_id.
	// (No Authorization header is no HTTP Basic either: its credentials
	// are not decoded here, only looked for.)
	if r.Header.Get("Authorization") == "" && r.PostForm.Get("client_id") == "" && !r.PostForm.Has("client_assertion") {
		w.Header().Set("WWW-Authenticate", `Basic realm="aero2", charset="UTF-8"`)
		p.auditToken(ctx, audit.TokenRefused, r.PostForm.Get("grant_type"), "", "", "invalid_client")
		writeJSONError(w, http.StatusUnauthorized, "invalid_client", "Client authentication is required: HTTP Basic with the client ID and secret, client_id (and client_secret) in the form, or a client_assertion (private_key_jwt).")
		return
	}
	// The client is authenticated, and its limit spent, before fosite
	// reads the grant: fosite's first phase already uses up what it
	// redeems (a code's PKCE challenge), so a request refused after it
	// would burn a code the client may retry. fosite's own authentication
	// inside NewAccessRequest repeats this answer (withClientAuth). A
	// failed authentication is answered by NewAccessRequest, as before.
	ctx = withClientAuth(ctx)
	var client *Client
	if c, err := p.oauth.AuthenticateClient(ctx, r, r.PostForm); err == nil {
		reqlog.SetClient(ctx, c.GetID())
		if !p.limitClient(w, r, ratelimit.Token, c.GetID()) {
			return
		}
		client, _ = c.(*Client)
	}
	// DPoP (RFC 9449 §5): a proof binds the tokens to its key. Checked
	// before fosite redeems anything, so a bad proof burns no code.
	proof, err := p.proof(r, "/oauth2/token", "")
	if err != nil {
		p.dpopTokenError(w, r, err)
		return
	}
	if proof == nil && client != nil && client.requireDPoP {
		writeJSONError(w, http.StatusBadRequest, "invalid_dpop_proof", "This client must send a DPoP proof with every token request (RFC 9449).")
		return
	}
	if proof != nil {
		ctx = withJKT(ctx, proof.JKT)
		p.giveNonce(w)
	}
	// The request's token writes are held and committed together once
	// fosite has issued everything: a failed request stores nothing.
	ctx, held := oauthstore.WithRequest(ctx)
	defer p.releaseTokenRequest(ctx, held)
	ar, err := p.oauth.NewAccessRequest(ctx, r, oauthstore.NewSession())
	if err != nil {
		p.tokenError(w, r, ar, err)
		return
	}
	if err := p.grantUser(ctx, ar.GetSession().(*oauthstore.Session)); err != nil {
		// The user was disabled or deleted after the grant was made:
		// the grant dies (its code or refresh token is burnt already).
		if errors.Is(err, errUserGone) {
			if rerr := p.tokens.RevokeGrant(r.Context(), ar.GetID()); rerr != nil {
				p.log.Warn("revoking the grant of a disabled user", "err", rerr)
			}
			err = fosite.ErrInvalidGrant.WithHint("The user may no longer sign in.")
		}
		p.tokenError(w, r, ar, err)
		return
	}
	// RFC 9449 §5.0: a public client's refresh token is bound to the key
	// it was issued with; only a proof by that key uses it. (A
	// confidential client's is bound to its authentication instead.)
	if ar.GetGrantTypes().ExactOne("refresh_token") && ar.GetClient().IsPublic() {
		if bound := ar.GetSession().(*oauthstore.Session).JKT; bound != "" && (proof == nil || proof.JKT != bound) {
			writeJSONError(w, http.StatusBadRequest, "invalid_dpop_proof", "The refresh token is bound to a DPoP key: send a proof signed with it.")
			return
		}
	}
	// Back-channel logout: a client that gets tokens in a browser session
	// is told when it ends. Recorded in the tokens' own commit, so a
	// store failure issues nothing rather than tokens that outlive the
	// session's logout unannounced.
	if gt := ar.GetGrantTypes(); gt.ExactOne("authorization_code") || gt.ExactOne(config.GrantDeviceCode) {
		sess := ar.GetSession().(*oauthstore.Session)
		if err := p.rememberLogoutTarget(ctx, client, sess.SID, sess.Subject); err != nil {
			p.tokenError(w, r, ar, err)
			return
		}
	}
	if ar.GetGrantTypes().ExactOne("client_credentials") {
		// fosite checks the scopes and audiences a service client asks for
		// against what it may have, but grants nothing: the token is for
		// the client itself (RFC 9068 §2.2: sub is the client).
		ar.GetSession().(*oauthstore.Session).Subject = ar.GetClient().GetID()
		for _, s := range ar.GetRequestedScopes() {
			ar.GrantScope(s)
		}
		for _, a := range ar.GetRequestedAudience() {
			ar.GrantAudience(a)
		}
	}
	resp, err := p.oauth.NewAccessResponse(ctx, ar)
	if err == nil {
		err = p.tokens.Commit(ctx, held)
	}
	if err != nil {
		p.tokenError(w, r, ar, err)
		return
	}
	if proof != nil {
		resp.SetTokenType(dpop.Scheme) // RFC 9449 §5.1: token_type DPoP
	}
	user := ""
	if !ar.GetGrantTypes().ExactOne("client_credentials") {
		user = ar.GetSession().GetSubject()
		reqlog.SetUser(ctx, user) // the client's own token has no user
	}
	gt := r.PostForm.Get("grant_type")
	ev := audit.TokenIssued
	if gt == "refresh_token" {
		ev = audit.TokenRefreshed
	}
	p.auditToken(ctx, ev, gt, ar.GetClient().GetID(), user, "")
	p.writeAccessResponse(ctx, w, ar, resp)
}

// tokenResponse is the token endpoint's answer (RFC 6749 §5.1, OIDC Core
// §3.1.3.3) with the members fosite's handlers set, in the order of their
// names, so that its JSON is that of fosite's map of them. Pointers where
// fosite writes a member even when it is zero.
type tokenResponse struct {
	AccessToken  string  `json:"access_token"`
	ExpiresIn    *int64  `json:"expires_in,omitempty"`
	IDToken      string  `json:"id_token,omitempty"`
	RefreshToken string  `json:"refresh_token,omitempty"`
	Scope        *string `json:"scope,omitempty"`
	TokenType    string  `json:"token_type"`
}

// writeAccessResponse is fosite's WriteAccessResponse (the same headers,
// status and JSON) written from a struct instead of a map, which
// encoding/json would walk and sort by reflection; an answer with any
// other member goes to fosite's.
func (p *Provider) writeAccessResponse(ctx context.Context, w http.ResponseWriter, ar fosite.AccessRequester, resp fosite.AccessResponder) {
	out, ok := typedResponse(resp)
	if !ok {
		p.oauth.WriteAccessResponse(ctx, w, ar, resp)
		return
	}
	js, err := json.Marshal(out)
	if err != nil {
		p.oauth.WriteAccessResponse(ctx, w, ar, resp)
		return
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Content-Type", "application/json;charset=UTF-8")
	// Its length, so the answer (two JWTs and a refresh token: more than
	// net/http buffers before it chunks) goes out in one piece, unchunked.
	h.Set("Content-Length", strconv.Itoa(len(js)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(js)
}

// typedResponse is resp as a tokenResponse, or false when resp holds a
// member it has no field for (or one of another type, or an empty token
// that fosite's map would write).
func typedResponse(resp fosite.AccessResponder) (*tokenResponse, bool) {
	ar, ok := resp.(*fosite.AccessResponse)
	if !ok {
		return nil, false
	}
	out := &tokenResponse{AccessToken: ar.GetAccessToken(), TokenType: ar.GetTokenType()}
	for k, v := range ar.Extra {
		switch k {
		case "access_token", "token_type":
			// ToMap's own, overwritten by the fields above.
		case "expires_in":
			n, ok := v.(int64)
			if !ok {
				return nil, false
			}
			out.ExpiresIn = &n
		case "scope":
			sc, ok := v.(string)
			if !ok {
				return nil, false
			}
			out.Scope = &sc
		case "id_token", "refresh_token":
			t, _ := v.(string)
			if t == "" {
				return nil, false
			}
			if k == "id_token" {
				out.IDToken = t
			} else {
				out.RefreshToken = t
			}
		default:
			return nil, false
		}
	}
	return out, true
}

// auditToken records a token endpoint decision. grantType is one the
// endpoint knows (checked before anything else) or "".
func (p *Provider) auditToken(ctx context.Context, t audit.Type, grantType, client, user, reason string) {
	audit.Log(ctx, p.opts.Audit, audit.Event{Type: t, App: p.app, Client: client, User: user, GrantType: grantType, Reason: reason})
}

// reuseOf names what a refusal found used twice: fosite's answers to a
// second redemption of a code (OAuth 2.0 §4.1.2: "MUST deny the request
// and SHOULD revoke") and of a rotated refresh token (RFC 9700 §4.14.2).
// fosite wraps nothing for the code, so its hint is what tells.
func reuseOf(err error, rfc *fosite.RFC6749Error) string {
	switch {
	case errors.Is(err, fosite.ErrInactiveToken) && rfc.ErrorField == fosite.ErrInvalidGrant.ErrorField:
		return "refresh_token"
	case rfc.ErrorField == fosite.ErrInvalidGrant.ErrorField && strings.HasPrefix(rfc.HintField, "The authorization code has already been used."):
		return "authorization_code"
	}
	return ""
}

// requestClient is the ID of ar's client when fosite got as far as
// authenticating it, else "".
func requestClient(ar fosite.AccessRequester) string {
	if ar == nil || ar.GetClient() == nil {
		return ""
	}
	return ar.GetClient().GetID()
}

// releaseTokenRequest ends a token request that did not commit: what it
// used up (a code's PKCE challenge) is deleted, so a code shown with a
// wrong verifier is burnt.
func (p *Provider) releaseTokenRequest(ctx context.Context, held *oauthstore.Request) {
	if err := p.tokens.Release(context.WithoutCancel(ctx), held); err != nil {
		p.log.Warn("token endpoint: deleting what a failed request used", "err", err)
	}
}

func (p *Provider) tokenError(w http.ResponseWriter, r *http.Request, ar fosite.AccessRequester, err error) {
	switch {
	case isUnavailable(err):
		p.unavailable(w, r, err)
		return
	case errors.Is(err, oauthstore.ErrConcurrentUse):
		// The code or refresh token was redeemed twice at once (or its
		// grant was revoked meanwhile), and the other request got the
		// tokens. Used twice means stolen: the server cannot tell the
		// attacker from the client (RFC 6749 §4.1.2, RFC 6819 §5.2.2.3,
		// RFC 9700 §4.14.2), so the whole grant dies, the winner's tokens
		// with it.
		if ar != nil && ar.GetID() != "" {
			if rerr := p.tokens.RevokeGrant(r.Context(), ar.GetID()); rerr != nil {
				p.log.Warn("revoking the grant of a reused code or refresh token", "err", rerr)
			}
		}
		reused := "refresh_token"
		if errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) {
			reused = "authorization_code"
			err = fosite.ErrInvalidGrant.WithHint("The authorization code has already been used.")
		} else if errors.Is(err, oauthstore.ErrDeviceCodeUsed) {
			reused = "device_code"
			err = fosite.ErrInvalidGrant.WithHint("The device code has already been used.")
		} else {
			err = fosite.ErrInvalidGrant.WithHint("The refresh token has already been used.")
		}
		user := ""
		if ar != nil && ar.GetSession() != nil {
			user = ar.GetSession().GetSubject()
		}
		p.auditToken(r.Context(), audit.ReuseDetected, r.PostForm.Get("grant_type"), requestClient(ar), user, reused)
		p.oauth.WriteAccessError(r.Context(), w, ar, err)
		return
	case errors.Is(err, oauthstore.ErrGrantRevoked):
		err = fosite.ErrInvalidGrant.WithHint("The grant has been revoked.")
	}
	rfc := fosite.ErrorToRFC6749Error(err)
	if reused := reuseOf(err, rfc); reused != "" {
		// fosite found the code or refresh token used already (not
		// concurrently: that is above) and has revoked what it issued.
		p.auditToken(r.Context(), audit.ReuseDetected, r.PostForm.Get("grant_type"), requestClient(ar), "", reused)
	} else if rfc.CodeField >= 500 {
		p.log.Error("token endpoint", "err", err, "debug", rfc.Debug())
	} else {
		// The reason is the OAuth error code (RFC 6749 §5.2): a word
		// fosite chose from a fixed list, never the client's text.
		p.auditToken(r.Context(), audit.TokenRefused, r.PostForm.Get("grant_type"), requestClient(ar), "", rfc.ErrorField)
	}
	p.oauth.WriteAccessError(r.Context(), w, ar, err)
}
