package authz

import (
	"errors"
	"net/http"
	"strings"

	"github.com/ory/fosite"

	"github.com/aero2/aero2/authz/oauthstore"
	"github.com/aero2/aero2/reqlog"
	"github.com/aero2/aero2/store"
)

// bearerToken reads an access token from the Authorization header, or from
// a form body's access_token (RFC 6750 §2.1, §2.2). Never from the query
// string (§2.3): URLs end up in logs and Referer headers.
func bearerToken(r *http.Request) string {
	if auth := r.Header.Get("Authorization"); auth != "" {
		scheme, tok, ok := strings.Cut(auth, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return ""
		}
		return strings.TrimSpace(tok)
	}
	if r.Method == http.MethodPost {
		return r.PostForm.Get("access_token")
	}
	return ""
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
	tok := bearerToken(r)
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
	if !ar.GetGrantedScopes().Has("openid") || sess.SID == "" {
		// Client-credentials tokens have no user behind them.
		p.bearerError(w, http.StatusForbidden, "insufficient_scope", "The access token was not granted the openid scope.")
		return
	}
	u, err := p.opts.Store.GetUser(ctx, p.opts.App, sess.User())
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
