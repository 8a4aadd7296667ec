package config

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Client authentication with a signed JWT (RFC 7523 §2.2, OIDC Core §9),
// and the grant of devices without a browser (RFC 8628).
const (
	AuthPrivateKeyJWT = "private_key_jwt"
	GrantDeviceCode   = "urn:ietf:params:oauth:grant-type:device_code"
)

// Subject types (OIDC Core §8).
const (
	SubjectPublic   = "public"
	SubjectPairwise = "pairwise"
)

// AssertionAlgs are the algorithms a client may sign its private_key_jwt
// assertions with: asymmetric only (no HS*, which would need a shared
// secret, and never none).
var AssertionAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// minRSABits: smaller RSA keys are factorable (NIST SP 800-131A).
const minRSABits = 2048

// JWKS is a client's public key set, written in YAML with the JWK
// member names (RFC 7517). Private members are accepted by the schema only
// to refuse them with a clear message.
type JWKS struct {
	Keys []JWK `yaml:"keys"`
}

// JWK is one public key (RFC 7517 §4, RFC 7518 §6).
type JWK struct {
	Kty string `yaml:"kty" json:"kty"`
	Kid string `yaml:"kid" json:"kid,omitempty"`
	Use string `yaml:"use" json:"use,omitempty"`
	Alg string `yaml:"alg" json:"alg,omitempty"`
	Crv string `yaml:"crv" json:"crv,omitempty"`
	N   string `yaml:"n" json:"n,omitempty"`
	E   string `yaml:"e" json:"e,omitempty"`
	X   string `yaml:"x" json:"x,omitempty"`
	Y   string `yaml:"y" json:"y,omitempty"`
	// Private or symmetric members: always refused.
	D  string `yaml:"d" json:"d,omitempty"`
	P  string `yaml:"p" json:"p,omitempty"`
	Q  string `yaml:"q" json:"q,omitempty"`
	DP string `yaml:"dp" json:"dp,omitempty"`
	DQ string `yaml:"dq" json:"dq,omitempty"`
	QI string `yaml:"qi" json:"qi,omitempty"`
	K  string `yaml:"k" json:"k,omitempty"`
}

// JSONWebKeySet converts the keys (already validated) for go-jose.
func (s *JWKS) JSONWebKeySet() (*jose.JSONWebKeySet, error) {
	out := &jose.JSONWebKeySet{}
	for i, k := range s.Keys {
		jk, err := k.parse()
		if err != nil {
			return nil, fmt.Errorf("keys[%d]: %w", i, err)
		}
		out.Keys = append(out.Keys, jk)
	}
	return out, nil
}

func (k JWK) parse() (jose.JSONWebKey, error) {
	var jk jose.JSONWebKey
	if k.D != "" || k.P != "" || k.Q != "" || k.DP != "" || k.DQ != "" || k.QI != "" || k.K != "" {
		return jk, fmt.Errorf("a private or symmetric key: configure only the public part (kty, kid, n and e, or crv, x and y)")
	}
	data, _ := json.Marshal(k)
	if err := jk.UnmarshalJSON(data); err != nil {
		return jk, fmt.Errorf("not a valid public JWK: %v", err)
	}
	return jk, CheckAssertionKey(jk)
}

// CheckAssertionKey accepts a public signing key that can verify one of
// AssertionAlgs: RSA of 2048 bits or more, EC on P-256/384/521, Ed25519;
// use absent or "sig"; alg, if named, one of AssertionAlgs that fits the
// key. The same rule holds for keys fetched from a jwks_uri.
func CheckAssertionKey(k jose.JSONWebKey) error {
	if !k.IsPublic() {
		return fmt.Errorf("a private key: configure only the public part")
	}
	if k.Use != "" && k.Use != "sig" {
		return fmt.Errorf("use %q: a client assertion key has use sig (or none)", k.Use)
	}
	var fits []string
	switch pub := k.Key.(type) {
	case *rsa.PublicKey:
		if pub.N.BitLen() < minRSABits {
			return fmt.Errorf("an RSA key of %d bits: at least %d", pub.N.BitLen(), minRSABits)
		}
		fits = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	case *ecdsa.PublicKey:
		fits = []string{map[int]string{256: "ES256", 384: "ES384", 521: "ES512"}[pub.Curve.Params().BitSize]}
	case ed25519.PublicKey:
		fits = []string{"EdDSA"}
	default:
		return fmt.Errorf("key type %T cannot sign client assertions", k.Key)
	}
	if k.Algorithm != "" && !slices.Contains(fits, k.Algorithm) {
		return fmt.Errorf("alg %q does not fit this key (expected one of %s)", k.Algorithm, strings.Join(fits, ", "))
	}
	return nil
}

// DeviceAuthorization configures the device flow (RFC 8628).
type DeviceAuthorization struct {
	// Lifetime of a device code and its user code. Default 10m.
	Lifetime time.Duration `yaml:"lifetime"`
	// PollInterval is the shortest wait between two token requests for
	// one device code (RFC 8628 §3.2 interval); faster polls are answered
	// slow_down. Default 5s.
	PollInterval time.Duration `yaml:"poll_interval"`
}

// Device flow defaults and bounds.
const (
	DefaultDeviceCodeLifetime = 10 * time.Minute
	MaxDeviceCodeLifetime     = 30 * time.Minute
	DefaultDevicePollInterval = 5 * time.Second
	MinDevicePollInterval     = time.Second
)

func (d *DeviceAuthorization) applyDefaults() {
	setDuration(&d.Lifetime, DefaultDeviceCodeLifetime)
	setDuration(&d.PollInterval, DefaultDevicePollInterval)
}

