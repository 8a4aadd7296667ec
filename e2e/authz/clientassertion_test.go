package authz_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/aero2/aero2/store"
)

const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// clientKey is a key a private_key_jwt client signs with.
type clientKey struct {
	priv crypto.Signer
	kid  string
	alg  jose.SignatureAlgorithm
}

func newRSAKey(t testing.TB, kid string) clientKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return clientKey{k, kid, jose.RS256}
}

func newECKey(t testing.TB, kid string) clientKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return clientKey{k, kid, jose.ES256}
}

// publicJWK is the key's public JWK, as JSON.
func (k clientKey) publicJWK(t testing.TB) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Use: "sig"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func jwksJSON(t testing.TB, keys ...clientKey) string {
	t.Helper()
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.publicJWK(t))
	}
	b, _ := json.Marshal(set)
	return string(b)
}

// sign signs claims as the client.
func (k clientKey) sign(t testing.TB, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if k.kid != "" {
		opts = opts.WithHeader("kid", k.kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.priv}, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := josejwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// claimsFor are a valid assertion's claims for client at aud.
func claimsFor(client, aud string) map[string]any {
	now := time.Now()
	return map[string]any{"iss": client, "sub": client, "aud": aud, "jti": randomJTI(),
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
}

func randomJTI() string {
	b := make([]byte, 16)
	rand.Read(b)
	return b64url(b)
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jwksServer serves a JWKS that the test can change, and counts fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	body    string
	fetches atomic.Int32
}

func newJWKSServer(t *testing.T, body string) *jwksServer {
	s := &jwksServer{body: body}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write([]byte(s.body))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(body string) { s.mu.Lock(); s.body = body; s.mu.Unlock() }

// assertionConfig adds two private_key_jwt clients to providerConfig:
// "signer" with inline keys, "rotator" with a jwks_uri.
func assertionConfig(t *testing.T, inline []clientKey, jwksURI string) string {
	// The tests fail client authentication on purpose, more often than
	// client_auth_failures allows.
	return withServerKeys(providerConfig, "  rate_limits:\n    client_auth_failures: {per_address: {unlimited: true}, per_client: {unlimited: true}}\n") + `
  - id: signer
    token_endpoint_auth_method: private_key_jwt
    grant_types: [client_credentials, authorization_code, refresh_token]
    redirect_uris: ["` + webRedirect + `"]
    first_party: true
    scopes: [openid, profile, api:read]
    jwks: ` + jwksJSON(t, inline...) + `
  - id: rotator
    token_endpoint_auth_method: private_key_jwt
    token_endpoint_auth_signing_alg: ES256
    grant_types: [client_credentials]
    scopes: [api:read]
    jwks_uri: "` + jwksURI + `"
`
}

// assertionRequest posts a client_credentials request authenticated by
// assertion (with client_id in the form when id is set).
func (e *env) assertionRequest(path, id, assertion string, extra url.Values) (int, map[string]any) {
	e.t.Helper()
	form := url.Values{"client_assertion_type": {assertionType}, "client_assertion": {assertion}}
	if path == "/oauth2/token" {
		form.Set("grant_type", "client_credentials")
	}
	if id != "" {
		form.Set("client_id", id)
	}
	for k, v := range extra {
		form[k] = v
	}
	status, _, m := e.post(path, form, "", "")
	return status, m
}

// TestPrivateKeyJWT: a client without a secret authenticates with a JWT
// signed by a key of its JWKS, at the token, introspection and revocation
// endpoints; every way an assertion can be wrong is invalid_client.
func TestPrivateKeyJWT(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		k1, k2, other := newRSAKey(t, "k1"), newECKey(t, "k2"), newRSAKey(t, "k1")
		// rotator's set has an RSA key too, which its alg (ES256) forbids.
		ec, rsaKey := newECKey(t, "r1"), newRSAKey(t, "r-rsa")
		js := newJWKSServer(t, jwksJSON(t, ec, rsaKey))
		e := start(t, assertionConfig(t, []clientKey{k1, k2}, js.URL), st)
		tokenURL := e.in.URL + "/oauth2/token"

		// Both keys, aud the token endpoint or the issuer, client_id in
		// the form or not.
		for _, c := range []struct {
			key     clientKey
			aud, id string
		}{{k1, tokenURL, "signer"}, {k2, e.in.URL, ""}, {k1, e.in.URL + "/oauth2/par", "signer"}} {
			status, m := e.assertionRequest("/oauth2/token", c.id, c.key.sign(t, claimsFor("signer", c.aud)), url.Values{"scope": {"api:read"}})
			if status != 200 || m["access_token"] == nil {
				t.Fatalf("assertion by %s for %s: %d %v", c.key.kid, c.aud, status, m)
			}
		}

		refused := func(what string, status int, m map[string]any) {
			t.Helper()
			if status != http.StatusUnauthorized || m["error"] != "invalid_client" {
				t.Errorf("%s: %d %v, want 401 invalid_client", what, status, m)
			}
		}
		// Replay: the same assertion twice.
		a := k1.sign(t, claimsFor("signer", tokenURL))
		if status, m := e.assertionRequest("/oauth2/token", "signer", a, nil); status != 200 {
			t.Fatalf("first use: %d %v", status, m)
		}
		status, m := e.assertionRequest("/oauth2/token", "signer", a, nil)
		refused("replayed jti", status, m)
		// The same jti in a fresh assertion.
		c := claimsFor("signer", tokenURL)
		c["jti"] = "fixed-jti"
		e.assertionRequest("/oauth2/token", "signer", k1.sign(t, c), nil)
		c["exp"] = time.Now().Add(2 * time.Minute).Unix()
		status, m = e.assertionRequest("/oauth2/token", "signer", k1.sign(t, c), nil)
		refused("reused jti in a new assertion", status, m)

		mutate := func(f func(map[string]any)) string {
			c := claimsFor("signer", tokenURL)
			f(c)
			return k1.sign(t, c)
		}
		for _, bad := range []struct {
			what      string
			assertion string
		}{
			{"wrong aud", mutate(func(c map[string]any) { c["aud"] = "https://other.example/token" })},
			{"aud of the introspection endpoint", mutate(func(c map[string]any) { c["aud"] = e.in.URL + "/oauth2/introspect" })},
			{"no aud", mutate(func(c map[string]any) { delete(c, "aud") })},
			{"expired", mutate(func(c map[string]any) { c["exp"] = time.Now().Add(-2 * time.Minute).Unix() })},
			{"no exp", mutate(func(c map[string]any) { delete(c, "exp") })},
			{"exp an hour ahead", mutate(func(c map[string]any) { c["exp"] = time.Now().Add(time.Hour).Unix() })},
			{"nbf in the future", mutate(func(c map[string]any) { c["nbf"] = time.Now().Add(10 * time.Minute).Unix() })},
			{"no jti", mutate(func(c map[string]any) { delete(c, "jti") })},
			{"iss another client", mutate(func(c map[string]any) { c["iss"] = "web" })},
			{"sub another client", mutate(func(c map[string]any) { c["sub"] = "rotator" })},
			{"key not in the JWKS (same kid)", other.sign(t, claimsFor("signer", tokenURL))},
			{"unknown kid", clientKey{other.priv, "k9", jose.RS256}.sign(t, claimsFor("signer", tokenURL))},
			{"no kid, key not in the JWKS", clientKey{other.priv, "", jose.RS256}.sign(t, claimsFor("signer", tokenURL))},
			{"HS256", hs256(t, claimsFor("signer", tokenURL))},
			{"alg none", algNone(claimsFor("signer", tokenURL))},
			{"garbage", "not.a.jwt"},
		} {
			status, m := e.assertionRequest("/oauth2/token", "signer", bad.assertion, nil)
			refused(bad.what, status, m)
		}
		// A valid assertion of signer presented as another client.
		status, m = e.assertionRequest("/oauth2/token", "web", k1.sign(t, claimsFor("signer", tokenURL)), nil)
		refused("client_id not the assertion's sub", status, m)
		// The client's secret-less account cannot be used with a secret,
		// and an assertion cannot be mixed with another method.
		status, _, m = e.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, "signer", "anything-at-all-0123456789abcdef")
		refused("private_key_jwt client with a secret", status, m)
		status, _, m = e.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {assertionType},
			"client_assertion": {k1.sign(t, claimsFor("signer", tokenURL))}}, "web", webSecret)
		if status != 400 || m["error"] != "invalid_request" {
			t.Errorf("assertion and HTTP Basic together: %d %v", status, m)
		}
		status, m = e.assertionRequest("/oauth2/token", "signer", k1.sign(t, claimsFor("signer", tokenURL)), url.Values{"client_assertion_type": {"urn:example:other"}})
		refused("unknown client_assertion_type", status, m)
		// A secret client cannot authenticate with an assertion.
		status, m = e.assertionRequest("/oauth2/token", "web", clientKey{k1.priv, "k1", jose.RS256}.sign(t, claimsFor("web", tokenURL)), nil)
		refused("assertion for a client_secret_basic client", status, m)

		// Introspection and revocation take assertions too.
		status, m = e.assertionRequest("/oauth2/token", "signer", k1.sign(t, claimsFor("signer", tokenURL)), url.Values{"scope": {"api:read"}})
		if status != 200 {
			t.Fatalf("token: %d %v", status, m)
		}
		at := m["access_token"].(string)
		status, m = e.assertionRequest("/oauth2/introspect", "signer", k1.sign(t, claimsFor("signer", e.in.URL)), url.Values{"token": {at}})
		if status != 200 || m["active"] != true || m["client_id"] != "signer" {
			t.Fatalf("introspection by assertion: %d %v", status, m)
		}
		status, m = e.assertionRequest("/oauth2/introspect", "signer", k1.sign(t, claimsFor("signer", "https://elsewhere.example")), url.Values{"token": {at}})
		refused("introspection with a wrong aud", status, m)
		status, m = e.assertionRequest("/oauth2/revoke", "signer", k1.sign(t, claimsFor("signer", e.in.URL)), url.Values{"token": {at}})
		if status != 200 {
			t.Fatalf("revocation by assertion: %d %v", status, m)
		}
		if in := e.introspect(at); in["active"] != false {
			t.Fatal("token revoked by an assertion-authenticated client is still active")
		}

		// jwks_uri: fetched once, then cached; a new kid triggers one
		// refetch (the client rotated), a second unknown kid right after
		// does not; the client's alg (ES256) is enforced.
		status, m = e.assertionRequest("/oauth2/token", "rotator", ec.sign(t, claimsFor("rotator", tokenURL)), nil)
		if status != 200 {
			t.Fatalf("jwks_uri client: %d %v", status, m)
		}
		e.assertionRequest("/oauth2/token", "rotator", ec.sign(t, claimsFor("rotator", tokenURL)), nil)
		if n := js.fetches.Load(); n != 1 {
			t.Fatalf("jwks_uri fetched %d times for two assertions, want 1", n)
		}
		rotated := newECKey(t, "r2")
		js.set(jwksJSON(t, ec, rotated, rsaKey))
		if status, m := e.assertionRequest("/oauth2/token", "rotator", rotated.sign(t, claimsFor("rotator", tokenURL)), nil); status != 200 {
			t.Fatalf("assertion with a rotated-in key: %d %v", status, m)
		}
		if n := js.fetches.Load(); n != 2 {
			t.Fatalf("jwks_uri fetched %d times after a new kid, want 2", n)
		}
		status, m = e.assertionRequest("/oauth2/token", "rotator", newECKey(t, "r3").sign(t, claimsFor("rotator", tokenURL)), nil)
		refused("unknown kid at a jwks_uri client", status, m)
		if n := js.fetches.Load(); n != 2 {
			t.Fatalf("jwks_uri fetched %d times: an unknown kid right after a refresh must not fetch again", n)
		}
		status, m = e.assertionRequest("/oauth2/token", "rotator", rsaKey.sign(t, claimsFor("rotator", tokenURL)), nil)
		refused("RS256 (by a key of its JWKS) for a client registered with ES256", status, m)
	})
}

// hs256 signs claims with a symmetric key: what an attacker tries when a
// verifier might use a public key as an HMAC secret.
func hs256(t *testing.T, claims map[string]any) string {
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte("0123456789abcdef0123456789abcdef")}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := josejwt.Signed(s).Claims(claims).Serialize()
	return tok
}

func algNone(claims map[string]any) string {
	h, _ := json.Marshal(map[string]string{"alg": "none", "kid": "k1"})
	c, _ := json.Marshal(claims)
	return b64url(h) + "." + b64url(c) + "."
}
