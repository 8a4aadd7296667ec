package oauthstore

import (
	"maps"
	"slices"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"
)

// Session is what Aero2 keeps with every grant: who the user is, which
// browser session the grant came from, and the ID token's claims. It is
// fosite's session for every flow.
type Session struct {
	// Subject is the sub claim of the grant's tokens: the user's ID in
	// the application, or for a pairwise client (OIDC Core §8.1) the
	// user's subject in the client's sector; for client-credentials
	// grants, the client's ID (RFC 9068 §2.2).
	Subject string `json:"sub"`
	// UserID is the user's ID in the application when Subject is not it
	// (a pairwise client's grant). Never sent to a client.
	UserID string `json:"uid,omitempty"`
	// Username is shown at introspection (preferred_username).
	Username string `json:"username,omitempty"`
	// SID is the browser session the grant was made in (the store's
	// session ID, which is the hash of the cookie): logout revokes the
	// grants of its sid, and the proxy checks sid liveness.
	SID string `json:"sid,omitempty"`
	// AuthTime is when the user last signed in (OIDC auth_time).
	AuthTime time.Time `json:"auth_time,omitzero"`
	// JKT is the thumbprint of the DPoP key the grant's latest tokens are
	// bound to (RFC 9449 §6): the access token's cnf.jkt, and for a
	// public client the key its refresh token must be used with.
	JKT string `json:"jkt,omitempty"`

	Claims    *jwt.IDTokenClaims             `json:"id_token_claims,omitempty"`
	Headers   *jwt.Headers                   `json:"id_token_headers,omitempty"`
	ExpiresAt map[fosite.TokenType]time.Time `json:"expires_at,omitempty"`
}

var _ openid.Session = (*Session)(nil)

// NewSession returns an empty session.
func NewSession() *Session {
	return &Session{Claims: &jwt.IDTokenClaims{}, Headers: &jwt.Headers{}}
}

func (s *Session) SetExpiresAt(key fosite.TokenType, exp time.Time) {
	if s.ExpiresAt == nil {
		s.ExpiresAt = map[fosite.TokenType]time.Time{}
	}
	s.ExpiresAt[key] = exp
}

func (s *Session) GetExpiresAt(key fosite.TokenType) time.Time {
	if s == nil {
		return time.Time{}
	}
	return s.ExpiresAt[key]
}

func (s *Session) GetUsername() string {
	if s == nil {
		return ""
	}
	return s.Username
}

func (s *Session) GetSubject() string {
	if s == nil {
		return ""
	}
	return s.Subject
}

func (s *Session) SetSubject(sub string) { s.Subject = sub }

// User is the ID of the grant's user in the application (the store's
// user ID), whatever subject its client sees.
func (s *Session) User() string {
	if s.UserID != "" {
		return s.UserID
	}
	return s.Subject
}

func (s *Session) IDTokenClaims() *jwt.IDTokenClaims {
	if s.Claims == nil {
		s.Claims = &jwt.IDTokenClaims{}
	}
	return s.Claims
}

func (s *Session) IDTokenHeaders() *jwt.Headers {
	if s.Headers == nil {
		s.Headers = &jwt.Headers{}
	}
	return s.Headers
}

// Clone copies the session deeply enough that handlers changing the copy's
// claims (the refresh flow clears exp and at_hash) leave the original as it
// was.
func (s *Session) Clone() fosite.Session {
	if s == nil {
		return nil
	}
	c := *s
	c.ExpiresAt = maps.Clone(s.ExpiresAt)
	if s.Claims != nil {
		cl := *s.Claims
		cl.Audience = slices.Clone(s.Claims.Audience)
		cl.AuthenticationMethodsReferences = slices.Clone(s.Claims.AuthenticationMethodsReferences)
		cl.Extra = maps.Clone(s.Claims.Extra)
		c.Claims = &cl
	}
	if s.Headers != nil {
		c.Headers = &jwt.Headers{Extra: maps.Clone(s.Headers.Extra)}
	}
	return &c
}
