package config

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Client authentication methods at the token endpoint (RFC 7591 §2).
const (
	AuthClientSecretBasic = "client_secret_basic"
	AuthClientSecretPost  = "client_secret_post"
	AuthNone              = "none"
)

// Grant types a client may be allowed. Implicit and password grants do not
// exist in Aero2 (OAuth 2.0 Security BCP, RFC 9700 §2.1.2 and §2.4).
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
)

// Token lifetimes used when neither the client nor the application sets
// one. Access tokens are JWTs that resource servers may accept without
// asking Aero2, so they stay short; refresh tokens rotate on every use.
const (
	DefaultAccessTokenLifetime       = time.Hour
	DefaultIDTokenLifetime           = time.Hour
	DefaultRefreshTokenLifetime      = 30 * 24 * time.Hour
	DefaultAuthorizationCodeLifetime = 5 * time.Minute
	// MaxAuthorizationCodeLifetime: "A maximum authorization code
	// lifetime of 10 minutes is RECOMMENDED" (RFC 6749 §4.1.2).
	MaxAuthorizationCodeLifetime = 10 * time.Minute
	// MinKeyRotationPeriod keeps a schedule from rotating keys faster than
	// clients can refresh their cached JWKS.
	MinKeyRotationPeriod = time.Hour
)

// DefaultClientScopes are the scopes a client may ask for when its
// configuration lists none.
var DefaultClientScopes = []string{"openid", "profile", "email", "offline_access"}

// DefaultGrantTypes are a client's grant types when it lists none.
var DefaultGrantTypes = []string{GrantAuthorizationCode, GrantRefreshToken}

// SigningKeys configures an application's token signing keys.
type SigningKeys struct {
	// RotationPeriod rotates the keys automatically when the current key
	// has signed for this long. 0 (the default) rotates only on
	// `aero2 keys rotate`.
	RotationPeriod time.Duration `yaml:"rotation_period"`
	// Algorithm is what the application's tokens are signed with: RS256
	// (the default), ES256 (ECDSA P-256) or EdDSA (Ed25519). A change
	// takes effect at the next rotation: the next key is made for the new
	// algorithm at start-up, and published before it signs.
	Algorithm string `yaml:"algorithm"`
}

// SigningAlgorithms are the values of signing_keys.algorithm.
var SigningAlgorithms = []string{"RS256", "ES256", "EdDSA"}

// DefaultSigningAlgorithm is signing_keys.algorithm when unset: what every
// relying party supports (OIDC Core §15.1).
const DefaultSigningAlgorithm = "RS256"

