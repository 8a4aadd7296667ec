package keys_test

import (
	"crypto/rand"
	"crypto/rsa"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v3"
	fjwt "github.com/ory/fosite/token/jwt"

	"github.com/aero2/aero2/authz/keys"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/memory"
)

// Generate writes the compact JWS itself, once; the bytes must be what
// fosite's SignedString (go-jose) wrote for the same key, header and
// claims, so that no relying party sees a change: the same JSON (keys in
// order, HTML characters escaped, numbers alike) and the same signature
// (RS256 is deterministic).
func TestGenerateWritesWhatGoJoseWrote(t *testing.T) {
	var first *rsa.PrivateKey
	st := memory.New()
	t.Cleanup(func() { st.Close() })
	m, err := keys.NewManager(keys.Options{Store: store.ForApp(st, "a"), EncryptionKey: encKey, Retention: time.Hour,
		Generate: func() (*rsa.PrivateKey, error) {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if first == nil {
				first = k // the current key: generated first
			}
			return k, err
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	set, _ := m.Set(t.Context())
	j := &keys.JWTSigner{Keys: m}
	for i, c := range []struct {
		claims fjwt.MapClaims
		header fjwt.Mapper
	}{
		{fjwt.MapClaims{"sub": "service", "iat": int64(1764600000), "exp": 1764603600, "scope": "api"}, &fjwt.Headers{Extra: map[string]any{"typ": "at+jwt"}}},
		{fjwt.MapClaims{"sub": "a<b>&c", "name": "Zoë 名前 \u2028", "aud": []string{"x", "y"}, "cnf": map[string]any{"jkt": "abc"},
			"email_verified": true, "amr": nil, "f": 1.5, "big": 1e21, "n": -7}, nil},
		{fjwt.MapClaims{}, &fjwt.Headers{Extra: map[string]any{"kid": "forged", "alg": "none", "typ": "logout+jwt", "x": 1}}},
		{nil, &fjwt.Headers{}},
		// An ID token session's header, and headers that hold only a typ:
		// written from a struct (plainHeader), the same bytes.
		{fjwt.MapClaims{"sub": "u"}, &fjwt.Headers{Extra: map[string]any{"alg": "RS256"}}},
		{fjwt.MapClaims{"sub": "u"}, &fjwt.Headers{Extra: map[string]any{"typ": "a<b>&\u2028", "kid": "forged"}}},
		{fjwt.MapClaims{"sub": "u"}, &fjwt.Headers{Extra: map[string]any{"typ": ""}}},
		{fjwt.MapClaims{"sub": "u"}, &fjwt.Headers{Extra: map[string]any{"typ": 7}}},
		// ID tokens' claims (fosite's IDTokenClaims.ToMap and the user's
		// claims), unknown claims, and nil ones.
		{(&fjwt.IDTokenClaims{Issuer: "https://i", Subject: "s", Audience: []string{"web"}, JTI: "j", Nonce: "n<>",
			IssuedAt: time.Unix(1764600000, 0), ExpiresAt: time.Unix(1764603600, 0), RequestedAt: time.Unix(1764599990, 0),
			AuthTime: time.Unix(1764599000, 0), AccessTokenHash: "ah", CodeHash: "ch", AuthenticationContextClassReference: "0",
			AuthenticationMethodsReferences: []string{"pwd"}, Extra: map[string]any{"email": "a@example.com", "email_verified": false,
				"name": "Zoë \u2028", "picture": "", "preferred_username": "a&b", "groups": []string{}, "sid": "sid"}}).ToMapClaims(),
			&fjwt.Headers{Extra: map[string]any{"alg": "RS256"}}},
		{(&fjwt.IDTokenClaims{Subject: "s", Extra: map[string]any{"groups": []string{"g1", "g2"}, "email_verified": true}}).ToMapClaims(), &fjwt.Headers{}},
		{fjwt.MapClaims{"sub": "s", "zz": 1}, &fjwt.Headers{}},
		{fjwt.MapClaims{"sub": "s", "name": nil, "email": ""}, &fjwt.Headers{}},
		{fjwt.MapClaims{"sub": "", "aud": []string{}, "exp": 0, "email_verified": false}, nil},
	} {
		got, sig, err := j.Generate(t.Context(), c.claims, c.header)
		if err != nil {
			t.Fatal(err)
		}
		ref := fjwt.NewWithClaims(jose.RS256, c.claims)
		if c.claims == nil {
			ref.Claims = fjwt.MapClaims{}
		}
		if c.header != nil {
			for k, v := range c.header.ToMap() {
				if k != "kid" && k != "alg" {
					ref.Header[k] = v
				}
			}
		}
		want, err := ref.SignedString(&jose.JSONWebKey{Key: first, KeyID: set.Current.ID})
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("token %d:\n got %s\nwant %s", i, got, want)
		}
		if want[len(want)-len(sig):] != sig || sig == "" {
			t.Errorf("token %d: signature part %q", i, sig)
		}
		if _, _, err := j.Verify(t.Context(), got); err != nil {
			t.Errorf("token %d does not verify: %v", i, err)
		}
	}
}
