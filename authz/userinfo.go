package authz

import (
	"errors"
	"net/http"
	"strings"

	"github.com/ory/fosite"

	"github.com/aero2/aero2/authz/oauthstore"
	"github.com/aero2/aero2/dpop"
	"github.com/aero2/aero2/reqlog"
	"github.com/aero2/aero2/store"
)

// accessToken reads an access token from the Authorization header
// (schemes Bearer and DPoP, RFC 6750 §2.1, RFC 9449 §7.1), or from a form
// body's access_token (RFC 6750 §2.2, as Bearer). Never from the query
// string (§2.3): URLs end up in logs and Referer headers.
func accessToken(r *http.Request) (scheme, token string) {
	if auth := r.Header.Get("Authorization"); auth != "" {
		return dpop.ParseAuthorization(auth)
	}
	if r.Method == http.MethodPost && r.PostForm.Get("access_token") != "" {
		return "Bearer", r.PostForm.Get("access_token")
	}
	return "", ""
}

// checkDPoP lets a DPoP-bound token (jkt set) through only as
// "Authorization: DPoP" with a proof by its key that hashes it (RFC 9449
// §7.1): as Bearer, a stolen bound token would work without the key
// (§7.2). The DPoP scheme with an unbound token is refused too. It
// answers the refusals itself.
func (p *Provider) checkDPoP(w http.ResponseWriter, r *http.Request, scheme, tok, jkt string) bool {
	if jkt == "" && scheme != dpop.Scheme {
		return true
	}
	if jkt == "" || scheme != dpop.Scheme {
		p.dpopError(w, "invalid_token", "A DPoP-bound access token is sent with the DPoP scheme and a proof; a Bearer token with Bearer.")
		return false
	}
	proof, err := p.proof(r, "/oauth2/userinfo", tok)
	switch {
	case errors.Is(err, dpop.ErrUseNonce):
		p.giveNonce(w)
		p.dpopError(w, "use_dpop_nonce", "Resource server requires nonce in DPoP proof.")
		return false
	case isUnavailable(err):
		p.unavailable(w, r, err)
		return false
	case err != nil:
		p.log.Info("userinfo: DPoP proof refused", "err", err)
		p.dpopError(w, "invalid_dpop_proof", "The DPoP proof is invalid.")
		return false
	case proof == nil:
		p.dpopError(w, "invalid_dpop_proof", "A DPoP-bound access token needs a DPoP proof.")
		return false
	case proof.JKT != jkt:
		p.dpopError(w, "invalid_dpop_proof", "The DPoP proof is not signed by the key the token is bound to.")
		return false
	}
	p.giveNonce(w)
	return true
}

// dpopError answers 401 with a DPoP challenge (RFC 9449 §7.1).
func (p *Provider) dpopError(w http.ResponseWriter, code, desc string) {
	w.Header().Set("WWW-Authenticate", `DPoP error="`+code+`", error_description="`+desc+`", algs="`+strings.Join(dpop.AlgNames(), " ")+`"`)
	writeJSONError(w, http.StatusUnauthorized, code, desc)
}

// bearerError answers a failed bearer authentication (RFC 6750 §3).
func (p *Provider) bearerError(w http.ResponseWriter, status int, code, desc string) {
	v := `Bearer realm="` + p.issuer + `"`
	if code != "" {
		v += `, error="` + code + `", error_description="` + desc + `"`
		if code == "insufficient_scope" {
			v += `, scope="openid"`
		}
	}
	w.Header().Set("WWW-Authenticate", v)
	if code == "" {
		noStore(w)
		w.WriteHeader(status)
		return
	}
	writeJSONError(w, status, code, desc)
}

// userinfo returns the signed-in user's claims for an access token with
// the openid scope (OIDC Core §5.3), from the user's current profile and
// filtered by the granted scopes. A revoked, logged-out or expired token is
// invalid_token.
func (p *Provider) userinfo(w http.ResponseWriter, r *http.Request) {
	scheme, tok := accessToken(r)
	if tok == "" {
		p.bearerError(w, http.StatusUnauthorized, "", "")
		return
	}
	ctx := r.Context()
	tu, ar, err := p.oauth.IntrospectToken(ctx, tok, fosite.AccessToken, oauthstore.NewSession())
	if isUnavailable(err) {
		p.unavailable(w, r, err)
		return
	}
	if err != nil || tu != fosite.AccessToken {
		p.bearerError(w, http.StatusUnauthorized, "invalid_token", "The access token is invalid, expired or revoked.")
		return
	}
	sess := ar.GetSession().(*oauthstore.Session)
	reqlog.SetClient(ctx, ar.GetClient().GetID())
	if !p.checkDPoP(w, r, scheme, tok, sess.JKT) {
		return
	}
	if !ar.GetGrantedScopes().Has("openid") || sess.SID == "" {
		// Client-credentials tokens have no user behind them.
		p.bearerError(w, http.StatusForbidden, "insufficient_scope", "The access token was not granted the openid scope.")
		return
	}
	u, err := p.st.GetUser(ctx, sess.User())
	if errors.Is(err, store.ErrNotFound) || (err == nil && u.Disabled) {
		p.bearerError(w, http.StatusUnauthorized, "invalid_token", "The user no longer exists or may no longer sign in.")
		return
	}
	if err != nil {
		if isUnavailable(err) {
			p.unavailable(w, r, err)
			return
		}
		p.log.Error("userinfo", "err", err)
		writeJSONError(w, http.StatusInternalServerError, "server_error", "")
		return
	}
	reqlog.SetUser(ctx, sess.Subject)
	claims := userClaims(u, ar.GetGrantedScopes())
	claims["sub"] = sess.Subject
	writeJSON(w, claims)
}

// userClaims are the standard claims a user's profile gives, for the
// granted scopes (OIDC Core §5.4).
func userClaims(u *store.User, scopes fosite.Arguments) map[string]any {
	c := map[string]any{}
	if scopes.Has("profile") {
		if u.Name != "" {
			c["name"] = u.Name
		}
		if u.PreferredUsername != "" {
			c["preferred_username"] = u.PreferredUsername
		}
		if u.Picture != "" {
			c["picture"] = u.Picture
		}
	}
	if scopes.Has("email") && u.Email != "" {
		c["email"] = u.Email
		c["email_verified"] = u.EmailVerified
	}
	if scopes.Has("groups") {
		groups := u.Groups
		if groups == nil {
			groups = []string{}
		}
		c["groups"] = groups
	}
	return c
}