func validateDeviceAuthorization(ps *problems, d DeviceAuthorization, path string) {
	if d.Lifetime < time.Minute || d.Lifetime > MaxDeviceCodeLifetime {
		ps.at(path+".lifetime", "between 1m and %s", MaxDeviceCodeLifetime)
	}
	if d.PollInterval < MinDevicePollInterval || d.PollInterval > time.Minute || d.PollInterval%time.Second != 0 {
		ps.at(path+".poll_interval", "a whole number of seconds between %s and 1m", MinDevicePollInterval)
	}
}

// validateClientStandards checks a client's keys for private_key_jwt, PAR
// and pairwise subjects.
func (c *Config) validateClientStandards(ps *problems, cl *Client, path string) {
	jwt := cl.TokenEndpointAuthMethod == AuthPrivateKeyJWT
	switch {
	case jwt && cl.JWKS == nil && cl.JWKSURI == "":
		ps.at(path+".jwks", "private_key_jwt needs the client's public keys: jwks (inline) or jwks_uri")
	case jwt && cl.JWKS != nil && cl.JWKSURI != "":
		ps.at(path+".jwks_uri", "give jwks or jwks_uri, not both")
	case !jwt && cl.JWKS != nil:
		ps.at(path+".jwks", "only a private_key_jwt client has keys (token_endpoint_auth_method: private_key_jwt)")
	case !jwt && cl.JWKSURI != "":
		ps.at(path+".jwks_uri", "only a private_key_jwt client has keys (token_endpoint_auth_method: private_key_jwt)")
	}
	if jwt && cl.Secret != "" {
		ps.at(path+".secret", "a private_key_jwt client has no secret: it proves itself with its key")
	}
	if cl.JWKS != nil {
		if len(cl.JWKS.Keys) == 0 {
			ps.at(path+".jwks.keys", "at least one key")
		}
		kids := map[string]bool{}
		for i, k := range cl.JWKS.Keys {
			kp := indexPath(path+".jwks.keys", i)
			if _, err := k.parse(); err != nil {
				ps.at(kp, "%v", err)
			}
			if kids[k.Kid] {
				ps.at(kp+".kid", "kid %q is used by two keys: assertions name their key by kid", k.Kid)
			}
			kids[k.Kid] = true
		}
	}
	if cl.JWKSURI != "" {
		if err := c.checkFetchURL(cl.JWKSURI); err != nil {
			ps.at(path+".jwks_uri", "%v", err)
		}
	}
	if a := cl.TokenEndpointAuthSigningAlg; a != "" {
		if !jwt {
			ps.at(path+".token_endpoint_auth_signing_alg", "only for token_endpoint_auth_method: private_key_jwt")
		} else if !slices.Contains(AssertionAlgs, a) {
			ps.at(path+".token_endpoint_auth_signing_alg", "expected one of %s, got %q", strings.Join(AssertionAlgs, ", "), a)
		}
	}

	if cl.BackchannelLogoutURI != "" {
		if err := c.checkFetchURL(cl.BackchannelLogoutURI); err != nil {
			ps.at(path+".backchannel_logout_uri", "%v", err)
		}
	} else if cl.BackchannelLogoutSessionRequired {
		ps.at(path+".backchannel_logout_session_required", "only with a backchannel_logout_uri")
	}

	switch cl.SubjectType {
	case "", SubjectPublic:
		if cl.SectorIdentifierURI != "" {
			ps.at(path+".sector_identifier_uri", "only for subject_type: pairwise")
		}
	case SubjectPairwise:
		if cl.SectorIdentifierURI != "" {
			if err := c.checkFetchURL(cl.SectorIdentifierURI); err != nil {
				ps.at(path+".sector_identifier_uri", "%v", err)
			}
		} else if hosts := redirectHosts(cl.RedirectURIs); len(hosts) > 1 {
			// OIDC Core §8.1: the sector is the redirect URIs' host, so
			// there must be one, or a sector_identifier_uri listing them.
			ps.at(path+".redirect_uris", "redirect URIs on %d hosts (%s): a pairwise client needs a sector_identifier_uri listing them (OIDC Core §8.1)", len(hosts), strings.Join(hosts, ", "))
		}
	default:
		ps.at(path+".subject_type", "expected public or pairwise, got %q", cl.SubjectType)
	}
}

// checkFetchURL accepts a URL Aero2 fetches on a client's behalf (a
// jwks_uri, a sector_identifier_uri): https, or plain http on a loopback
// host with insecure_dev. No user info, no fragment.
func (c *Config) checkFetchURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("expected an absolute https URL, got %q", raw)
	}
	if u.User != nil || u.Fragment != "" {
		return fmt.Errorf("must not have user info or a fragment: %q", raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !IsLoopbackHost(u.Hostname()) || !c.InsecureDev {
			return fmt.Errorf("expected https (plain http only on a loopback host with insecure_dev: true): %q", raw)
		}
	default:
		return fmt.Errorf("expected an https URL, got %q", raw)
	}
	return nil
}

// redirectHosts lists the distinct hosts of redirect URIs.
func redirectHosts(uris []string) []string {
	var out []string
	for _, raw := range uris {
		if u, err := url.Parse(raw); err == nil && !slices.Contains(out, strings.ToLower(u.Hostname())) {
			out = append(out, strings.ToLower(u.Hostname()))
		}
	}
	return out
}

// SectorHost is the host a pairwise client's subjects are computed for,
// when it has no sector_identifier_uri: its redirect URIs' one host, or
// "" for a client without redirect URIs.
func (cl *Client) SectorHost() string {
	if cl.SectorIdentifierURI != "" {
		if u, err := url.Parse(cl.SectorIdentifierURI); err == nil {
			return strings.ToLower(u.Hostname())
		}
	}
	if hosts := redirectHosts(cl.RedirectURIs); len(hosts) > 0 {
		return hosts[0]
	}
	return ""
}
