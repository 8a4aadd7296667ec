package authz

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/ory/fosite"

	"github.com/aero2/aero2/config"
)

// clientAssertionType is RFC 7523 §2.2's client_assertion_type.
const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

const (
	// maxAssertionBytes bounds a client assertion: a JWT of a few claims
	// signed with a 4096-bit key is under 1 KiB.
	maxAssertionBytes = 8 << 10
	// maxAssertionLifetime bounds how far ahead an assertion's exp may
	// be: the jti must be remembered that long, and a long-lived
	// assertion is a bearer credential in all but name. Clients sign a
	// fresh one per request (openid-client: 60 seconds).
	maxAssertionLifetime = 5 * time.Minute
	// assertionLeeway is the clock skew allowed between client and server.
	assertionLeeway = 30 * time.Second
	maxJTIBytes     = 256
)

// assertionAlgs are the algorithms any assertion may be signed with.
var assertionAlgs = func() []jose.SignatureAlgorithm {
	out := make([]jose.SignatureAlgorithm, len(config.AssertionAlgs))
	for i, a := range config.AssertionAlgs {
		out[i] = jose.SignatureAlgorithm(a)
	}
	return out
}()

// verifyClientAssertion authenticates a private_key_jwt client (RFC 7523
// §2.2 and §3, OIDC Core §9): a JWT signed by a key of the client's JWKS,
// with iss and sub the client ID, aud this provider (its issuer, token
// endpoint or PAR endpoint, RFC 9126 §2), an exp at most
// maxAssertionLifetime ahead, and a jti never seen before. The jti is
// recorded with an atomic create, and only once everything else holds,
// so that a forged or expired assertion uses nothing up. Every failure is
// invalid_client.
//
// It does not look at the client_secret or HTTP Basic: a request with
// those and an assertion is refused before (one method per request, RFC
// 6749 §2.3).
func (p *Provider) verifyClientAssertion(ctx context.Context, clientID, assertion string) (*Client, error) {
	if len(assertion) > maxAssertionBytes {
		return nil, fosite.ErrInvalidClient.WithHint("The client_assertion is too large.")
	}
	tok, err := josejwt.ParseSigned(assertion, assertionAlgs)
	if err != nil || len(tok.Headers) != 1 {
		return nil, fosite.ErrInvalidClient.WithHint("The client_assertion is not a JWT signed with an asymmetric algorithm (RS256, PS256, ES256, EdDSA, …).")
	}
	var unverified josejwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, fosite.ErrInvalidClient.WithHint("The client_assertion's claims cannot be read.")
	}
	if clientID == "" {
		clientID = unverified.Subject
	}
	client := p.clients.get(clientID)
	if client == nil || clientID != unverified.Subject {
		return nil, fosite.ErrInvalidClient.WithHint("The client_assertion's sub must be the client_id of a registered client.")
	}
	if client.keys == nil {
		return nil, fosite.ErrInvalidClient.WithHintf("The client authenticates with %s, not private_key_jwt.", client.GetTokenEndpointAuthMethod())
	}
	h := tok.Headers[0]
	if client.assertionAlg != "" && h.Algorithm != client.assertionAlg {
		return nil, fosite.ErrInvalidClient.WithHintf("The client's assertions must be signed with %s.", client.assertionAlg)
	}
	keys, err := client.keys.keys(ctx, h.KeyID)
	if err != nil {
		p.log.Warn("client keys unavailable", "client", clientID, "err", err)
		return nil, fosite.ErrInvalidClient.WithHint("The client's keys (jwks_uri) cannot be fetched.")
	}
	var claims josejwt.Claims
	verified := false
	for _, k := range keys {
		if k.Algorithm != "" && k.Algorithm != h.Algorithm {
			continue
		}
		if tok.Claims(k.Key, &claims) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, fosite.ErrInvalidClient.WithHint("No key of the client's JWKS verifies the client_assertion.")
	}

	now := p.opts.Now()
	switch {
	case claims.Issuer != clientID || claims.Subject != clientID:
		return nil, fosite.ErrInvalidClient.WithHint("The client_assertion's iss and sub must both be the client_id.")
	case !audienceIncludes(claims.Audience, p.assertionAudiences):
		return nil, fosite.ErrInvalidClient.WithHintf("The client_assertion's aud must be the issuer %s or the token endpoint.", p.issuer)
	case claims.Expiry == nil:
		return nil, fosite.ErrInvalidClient.WithHint("The client_assertion has no exp.")
	case now.After(claims.Expiry.Time().Add(assertionLeeway)):
		return nil, fosite.ErrInvalidClient.WithHint("The client_assertion has expired.")
	case claims.Expiry.Time().After(now.Add(maxAssertionLifetime + assertionLeeway)):
		return nil, fosite.ErrInvalidClient.WithHintf("The client_assertion's exp is more than %s ahead.", maxAssertionLifetime)
	case claims.NotBefore != nil && claims.NotBefore.Time().After(now.Add(assertionLeeway)):
		return nil, fosite.ErrInvalidClient.WithHint("The client_assertion is not valid yet (nbf).")
	case claims.IssuedAt != nil && claims.IssuedAt.Time().After(now.Add(assertionLeeway)):
		return nil, fosite.ErrInvalidClient.WithHint("The client_assertion was issued in the future (iat).")
	case claims.ID == "" || len(claims.ID) > maxJTIBytes:
		return nil, fosite.ErrInvalidClient.WithHint("The client_assertion needs a jti (at most 256 bytes).")
	}
	// Replay: the jti (per client) is remembered until the assertion
	// expires, with one atomic create; of two requests with the same
	// assertion exactly one gets through.
	if err := p.tokens.SetClientAssertionJWT(ctx, clientID+" "+claims.ID, claims.Expiry.Time().Add(assertionLeeway)); err != nil {
		if errors.Is(err, fosite.ErrJTIKnown) {
			return nil, fosite.ErrInvalidClient.WithHint("The client_assertion has been used before (its jti is known).")
		}
		return nil, err
	}
	return client, nil
}

func audienceIncludes(aud josejwt.Audience, accepted []string) bool {
	for _, a := range aud {
		if slices.Contains(accepted, a) {
			return true
		}
	}
	return false
}
