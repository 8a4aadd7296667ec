//go:build openssl && cgo

package ossl_test

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"strings"
	"sync"
	"testing"

	"github.com/aero2/aero2/authz/keys/ossl"
)

func newKey(t testing.TB, bits int) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// PKCS#1 v1.5 is deterministic: for the same key and digest, OpenSSL and
// crypto/rsa must give the same bytes. Several keys (sizes too) and inputs.
func TestSameSignaturesAsCryptoRSA(t *testing.T) {
	if !ossl.Available || !strings.HasPrefix(ossl.Version(), "OpenSSL 3") {
		t.Fatalf("want OpenSSL 3 built in, have %q", ossl.Version())
	}
	random := make([]byte, 4096)
	rand.Read(random)
	inputs := [][]byte{nil, []byte("a"), []byte("eyJhbGciOiJSUzI1NiIsImtpZCI6IngifQ.eyJzdWIiOiJzZXJ2aWNlIn0"), random}
	for _, bits := range []int{2048, 2048, 3072, 4096} {
		priv := newKey(t, bits)
		s, err := ossl.New(priv)
		if err != nil {
			t.Fatal(err)
		}
		if !s.Public().(*rsa.PublicKey).Equal(&priv.PublicKey) {
			t.Fatal("Public is not the key's")
		}
		for _, in := range inputs {
			sum := sha256.Sum256(in)
			got, err := s.Sign(rand.Reader, sum[:], crypto.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			want, err := rsa.SignPKCS1v15(nil, priv, crypto.SHA256, sum[:])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%d-bit key, %d-byte input: OpenSSL's signature differs from crypto/rsa's", bits, len(in))
			}
			if err := rsa.VerifyPKCS1v15(&priv.PublicKey, crypto.SHA256, sum[:], got); err != nil {
				t.Fatal(err)
			}
		}
		s.Close()
	}
}

// What is not an RS256 signature of a SHA-256 digest is an error, never a
// signature (nor a crash in C).
func TestBadInput(t *testing.T) {
	priv := newKey(t, 2048)
	s, err := ossl.New(priv)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sum := sha256.Sum256([]byte("x"))
	sum512 := sha512.Sum512([]byte("x"))
	cases := []struct {
		name   string
		digest []byte
		opts   crypto.SignerOpts
	}{
		{"empty digest", nil, crypto.SHA256},
		{"short digest", sum[:31], crypto.SHA256},
		{"long digest", append(sum[:], 0), crypto.SHA256},
		{"SHA-512", sum512[:], crypto.SHA512},
		{"SHA-512 named, SHA-256 sized", sum[:], crypto.SHA512},
		{"no hash (raw)", sum[:], crypto.Hash(0)},
		{"nil options", sum[:], nil},
		{"PSS", sum[:], &rsa.PSSOptions{Hash: crypto.SHA256}},
	}
	for _, c := range cases {
		if sig, err := s.Sign(rand.Reader, c.digest, c.opts); err == nil {
			t.Errorf("%s: signed (%d bytes), want an error", c.name, len(sig))
		}
	}
	for _, bad := range []*rsa.PrivateKey{nil, {}, {PublicKey: priv.PublicKey}} {
		if _, err := ossl.New(bad); err == nil {
			t.Errorf("New(%v) took a broken key", bad)
		}
	}
	s.Close()
	if _, err := s.Sign(rand.Reader, sum[:], crypto.SHA256); err == nil {
		t.Error("a closed signer signed")
	}
	s.Close() // twice is harmless
}

// One EVP_PKEY, many goroutines (run with -race); Close waits for the
// signatures under way.
func TestConcurrentSigning(t *testing.T) {
	priv := newKey(t, 2048)
	s, err := ossl.New(priv)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 8 {
		wg.Go(func() {
			for i := range 8 {
				sum := sha256.Sum256([]byte{byte(g), byte(i)})
				sig, err := s.Sign(nil, sum[:], crypto.SHA256)
				if err == nil {
					err = rsa.VerifyPKCS1v15(&priv.PublicKey, crypto.SHA256, sum[:], sig)
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	s.Close()
}

// go test -tags openssl -run '^$' -bench Sign -cpu 1,2 ./authz/keys/ossl/
func BenchmarkSign(b *testing.B) {
	priv := newKey(b, 2048)
	s, err := ossl.New(priv)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	sum := sha256.Sum256([]byte("aero2"))
	for _, sg := range []struct {
		name string
		s    crypto.Signer
	}{{"openssl", s}, {"crypto-rsa", priv}} {
		b.Run(sg.name, func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := sg.s.Sign(rand.Reader, sum[:], crypto.SHA256); err != nil {
						b.Error(err)
					}
				}
			})
		})
	}
}

// The verifier's verdict is crypto/rsa's, for good signatures and for
// every kind of bad one.
func TestVerifierAgreesWithCryptoRSA(t *testing.T) {
	priv, other := newKey(t, 2048), newKey(t, 2048)
	v, err := ossl.NewVerifier(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	sum := sha256.Sum256([]byte("payload"))
	good, _ := rsa.SignPKCS1v15(nil, priv, crypto.SHA256, sum[:])
	wrongKey, _ := rsa.SignPKCS1v15(nil, other, crypto.SHA256, sum[:])
	pss, _ := rsa.SignPSS(rand.Reader, priv, crypto.SHA256, sum[:], nil)
	sha1ish, _ := rsa.SignPKCS1v15(nil, priv, crypto.Hash(0), sum[:]) // no DigestInfo
	flipped := bytes.Clone(good)
	flipped[100] ^= 1
	overN := priv.N.Bytes() // the modulus itself: out of range
	allFF := bytes.Repeat([]byte{0xff}, 256)
	otherSum := sha256.Sum256([]byte("payload!"))
	cases := []struct {
		name        string
		digest, sig []byte
		valid       bool
	}{
		{"good", sum[:], good, true},
		{"other digest", otherSum[:], good, false},
		{"other key", sum[:], wrongKey, false},
		{"PSS", sum[:], pss, false},
		{"no DigestInfo", sum[:], sha1ish, false},
		{"flipped bit", sum[:], flipped, false},
		{"the modulus", sum[:], overN, false},
		{"all ones", sum[:], allFF, false},
		{"zeros", sum[:], make([]byte, 256), false},
		{"short", sum[:], good[1:], false},
		{"long", sum[:], append([]byte{0}, good...), false},
		{"empty", sum[:], nil, false},
	}
	for _, c := range cases {
		goErr := rsa.VerifyPKCS1v15(&priv.PublicKey, crypto.SHA256, c.digest, c.sig)
		osslErr := v.Verify(c.digest, c.sig)
		if (goErr == nil) != c.valid || (osslErr == nil) != c.valid {
			t.Errorf("%s: crypto/rsa %v, OpenSSL %v; want valid=%v", c.name, goErr, osslErr, c.valid)
		}
	}
	for _, d := range [][]byte{nil, sum[:31], append(sum[:], 0)} {
		if v.Verify(d, good) == nil {
			t.Errorf("a %d-byte digest verified", len(d))
		}
	}
	if _, err := ossl.NewVerifier(&rsa.PublicKey{}); err == nil {
		t.Error("an empty public key was taken")
	}
	v.Close()
	if v.Verify(sum[:], good) == nil {
		t.Error("a closed verifier verified")
	}
}