var (
	clientIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._~:@-]{0,127}$`)
	// scopeRE is RFC 6749 §3.3's scope-token: %x21 / %x23-5B / %x5D-7E.
	scopeRE = regexp.MustCompile(`^[\x21\x23-\x5b\x5d-\x7e]{1,128}$`)
)

func (a *Application) applyClientDefaults() {
	t := &a.Tokens
	setDuration(&t.AccessToken, DefaultAccessTokenLifetime)
	setDuration(&t.IDToken, DefaultIDTokenLifetime)
	setDuration(&t.RefreshToken, DefaultRefreshTokenLifetime)
	setDuration(&t.AuthorizationCode, DefaultAuthorizationCodeLifetime)
	a.DeviceAuthorization.applyDefaults()
	if a.SigningKeys.Algorithm == "" {
		a.SigningKeys.Algorithm = DefaultSigningAlgorithm
	}
	for i := range a.Clients {
		c := &a.Clients[i]
		if c.TokenEndpointAuthMethod == "" {
			c.TokenEndpointAuthMethod = AuthClientSecretBasic
			if c.Secret == "" {
				c.TokenEndpointAuthMethod = AuthNone
			}
		}
		if c.Scopes == nil {
			c.Scopes = slices.Clone(DefaultClientScopes)
		}
		if c.GrantTypes == nil {
			c.GrantTypes = slices.Clone(DefaultGrantTypes)
		}
		if c.Name == "" {
			c.Name = c.ID
		}
	}
}

// Lifetimes returns the client's token lifetimes with the application's
// filling in what the client does not set.
func (a *Application) Lifetimes(c *Client) TokenLifetimes {
	out := c.Tokens
	setDuration(&out.AccessToken, a.Tokens.AccessToken)
	setDuration(&out.IDToken, a.Tokens.IDToken)
	setDuration(&out.RefreshToken, a.Tokens.RefreshToken)
	setDuration(&out.AuthorizationCode, a.Tokens.AuthorizationCode)
	return out
}

// IsPublic reports whether the client has no secret (token endpoint auth
// method "none"): SPAs and native apps.
func (c *Client) IsPublic() bool { return c.TokenEndpointAuthMethod == AuthNone }

func (c *Config) validateClients(ps *problems, a *Application, prefix string) {
	validateLifetimes(ps, a.Tokens, prefix+"tokens")
	validateDeviceAuthorization(ps, a.DeviceAuthorization, prefix+"device_authorization")
	if p := a.SigningKeys.RotationPeriod; p != 0 && p < MinKeyRotationPeriod {
		ps.at(prefix+"signing_keys.rotation_period", "at least %s (or 0 to rotate only with `aero2 keys rotate`)", MinKeyRotationPeriod)
	}
	if alg := a.SigningKeys.Algorithm; !slices.Contains(SigningAlgorithms, alg) {
		ps.at(prefix+"signing_keys.algorithm", "expected one of %s, got %q", strings.Join(SigningAlgorithms, ", "), alg)
	}
	ids := map[string]bool{}
	for i := range a.Clients {
		cl := &a.Clients[i]
		path := indexPath(prefix+"clients", i)
		switch {
		case cl.ID == "":
			ps.at(path+".id", "required")
		case !clientIDRE.MatchString(cl.ID):
			ps.at(path+".id", "expected letters, digits and . _ ~ : @ - (at most 128), got %q", cl.ID)
		case ids[cl.ID]:
			ps.at(path+".id", "client %q is defined twice", cl.ID)
		}
		ids[cl.ID] = true

		switch cl.TokenEndpointAuthMethod {
		case AuthClientSecretBasic, AuthClientSecretPost:
			// Secrets are compared through a fast keyed hash, which is
			// only sound for secrets nobody can guess: demand the length
			// of a generated one.
			if cl.Secret == "" {
				ps.at(path+".secret", "required for %s: a random secret of %d bytes or more, from the environment: secret: \"${CLIENT_SECRET}\" (%s)", cl.TokenEndpointAuthMethod, MinSecretLength, generateHint)
			} else if len(cl.Secret) < MinSecretLength {
				ps.at(path+".secret", "too short: %d bytes, need at least %d (%s)", len(cl.Secret), MinSecretLength, generateHint)
			}
		case AuthNone:
			if cl.Secret != "" {
				ps.at(path+".secret", "a public client (token_endpoint_auth_method: none) has no secret")
			}
			if cl.Introspector {
				ps.at(path+".introspector", "a public client cannot authenticate at the introspection endpoint: only a client with a secret can be an introspector")
			}
		case AuthPrivateKeyJWT:
			// validateClientStandards checks its keys.
		default:
			ps.at(path+".token_endpoint_auth_method", "expected client_secret_basic, client_secret_post, private_key_jwt or none, got %q", cl.TokenEndpointAuthMethod)
		}
		c.validateClientStandards(ps, cl, path)

		grants := map[string]bool{}
		for j, g := range cl.GrantTypes {
			gp := indexPath(path+".grant_types", j)
			switch g {
			case GrantAuthorizationCode, GrantRefreshToken:
			case GrantClientCredentials:
				if cl.IsPublic() {
					ps.at(gp, "client_credentials needs a confidential client (one with a secret or private_key_jwt)")
				}
			case GrantDeviceCode:
			case "implicit", "password":
				ps.at(gp, "the %s grant is not supported (OAuth 2.0 Security BCP): use authorization_code with PKCE", g)
			default:
				ps.at(gp, "expected authorization_code, refresh_token, client_credentials or %s, got %q", GrantDeviceCode, g)
			}
			grants[g] = true
		}
		if len(cl.GrantTypes) == 0 {
			ps.at(path+".grant_types", "at least one grant type")
		}
		if grants[GrantRefreshToken] && !grants[GrantAuthorizationCode] && !grants[GrantDeviceCode] {
			ps.at(path+".grant_types", "refresh_token needs authorization_code or the device code grant (refresh tokens come only from a user's sign-in)")
		}
		if grants[GrantAuthorizationCode] && len(cl.RedirectURIs) == 0 {
			ps.at(path+".redirect_uris", "required for the authorization_code grant: the exact URLs the client receives codes at")
		}
		if !grants[GrantAuthorizationCode] && len(cl.RedirectURIs) > 0 {
			ps.at(path+".redirect_uris", "only clients with the authorization_code grant have redirect URIs")
		}
		for j, u := range cl.RedirectURIs {
			if err := checkRedirectURI(u, cl.IsPublic()); err != nil {
				ps.at(indexPath(path+".redirect_uris", j), "%v", err)
			}
		}
		for j, u := range cl.PostLogoutRedirectURIs {
			if err := checkRedirectURI(u, cl.IsPublic()); err != nil {
				ps.at(indexPath(path+".post_logout_redirect_uris", j), "%v", err)
			}
		}
		for j, s := range cl.Scopes {
			if !scopeRE.MatchString(s) {
				ps.at(indexPath(path+".scopes", j), "expected a scope token (printable ASCII without spaces, quotes or backslashes), got %q", s)
			}
		}
		for j, aud := range cl.Audience {
			if aud == "" || strings.ContainsAny(aud, " \t\r\n") {
				ps.at(indexPath(path+".audience", j), "expected a non-empty audience without spaces, got %q", aud)
			} else if IsAssertionAudience(aud) {
				ps.at(indexPath(path+".audience", j), "%s… is the audience of the proxy's identity assertions: no access token may have it", AssertionAudiencePrefix)
			}
		}
		validateLifetimes(ps, cl.Tokens, path+".tokens")
		if cl.Tokens.AuthorizationCode != 0 {
			ps.at(path+".tokens.authorization_code", "the code lifetime is set per application (tokens.authorization_code), not per client")
		}
	}
}

func validateLifetimes(ps *problems, t TokenLifetimes, path string) {
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"access_token", t.AccessToken}, {"id_token", t.IDToken}, {"refresh_token", t.RefreshToken}, {"authorization_code", t.AuthorizationCode}} {
		if d.v < 0 {
			ps.at(path+"."+d.key, "must not be negative")
		}
	}
	if t.AuthorizationCode > MaxAuthorizationCodeLifetime {
		ps.at(path+".authorization_code", "at most %s (RFC 6749 §4.1.2)", MaxAuthorizationCodeLifetime)
	}
}

// checkRedirectURI accepts what RFC 6749 §3.1.2 and the Security BCP allow
// as a registered redirect URI: absolute, no fragment, matched exactly (so
// no wildcards), https — or http on a loopback host (RFC 8252 §7.3) — or,
// for native (public) clients, a private-use scheme in reverse-domain form
// (RFC 8252 §7.1).
func checkRedirectURI(raw string, public bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return fmt.Errorf("expected an absolute URL, got %q", raw)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return fmt.Errorf("must not have a fragment (RFC 6749 §3.1.2): %q", raw)
	}
	if strings.Contains(raw, "*") {
		return fmt.Errorf("redirect URIs match exactly; wildcards are not supported: %q", raw)
	}
	if u.User != nil {
		return fmt.Errorf("must not carry user info: %q", raw)
	}
	switch u.Scheme {
	case "https":
		if u.Host == "" {
			return fmt.Errorf("expected a host: %q", raw)
		}
	case "http":
		if !IsLoopbackHost(u.Hostname()) {
			return fmt.Errorf("plain http is allowed only on a loopback host (RFC 8252 §7.3); use https: %q", raw)
		}
	default:
		if !public || !strings.Contains(u.Scheme, ".") {
			return fmt.Errorf("expected https (or a reverse-domain private-use scheme such as com.example.app:/cb for a native public client): %q", raw)
		}
		if u.Scheme == "javascript" || u.Scheme == "data" || u.Scheme == "file" {
			return fmt.Errorf("scheme %q is not allowed: %q", u.Scheme, raw)
		}
	}
	return nil
}
