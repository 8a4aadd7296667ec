package oauthstore

import (
	"encoding/json"
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

	// issued is the access token last signed for this session and its
	// claims (Issued); never stored.
	issued *issuedToken
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

// storedClaims are the ID token claims as a record keeps them: only what
// is set. fosite's type writes every claim, empty or not, and its empty
// claims and times were a third of a refresh token's record. The names
// are fosite's, so records written either way read the same.
type storedClaims struct {
	JTI         string         `json:"jti,omitempty"`
	Issuer      string         `json:"iss,omitempty"`
	Subject     string         `json:"sub,omitempty"`
	Audience    []string       `json:"aud,omitempty"`
	Nonce       string         `json:"nonce,omitempty"`
	ExpiresAt   time.Time      `json:"exp,omitzero"`
	IssuedAt    time.Time      `json:"iat,omitzero"`
	RequestedAt time.Time      `json:"rat,omitzero"`
	AuthTime    time.Time      `json:"auth_time,omitzero"`
	AtHash      string         `json:"at_hash,omitempty"`
	ACR         string         `json:"acr,omitempty"`
	AMR         []string       `json:"amr,omitempty"`
	CodeHash    string         `json:"c_hash,omitempty"`
	Extra       map[string]any `json:"ext,omitempty"`
}

func toStored(c *jwt.IDTokenClaims) *storedClaims {
	if c == nil {
		return nil
	}
	return &storedClaims{c.JTI, c.Issuer, c.Subject, c.Audience, c.Nonce, c.ExpiresAt, c.IssuedAt, c.RequestedAt,
		c.AuthTime, c.AccessTokenHash, c.AuthenticationContextClassReference, c.AuthenticationMethodsReferences, c.CodeHash, c.Extra}
}

func (c *storedClaims) claims() *jwt.IDTokenClaims {
	return &jwt.IDTokenClaims{JTI: c.JTI, Issuer: c.Issuer, Subject: c.Subject, Audience: c.Audience, Nonce: c.Nonce,
		ExpiresAt: c.ExpiresAt, IssuedAt: c.IssuedAt, RequestedAt: c.RequestedAt, AuthTime: c.AuthTime,
		AccessTokenHash: c.AtHash, AuthenticationContextClassReference: c.ACR, AuthenticationMethodsReferences: c.AMR,
		CodeHash: c.CodeHash, Extra: c.Extra}
}

// sessionFields is Session without its methods, for its JSON.
type sessionFields Session

// storedSession is a Session as records hold it: only the ID token claims
// that are set, and no ID token headers when there are none. A record's
// entry holds it as a plain struct, not through Session's MarshalJSON and
// UnmarshalJSON, which encoding/json would scan a second time (it
// validates what a Marshaler returns, and hands an Unmarshaler bytes it
// has already scanned, which it scans again).
type storedSession struct {
	*sessionFields
	Claims  *storedClaims `json:"id_token_claims,omitempty"`
	Headers *jwt.Headers  `json:"id_token_headers,omitempty"`
}

// stored is s to write.
func (s *Session) stored() storedSession {
	var headers *jwt.Headers
	if s.Headers != nil && len(s.Headers.Extra) > 0 {
		headers = s.Headers
	}
	return storedSession{(*sessionFields)(s), toStored(s.Claims), headers}
}

// over is what a stored session is decoded into to lay it over s, as
// encoding/json lays any record over the value it decodes into: what the
// record holds replaces, the rest of s stays (see Store.decode), claims
// included. take finishes it.
func (s *Session) over() storedSession {
	return storedSession{(*sessionFields)(s), toStored(s.Claims), s.Headers}
}

// take sets in s what st, decoded over it, holds beside its own fields.
func (s *Session) take(st storedSession) {
	if st.Claims != nil {
		s.Claims = st.Claims.claims()
	}
	s.Headers = st.Headers
}

// MarshalJSON writes the session as a record holds it (storedSession).
func (s *Session) MarshalJSON() ([]byte, error) {
	return json.Marshal(s.stored())
}

// UnmarshalJSON lays a stored session over s (Session.over).
func (s *Session) UnmarshalJSON(data []byte) error {
	st := s.over()
	if err := json.Unmarshal(data, &st); err != nil {
		return err
	}
	s.take(st)
	return nil
}
