package keys_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v3"

	"github.com/aero2/aero2/authz/keys"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/memory"
	"github.com/aero2/aero2/store/storetest"
)

func newAlgManager(t *testing.T, st store.Store, app string, c *clock, alg jose.SignatureAlgorithm) *keys.Manager {
	t.Helper()
	m, err := keys.NewManager(keys.Options{Store: store.ForApp(st, app), EncryptionKey: encKey, Retention: time.Hour, Now: c.Now, Algorithm: alg})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	return m
}

// Each algorithm: the keys are of its family, the JWKS says so (kty, crv,
// alg), tokens carry it, and a standard verifier (go-jose, given only the
// published JWKS) accepts them.
func TestAlgorithms(t *testing.T) {
	want := map[jose.SignatureAlgorithm]struct{ kty, crv string }{
		jose.RS256: {"RSA", ""}, jose.ES256: {"EC", "P-256"}, jose.EdDSA: {"OKP", "Ed25519"},
	}
	stores(t, func(t *testing.T, st store.Store) {
		for _, alg := range keys.Algorithms {
			t.Run(string(alg), func(t *testing.T) {
				m := newAlgManager(t, st, storetest.App(t), &clock{now: time.Now()}, alg)
				set, _ := m.Set(t.Context())
				for _, k := range set.All() {
					if k.Alg != alg {
						t.Fatalf("key %s is %s, want %s", k.ID, k.Alg, alg)
					}
					if (k.Public != nil) != (alg == jose.RS256) {
						t.Fatalf("Key.Public is the RSA key only: %T", k.Public)
					}
				}
				jwks, err := m.JWKS(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				raw, _ := json.Marshal(jwks)
				var pub struct {
					Keys []map[string]any `json:"keys"`
				}
				json.Unmarshal(raw, &pub)
				for _, k := range pub.Keys {
					if k["kty"] != want[alg].kty || k["alg"] != string(alg) || k["use"] != "sig" || k["d"] != nil {
						t.Fatalf("JWKS key %v: want a public %s key of kty %s", k, alg, want[alg].kty)
					}
					if c := want[alg].crv; c != "" && k["crv"] != c {
						t.Fatalf("JWKS key %v: want crv %s", k, c)
					}
				}

				tok := sign(t, m)
				if h := header(t, tok); h["alg"] != string(alg) || h["kid"] != set.Current.ID {
					t.Fatalf("header %v: want alg %s and kid %s", h, alg, set.Current.ID)
				}
				jws, err := jose.ParseSigned(tok)
				if err != nil {
					t.Fatal(err)
				}
				var published jose.JSONWebKeySet
				json.Unmarshal(raw, &published)
				if _, err := jws.Verify(published.Key(set.Current.ID)[0]); err != nil {
					t.Fatalf("go-jose with the published key: %v", err)
				}
				signer := &keys.JWTSigner{Keys: m}
				if _, err := signer.Decode(t.Context(), tok); err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if _, _, err := signer.Verify(t.Context(), tok); err != nil {
					t.Fatalf("Verify: %v", err)
				}
				wantHash := 32
				if alg == jose.EdDSA {
					wantHash = 64 // SHA-512, for at_hash (OIDC Core §3.1.3.6)
				}
				if h, _ := signer.Hash(t.Context(), []byte("x")); len(h) != wantHash || signer.GetSigningMethodLength(t.Context()) != wantHash {
					t.Fatalf("hash of %s: %d bytes, want %d", alg, len(h), wantHash)
				}
			})
		}
	})
}

// A token is verified only in its key's algorithm: a signature of another
// family made under a published kid is refused even when it would verify
// with some key (here: an RS256 signature by a key whose kid is the EC
// key's — the kid names a key, and the key names its algorithm).
func TestAlgorithmBoundToKey(t *testing.T) {
	st := memory.New()
	defer st.Close()
	c := &clock{now: time.Now()}
	ec := newAlgManager(t, st, storetest.App(t), c, jose.ES256)
	set, _ := ec.Set(t.Context())
	signer := &keys.JWTSigner{Keys: ec}

	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	otherEC, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	forge := func(alg jose.SignatureAlgorithm, key any) string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", set.Current.ID).WithType("at+jwt"))
		if err != nil {
			t.Fatal(err)
		}
		obj, _ := s.Sign([]byte(`{"sub":"mallory","exp":` + jsonNum(time.Now().Add(time.Hour).Unix()) + `}`))
		out, _ := obj.CompactSerialize()
		return out
	}
	for name, tok := range map[string]string{
		"RS256 under the EC kid": forge(jose.RS256, rsaKey),
		"EdDSA under the EC kid": forge(jose.EdDSA, edKey),
		"ES256 by another key":   forge(jose.ES256, otherEC),
		"HS256 under the EC kid": forge(jose.HS256, []byte(strings.Repeat("k", 32))),
	} {
		if _, err := signer.Decode(t.Context(), tok); err == nil {
			t.Errorf("Decode accepted %s", name)
		}
		if _, _, err := signer.Verify(t.Context(), tok); err == nil {
			t.Errorf("Verify accepted %s", name)
		}
	}
	if _, err := signer.Decode(t.Context(), sign(t, ec)); err != nil {
		t.Fatalf("genuine ES256 token: %v", err)
	}
}

