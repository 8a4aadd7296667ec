package proxy

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/aero2/aero2/config"
)

// AssertionType is the JWT typ of identity assertions: neither an access
// token's ("at+jwt", RFC 9068) nor an ID token's ("JWT"), so that none can
// be passed off as another by an upstream, or a resource server, that
// checks typ. The proxy sends no assertion of another type. (authz signs
// with the same typ; the server's tests check the two agree.)
const AssertionType = "aero2-assertion+jwt"

// AssertionSigner signs the identity assertion sent upstream. The server
// wires it to the application's provider key, so that upstreams verify
// assertions against the provider's JWKS and need not trust the network.
type AssertionSigner interface {
	// SignAssertion returns a compact JWS of claims with typ
	// AssertionType. It sets `iss` (and the key ID header) itself; the
	// proxy sets everything else.
	SignAssertion(ctx context.Context, claims map[string]any) (string, error)
}

// AssertionLifetime is how long an assertion is valid. The proxy reuses
// one for half of it.
const AssertionLifetime = 2 * time.Minute

// KeySigner is an AssertionSigner with a key in hand.
type KeySigner struct {
	issuer string
	signer jose.Signer
}

// NewKeySigner signs with key (RSA or ECDSA) under alg and key ID kid, as
// issuer.
func NewKeySigner(issuer string, key crypto.Signer, alg jose.SignatureAlgorithm, kid string) (*KeySigner, error) {
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: string(alg)}},
		(&jose.SignerOptions{}).WithType(AssertionType))
	if err != nil {
		return nil, fmt.Errorf("assertion signer: %w", err)
	}
	return &KeySigner{issuer: issuer, signer: s}, nil
}

// SignAssertion implements AssertionSigner.
func (k *KeySigner) SignAssertion(_ context.Context, claims map[string]any) (string, error) {
	c := make(map[string]any, len(claims)+1)
	for key, v := range claims {
		c[key] = v
	}
	c["iss"] = k.issuer
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	jws, err := k.signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

type cachedAssertion struct {
	jwt   string
	fresh time.Time // reused until then
}

// assertionAudience is the audience of the assertions of a route reached
// at origin (scheme://host): config.AssertionAudiencePrefix, the origin
// and the route's path prefix. Never an access token's audience, by
// construction.
func assertionAudience(origin, prefix string) string {
	return config.AssertionAudiencePrefix + origin + prefix
}

// assertionClaims are what an upstream learns: who, for which route
// (aud), for how long. jti makes each assertion unique.
func assertionClaims(id *Identity, audience string, now time.Time) map[string]any {
	jti := make([]byte, 16)
	rand.Read(jti)
	c := map[string]any{
		"sub": id.Subject, "aud": audience,
		"iat": now.Unix(), "nbf": now.Add(-5 * time.Second).Unix(), "exp": now.Add(AssertionLifetime).Unix(),
		"jti": base64.RawURLEncoding.EncodeToString(jti),
	}
	if id.Email != "" {
		c["email"] = id.Email
		c["email_verified"] = id.EmailVerified
	}
	if id.PreferredUsername != "" {
		c["preferred_username"] = id.PreferredUsername
	}
	if id.Name != "" {
		c["name"] = id.Name
	}
	if len(id.Groups) > 0 {
		c["groups"] = id.Groups
	}
	if id.SessionID != "" {
		c["sid"] = id.SessionID
	}
	return c
}
