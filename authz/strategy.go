package authz

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	fjwt "github.com/ory/fosite/token/jwt"

	"github.com/aero2/aero2/authz/keys"
	"github.com/aero2/aero2/authz/oauthstore"
)

// AccessTokenType is the JWT typ of access tokens (RFC 9068 §2.1): it
// keeps an access token from passing as an ID token, whose typ is "JWT".
const AccessTokenType = "at+jwt"

// tokenStrategy issues RS256 JWT access tokens shaped by RFC 9068, and
// opaque HMAC-signed refresh tokens and authorization codes (fosite's).
// Access tokens are also stored, so that revocation and logout can make
// them inactive at introspection and userinfo; resource servers that
// verify them offline accept them until they expire, which is why their
// lifetime is short.
type tokenStrategy struct {
	opaque *oauth2.HMACSHAStrategyUnPrefixed
	signer *keys.JWTSigner
	issuer string
	now    func() time.Time
}

var _ oauth2.CoreStrategy = (*tokenStrategy)(nil)

// AccessTokenSignature names an access token in the store: the whole JWT
// (the store keeps only its SHA-256). A record found under it proves this
// exact token was issued here — a genuine signature spliced onto a forged
// header or payload names nothing.
func (s *tokenStrategy) AccessTokenSignature(_ context.Context, token string) string {
	if strings.Count(token, ".") != 2 {
		return ""
	}
	return token
}

// accessTokenIdentityClaims are copied from the ID token's claims into
// access tokens.
var accessTokenIdentityClaims = []string{"preferred_username", "email", "email_verified", "groups"}

// GenerateAccessToken signs an access token for the request:
// iss, sub, aud, client_id, scope, jti, iat, exp (RFC 9068 §2.2), plus
// auth_time when a user signed in.
func (s *tokenStrategy) GenerateAccessToken(ctx context.Context, req fosite.Requester) (string, string, error) {
	sess, ok := req.GetSession().(*oauthstore.Session)
	if !ok {
		return "", "", errors.New("authz: unexpected session type")
	}
	now := s.now().UTC()
	exp := sess.GetExpiresAt(fosite.AccessToken)
	if exp.IsZero() {
		return "", "", errors.New("authz: access token expiry not set")
	}
	aud := []string(req.GetGrantedAudience())
	if len(aud) == 0 {
		// No resource was asked for: the token is for Aero2's own
		// endpoints (userinfo). Never the client ID, which would let the
		// token pass an ID token audience check.
		aud = []string{s.issuer}
	}
	claims := fjwt.MapClaims{
		"iss":       s.issuer,
		"sub":       sess.Subject,
		"aud":       aud,
		"client_id": req.GetClient().GetID(),
		"jti":       randomID(),
		"iat":       now.Unix(),
		"exp":       exp.Unix(),
	}
	if sc := req.GetGrantedScopes(); len(sc) > 0 {
		claims["scope"] = strings.Join(sc, " ")
	}
	if !sess.AuthTime.IsZero() {
		claims["auth_time"] = sess.AuthTime.Unix()
	}
	// RFC 9449 §6.1: a token requested with a DPoP proof names its key;
	// the session records it for introspection, userinfo and (public
	// clients) the next refresh. A request without a proof unbinds.
	sess.JKT = jktFrom(ctx)
	if sess.JKT != "" {
		claims["cnf"] = map[string]any{"jkt": sess.JKT}
	}
	// RFC 9068 §2.2.3.1: identity claims may ride in the access token. The
	// proxy and other resource servers decide policy (allowed emails,
	// domains, groups) on them without a userinfo call. They are the ID
	// token's, so they were already limited to the granted scopes.
	if sess.Claims != nil {
		for _, k := range accessTokenIdentityClaims {
			if v, ok := sess.Claims.Extra[k]; ok {
				claims[k] = v
			}
		}
	}
	tok, _, err := s.signer.Generate(ctx, claims, &fjwt.Headers{Extra: map[string]any{"typ": AccessTokenType}})
	return tok, tok, err
}

// ValidateAccessToken checks the JWT itself: one RS256 signature by a
// published key (alg none and HS256 are refused before any key is used),
// typ at+jwt, and the expiry of the grant's record. That the token exists —
// was issued here and not revoked — is the store's part; the store's record
// is also where the claims are read from, so the payload is not decoded.
func (s *tokenStrategy) ValidateAccessToken(ctx context.Context, req fosite.Requester, token string) error {
	h, _, err := s.signer.Verify(ctx, token)
	if err != nil {
		return fosite.ErrTokenSignatureMismatch.WithWrap(err)
	}
	if typ, _ := h.ExtraHeaders["typ"].(string); typ != AccessTokenType {
		return fosite.ErrTokenClaim.WithHint("The token is not an access token.")
	}
	if exp := req.GetSession().GetExpiresAt(fosite.AccessToken); exp.IsZero() || !s.now().Before(exp) {
		return fosite.ErrTokenExpired
	}
	return nil
}

func (s *tokenStrategy) RefreshTokenSignature(ctx context.Context, token string) string {
	return s.opaque.RefreshTokenSignature(ctx, token)
}

func (s *tokenStrategy) GenerateRefreshToken(ctx context.Context, req fosite.Requester) (string, string, error) {
	return s.opaque.GenerateRefreshToken(ctx, req)
}

func (s *tokenStrategy) ValidateRefreshToken(ctx context.Context, req fosite.Requester, token string) error {
	return s.opaque.ValidateRefreshToken(ctx, req, token)
}

func (s *tokenStrategy) AuthorizeCodeSignature(ctx context.Context, token string) string {
	return s.opaque.AuthorizeCodeSignature(ctx, token)
}

func (s *tokenStrategy) GenerateAuthorizeCode(ctx context.Context, req fosite.Requester) (string, string, error) {
	return s.opaque.GenerateAuthorizeCode(ctx, req)
}

func (s *tokenStrategy) ValidateAuthorizeCode(ctx context.Context, req fosite.Requester, token string) error {
	return s.opaque.ValidateAuthorizeCode(ctx, req, token)
}

// randomID is 128 random bits, base64url: jti values and handles.
func randomID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// randomHandle is 256 random bits: handles that grant something.
func randomHandle() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