func jsonNum(n int64) string { b, _ := json.Marshal(n); return string(b) }

// Changing the algorithm is a rotation: at start-up the next key (which
// signed nothing) is replaced by one of the new algorithm and published;
// the current key signs on in its own until the rotation; tokens of the
// old algorithm verify until their key retires.
func TestAlgorithmChangeRotates(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		app := storetest.App(t)
		c := &clock{now: time.Now()}
		rs := newAlgManager(t, st, app, c, jose.RS256)
		before, _ := rs.Set(t.Context())
		old := sign(t, rs)

		ed := newAlgManager(t, st, app, c, jose.EdDSA) // a restart with algorithm: EdDSA
		s, _ := ed.Set(t.Context())
		if s.Current.ID != before.Current.ID || s.Current.Alg != jose.RS256 {
			t.Fatalf("the current key changed at start-up: %s %s", s.Current.ID, s.Current.Alg)
		}
		if s.Next.ID == before.Next.ID || s.Next.Alg != jose.EdDSA {
			t.Fatalf("next key %s is %s, want a new EdDSA key", s.Next.ID, s.Next.Alg)
		}
		if h := header(t, sign(t, ed)); h["alg"] != "RS256" {
			t.Fatalf("before the rotation tokens are signed %v, want RS256", h["alg"])
		}
		// A second start keeps the replaced next key.
		if again, _ := newAlgManager(t, st, app, c, jose.EdDSA).Set(t.Context()); again.Next.ID != s.Next.ID {
			t.Fatal("a second start replaced the next key again")
		}

		after, err := ed.Rotate(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if after.Current.ID != s.Next.ID || after.Current.Alg != jose.EdDSA || after.Next.Alg != jose.EdDSA {
			t.Fatalf("after the rotation: current %s %s, next %s", after.Current.ID, after.Current.Alg, after.Next.Alg)
		}
		if h := header(t, sign(t, ed)); h["alg"] != "EdDSA" {
			t.Fatalf("after the rotation tokens are signed %v, want EdDSA", h["alg"])
		}
		if _, err := (&keys.JWTSigner{Keys: ed}).Decode(t.Context(), old); err != nil {
			t.Fatalf("RS256 token from before the change: %v", err)
		}
		jwks, _ := ed.JWKS(t.Context())
		algs := map[string]int{}
		for _, k := range jwks.Keys {
			algs[k.Algorithm]++
		}
		if algs["RS256"] != 1 || algs["EdDSA"] != 2 {
			t.Fatalf("JWKS algorithms %v: want the retired RS256 key and two EdDSA keys", algs)
		}
	})
}

func TestUnknownAlgorithmRefused(t *testing.T) {
	for _, alg := range []jose.SignatureAlgorithm{jose.HS256, "none", jose.ES384, jose.PS256} {
		if _, err := keys.NewManager(keys.Options{Store: store.ForApp(memory.New(), "a"), EncryptionKey: encKey, Algorithm: alg}); err == nil {
			t.Errorf("%s accepted", alg)
		}
	}
}
