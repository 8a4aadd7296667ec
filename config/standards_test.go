package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"math/big"
	"strings"
	"testing"
)

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func rsaJWK(t *testing.T, bits int) (n, e string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return b64(k.N.Bytes()), b64(big.NewInt(int64(k.E)).Bytes())
}

func TestStandardsClientKeys(t *testing.T) {
	n, e := rsaJWK(t, 2048)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecb, _ := ec.PublicKey.Bytes() // 0x04 || X || Y
	x, y := b64(ecb[1:33]), b64(ecb[33:])
	src := validBase + `
insecure_dev: true
device_authorization: {lifetime: 2h, poll_interval: 500ms}
clients:
  - id: jwt-ok
    token_endpoint_auth_method: private_key_jwt
    token_endpoint_auth_signing_alg: ES256
    grant_types: [client_credentials]
    jwks:
      keys:
        - {kty: RSA, kid: r1, n: "` + n + `", e: "` + e + `"}
        - {kty: EC, kid: e1, crv: P-256, x: "` + x + `", y: "` + y + `", use: sig}
  - id: jwt-uri
    token_endpoint_auth_method: private_key_jwt
    jwks_uri: http://127.0.0.1:9999/jwks
    grant_types: [client_credentials]
  - id: jwt-bad
    token_endpoint_auth_method: private_key_jwt
    secret: "` + clientSecret + `"
    token_endpoint_auth_signing_alg: HS256
    grant_types: [client_credentials]
    jwks:
      keys:
        - {kty: RSA, kid: a, n: "` + n + `", e: "` + e + `", d: "AQAB"}
        - {kty: RSA, kid: a, n: "` + n + `", e: "` + e + `", alg: ES256}
        - {kty: oct, kid: c, k: "AAAA"}
        - {kty: RSA, kid: d, n: "` + n + `", e: "` + e + `", use: enc}
  - id: jwt-none
    token_endpoint_auth_method: private_key_jwt
    grant_types: [client_credentials]
  - id: jwt-both
    token_endpoint_auth_method: private_key_jwt
    jwks_uri: http://keys.example.com/jwks
    jwks: {keys: []}
    grant_types: [client_credentials]
  - id: secret-with-keys
    secret: "` + clientSecret + `"
    jwks_uri: https://keys.example.com/jwks
    token_endpoint_auth_signing_alg: RS256
    grant_types: [client_credentials]
  - id: pairwise-two-hosts
    subject_type: pairwise
    redirect_uris: [https://a.example.com/cb, https://b.example.com/cb]
  - id: pairwise-sector
    subject_type: pairwise
    sector_identifier_uri: https://sector.example.com/uris.json
    redirect_uris: [https://a.example.com/cb, https://b.example.com/cb]
  - id: odd-subject
    subject_type: secret
    sector_identifier_uri: ftp://x.example.com/
    redirect_uris: [https://a.example.com/cb]
  - id: tv
    grant_types: [` + GrantDeviceCode + `, refresh_token]
  - id: public-sector
    subject_type: public
    sector_identifier_uri: https://sector.example.com/uris.json
    redirect_uris: [https://a.example.com/cb]
`
	got := parseProblems(t, src, noEnv)
	for _, w := range []string{
		`aero2.yaml:12:24: device_authorization.lifetime: between 1m and 30m0s`,
		`aero2.yaml:12:38: device_authorization.poll_interval: a whole number of seconds between 1s and 1m`,
		`aero2.yaml:28:5: clients[2].secret: a private_key_jwt client has no secret`,
		`aero2.yaml:29:5: clients[2].token_endpoint_auth_signing_alg: expected one of RS256`,
		`aero2.yaml:33:11: clients[2].jwks.keys[0]: a private or symmetric key`,
		`aero2.yaml:34:11: clients[2].jwks.keys[1]: alg "ES256" does not fit this key`,
		`aero2.yaml:34:22: clients[2].jwks.keys[1].kid: kid "a" is used by two keys`,
		`aero2.yaml:35:11: clients[2].jwks.keys[2]: a private or symmetric key`,
		`aero2.yaml:36:11: clients[2].jwks.keys[3]: use "enc"`,
		`aero2.yaml:37:5: clients[3].jwks: private_key_jwt needs the client's public keys`,
		`aero2.yaml:42:5: clients[4].jwks_uri: give jwks or jwks_uri, not both`,
		`aero2.yaml:47:5: clients[5].jwks_uri: only a private_key_jwt client has keys`,
		`aero2.yaml:48:5: clients[5].token_endpoint_auth_signing_alg: only for token_endpoint_auth_method: private_key_jwt`,
		`aero2.yaml:52:5: clients[6].redirect_uris: redirect URIs on 2 hosts (a.example.com, b.example.com): a pairwise client needs a sector_identifier_uri`,
		`aero2.yaml:58:5: clients[8].subject_type: expected public or pairwise, got "secret"`,
		`aero2.yaml:65:5: clients[10].sector_identifier_uri: only for subject_type: pairwise`,
	} {
		wantProblem(t, got, w)
	}
	for _, g := range got {
		for _, ok := range []string{"clients[0]", "clients[1]", "clients[7]", "clients[9]"} {
			if strings.Contains(g, ok+".") {
				t.Errorf("valid client refused: %s", g)
			}
		}
	}
	wantProblem(t, got, `aero2.yaml:42:5: clients[4].jwks_uri: expected https (plain http only on a loopback host with insecure_dev: true): "http://keys.example.com/jwks"`)
	got = parseProblems(t, validBase+`
clients:
  - id: c
    token_endpoint_auth_method: private_key_jwt
    jwks_uri: http://127.0.0.1/jwks
    grant_types: [client_credentials]
  - id: d
    token_endpoint_auth_method: private_key_jwt
    grant_types: [client_credentials]
    jwks: {keys: [{kty: RSA, kid: small, n: "`+mustSmallN(t)+`", e: AQAB}]}
`, noEnv)
	wantProblem(t, got, `clients[0].jwks_uri: expected https (plain http only on a loopback host with insecure_dev: true)`)
	wantProblem(t, got, `clients[1].jwks.keys[0]: an RSA key of 1024 bits: at least 2048`)
}

func mustSmallN(t *testing.T) string { n, _ := rsaJWK(t, 1024); return n }

func TestStandardsDefaults(t *testing.T) {
	cfg, err := Parse("x", []byte(validBase+`
clients:
  - id: tv
    grant_types: [`+GrantDeviceCode+`]
  - id: pw
    subject_type: pairwise
    redirect_uris: [https://App.Example.com/cb, https://app.example.com/other]
`), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	app := cfg.Apps()[0]
	if d := app.DeviceAuthorization; d.Lifetime != DefaultDeviceCodeLifetime || d.PollInterval != DefaultDevicePollInterval {
		t.Errorf("device defaults %+v", d)
	}
	if h := app.Clients[1].SectorHost(); h != "app.example.com" {
		t.Errorf("sector host %q", h)
	}
}
