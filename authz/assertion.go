package authz

import (
	"context"
	"maps"

	fjwt "github.com/ory/fosite/token/jwt"
)

// AssertionType is the JWT typ of identity assertions the proxy sends
// upstream: neither an access token ("at+jwt") nor an ID token ("JWT"), so
// none can be passed off as another.
const AssertionType = "aero2-assertion+jwt"

// SignAssertion signs claims as the application's issuer with its current
// key (kid in the header): the identity assertions the proxy forwards to
// upstreams, which verify them against the same JWKS as tokens. It sets
// iss itself; the caller sets everything else (sub, aud, exp, …). It has
// the shape of the proxy's AssertionSigner, without authz importing proxy.
func (p *Provider) SignAssertion(ctx context.Context, claims map[string]any) (string, error) {
	c := maps.Clone(claims)
	if c == nil {
		c = map[string]any{}
	}
	c["iss"] = p.issuer
	tok, _, err := p.signer.Generate(ctx, fjwt.MapClaims(c), &fjwt.Headers{Extra: map[string]any{"typ": AssertionType}})
	return tok, err
}
