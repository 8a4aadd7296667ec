package keys_test

import (
	"crypto"
	"crypto/rsa"
	"strings"
	"testing"
	"time"

	fjwt "github.com/ory/fosite/token/jwt"

	"github.com/aero2/aero2/authz/keys"
	"github.com/aero2/aero2/authz/keys/ossl"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/memory"
)

// The default signer is OpenSSL's in a binary built with -tags openssl,
// crypto/rsa's otherwise; either way a token is the same bytes as one
// signed by crypto/rsa with the same key and claims (RS256 is
// deterministic), and it verifies. scripts/test runs this package with
// and without the tag.
func TestDefaultSignerMatchesCryptoRSA(t *testing.T) {
	st := memory.New()
	t.Cleanup(func() { st.Close() })
	now := time.Now()
	clk := func() time.Time { return now }
	def, err := keys.NewManager(keys.Options{Store: store.ForApp(st, "a"), EncryptionKey: encKey, Retention: time.Hour, Now: clk})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := keys.NewManager(keys.Options{Store: store.ForApp(st, "a"), EncryptionKey: encKey, Retention: time.Hour, Now: clk,
		WrapSigner: func(k *rsa.PrivateKey) crypto.Signer { return k }})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*keys.Manager{def, plain} {
		if err := m.Load(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	set, _ := def.Set(t.Context())
	switch s := set.Current.Signer.(type) {
	case *ossl.Signer:
		if !ossl.Available {
			t.Fatal("an OpenSSL signer in a binary without OpenSSL")
		}
	case *rsa.PrivateKey:
		if ossl.Available {
			t.Fatal("built with OpenSSL, but the keys sign with crypto/rsa")
		}
	default:
		t.Fatalf("signer %T", s)
	}
	a, b := &keys.JWTSigner{Keys: def}, &keys.JWTSigner{Keys: plain}
	for i, claims := range []fjwt.MapClaims{
		{"sub": "service", "iat": now.Unix()},
		{"sub": "alice", "aud": []string{"x", "y"}, "scope": "openid email", "jti": "0123456789"},
	} {
		got, _, err := a.Generate(t.Context(), claims, &fjwt.Headers{Extra: map[string]any{"typ": "at+jwt"}})
		if err != nil {
			t.Fatal(err)
		}
		want, _, err := b.Generate(t.Context(), claims, &fjwt.Headers{Extra: map[string]any{"typ": "at+jwt"}})
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("token %d: the default signer's differs from crypto/rsa's:\n%s\n%s", i, got, want)
		}
		for _, j := range []*keys.JWTSigner{a, b} {
			if _, _, err := j.Verify(t.Context(), got); err != nil {
				t.Fatalf("token %d does not verify: %v", i, err)
			}
			// A changed payload, or signature, does not.
			dot := strings.LastIndexByte(got, '.')
			for _, bad := range []string{got[:dot-2] + "x" + got[dot-1:], got[:dot+5] + flip(got[dot+5]) + got[dot+6:], got[:dot+1]} {
				if _, _, err := j.Verify(t.Context(), bad); err == nil {
					t.Fatalf("token %d verified with a change: %s", i, bad)
				}
			}
		}
	}
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}
