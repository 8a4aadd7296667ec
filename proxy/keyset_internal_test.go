package proxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// jwksServer publishes the public halves of keys (plus keys a verifier
// must skip) and counts fetches.
type jwksServer struct {
	mu      sync.Mutex
	keys    []jose.JSONWebKey
	fetches atomic.Int64
}

func (s *jwksServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.fetches.Add(1)
	s.mu.Lock()
	var out []any
	for _, k := range s.keys {
		out = append(out, k.Public())
	}
	s.mu.Unlock()
	// An encryption key and a key type nobody supports are skipped.
	out = append(out, map[string]any{"kty": "EC", "crv": "P-256", "use": "enc", "kid": "enc",
		"x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
		map[string]any{"kty": "OKP-future", "kid": "odd"})
	json.NewEncoder(w).Encode(map[string]any{"keys": out})
}

func (s *jwksServer) set(keys ...jose.JSONWebKey) {
	s.mu.Lock()
	s.keys = keys
	s.mu.Unlock()
}

func ecKey(t *testing.T, kid string) jose.JSONWebKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return jose.JSONWebKey{Key: k, KeyID: kid, Algorithm: string(jose.ES256), Use: "sig"}
}

func signWith(t *testing.T, k jose.JSONWebKey, withKID bool) string {
	t.Helper()
	sk := jose.SigningKey{Algorithm: jose.ES256, Key: k.Key}
	if withKID {
		sk.Key = k
	}
	s, err := jose.NewSigner(sk, nil)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign([]byte(`{"sub":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := jws.CompactSerialize()
	return out
}

// TestKeySetRotationAndWithdrawal: a key rotated in verifies once the
// short interval has passed; a key withdrawn stops verifying once the
// keys in hand are an hour old; a token without kid is tried against
// every key; unusable keys in the JWKS are skipped.
func TestKeySetRotationAndWithdrawal(t *testing.T) {
	srv := &jwksServer{}
	old, next := ecKey(t, "old"), ecKey(t, "next")
	srv.set(old)
	h := httptest.NewServer(srv)
	defer h.Close()
	var clock atomic.Int64
	start := time.Now()
	ks := newKeySet(h.URL, h.Client(), func() time.Time { return start.Add(time.Duration(clock.Load())) })
	ctx := context.Background()
	verifies := func(jwt string) bool {
		_, err := ks.VerifySignature(ctx, jwt)
		return err == nil
	}
	if !verifies(signWith(t, old, true)) || !verifies(signWith(t, old, false)) {
		t.Fatal("the published key does not verify (with and without kid)")
	}
	if srv.fetches.Load() != 1 {
		t.Errorf("fetches: %d, want 1", srv.fetches.Load())
	}
	// Rotation: the provider publishes the next key and signs with it.
	srv.set(old, next)
	clock.Store(int64(keySetMinRefresh / 2))
	if verifies(signWith(t, next, true)) {
		t.Error("a new key verified within the interval of the last fetch")
	}
	clock.Store(int64(keySetMinRefresh + time.Second))
	if !verifies(signWith(t, next, true)) || srv.fetches.Load() != 2 {
		t.Errorf("the rotated key, after the interval: fetches %d", srv.fetches.Load())
	}
	// Withdrawal: the old key leaves the JWKS. Within the hour the keys
	// in hand still have it; after, it is fetched again and gone.
	srv.set(next)
	if !verifies(signWith(t, old, true)) {
		t.Error("the old key stopped verifying before the keys were an hour old")
	}
	clock.Store(int64(keySetMaxAge + keySetMinRefresh + 2*time.Second))
	if verifies(signWith(t, old, true)) {
		t.Error("a withdrawn key still verifies after an hour")
	}
	if !verifies(signWith(t, next, true)) || srv.fetches.Load() != 3 {
		t.Errorf("after the hour: fetches %d, want 3", srv.fetches.Load())
	}
	// HS256 and alg none never verify, whatever the keys.
	hs, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte("0123456789abcdef0123456789abcdef")}, nil)
	jws, _ := hs.Sign([]byte(`{}`))
	mac, _ := jws.CompactSerialize()
	if verifies(mac) || verifies("eyJhbGciOiJub25lIn0.e30.") {
		t.Error("HS256 or none verified")
	}
}
