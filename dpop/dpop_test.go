package dpop_test

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/aero2/aero2/dpop"
	"github.com/aero2/aero2/dpop/dpoptest"
)

// memReplay is a replay memory; the provider and the proxy use the store.
type memReplay struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (m *memReplay) remember(_ context.Context, key string, _ time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen[key] {
		return dpop.ErrReplay
	}
	m.seen[key] = true
	return nil
}

const target = "https://api.example.com/v1/things"

func verifier() *dpop.Verifier {
	return &dpop.Verifier{Replay: (&memReplay{seen: map[string]bool{}}).remember}
}

func TestValidProofs(t *testing.T) {
	v := verifier()
	for _, alg := range []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.RS256, jose.PS256} {
		k := dpoptest.NewKey(t, alg)
		p, err := v.Verify(t.Context(), []string{k.Proof(t, "GET", target, dpoptest.Options{Token: "tok"})}, dpop.Request{Method: "GET", URL: target, AccessToken: "tok"})
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		if p.JKT != k.JKT {
			t.Fatalf("%s: jkt %s, want %s", alg, p.JKT, k.JKT)
		}
	}
	// htu compares after normalisation (RFC 3986 §6), without the query.
	k := dpoptest.NewKey(t, jose.ES256)
	for _, htu := range []string{"HTTPS://API.example.com:443/v1/things", "https://api.example.com/v1/things?x=1#f"} {
		if _, err := v.Verify(t.Context(), []string{k.Proof(t, "GET", htu, dpoptest.Options{})}, dpop.Request{Method: "GET", URL: target + "?q=2"}); err != nil {
			t.Errorf("htu %s: %v", htu, err)
		}
	}
}

// Every way a proof can be wrong is invalid_dpop_proof.
func TestBadProofs(t *testing.T) {
	v := verifier()
	k, other := dpoptest.NewKey(t, jose.ES256), dpoptest.NewKey(t, jose.ES256)
	req := dpop.Request{Method: "POST", URL: target, AccessToken: "tok"}
	good := func(o dpoptest.Options) string { o.Token = "tok"; return k.Proof(t, "POST", target, o) }
	replayed := good(dpoptest.Options{})
	if _, err := v.Verify(t.Context(), []string{replayed}, req); err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good(dpoptest.Options{}), ".")
	cases := map[string][]string{
		"replayed jti":               {replayed},
		"wrong htm":                  {k.Proof(t, "GET", target, dpoptest.Options{Token: "tok"})},
		"lower-case htm":             {k.Proof(t, "post", target, dpoptest.Options{Token: "tok"})},
		"wrong htu path":             {k.Proof(t, "POST", "https://api.example.com/v1/other", dpoptest.Options{Token: "tok"})},
		"wrong htu host":             {k.Proof(t, "POST", "https://evil.example.com/v1/things", dpoptest.Options{Token: "tok"})},
		"wrong htu scheme":           {k.Proof(t, "POST", "http://api.example.com/v1/things", dpoptest.Options{Token: "tok"})},
		"wrong ath":                  {k.Proof(t, "POST", target, dpoptest.Options{Token: "other"})},
		"no ath":                     {k.Proof(t, "POST", target, dpoptest.Options{})},
		"stale iat":                  {good(dpoptest.Options{IAT: time.Now().Add(-10 * time.Minute)})},
		"future iat":                 {good(dpoptest.Options{IAT: time.Now().Add(10 * time.Minute)})},
		"no iat":                     {good(dpoptest.Options{Claims: map[string]any{"iat": nil}})},
		"string iat":                 {good(dpoptest.Options{Claims: map[string]any{"iat": "now"}})},
		"no jti":                     {good(dpoptest.Options{Claims: map[string]any{"jti": nil}})},
		"signed by another key":      {good(dpoptest.Options{SignWith: other})},
		"HS256":                      {good(dpoptest.Options{HMACKey: []byte(strings.Repeat("s", 32))})},
		"private key in the header":  {good(dpoptest.Options{PrivateJWK: true})},
		"typ JWT":                    {good(dpoptest.Options{Typ: "JWT"})},
		"no typ":                     {good(dpoptest.Options{Typ: "-"})},
		"alg none":                   {parts[0][:0] + "eyJhbGciOiJub25lIiwidHlwIjoiZHBvcCtqd3QifQ." + parts[1] + "."},
		"tampered payload":           {parts[0] + "." + strings.Repeat("A", len(parts[1])) + "." + parts[2]},
		"two headers":                {good(dpoptest.Options{}), good(dpoptest.Options{})},
		"no header":                  nil,
		"empty":                      {""},
		"garbage":                    {"a.b.c"},
		"oversized":                  {strings.Repeat("a", 9000)},
		"no jwk (embedded kid only)": {strings.Replace(good(dpoptest.Options{}), parts[0], parts[0], 1)[:0] + "eyJhbGciOiJFUzI1NiIsInR5cCI6ImRwb3Arand0In0." + parts[1] + "." + parts[2]},
	}
	for name, values := range cases {
		_, err := v.Verify(t.Context(), values, req)
		if !errors.Is(err, dpop.ErrInvalidProof) {
			t.Errorf("%s: %v, want invalid_dpop_proof", name, err)
		}
	}
}

// A refused proof does not use up its jti: only the one accepted does.
func TestRefusedProofKeepsItsJTI(t *testing.T) {
	v := verifier()
	k := dpoptest.NewKey(t, jose.EdDSA)
	p := k.Proof(t, "GET", target, dpoptest.Options{JTI: "j1"})
	if _, err := v.Verify(t.Context(), []string{p}, dpop.Request{Method: "POST", URL: target}); err == nil {
		t.Fatal("wrong method accepted")
	}
	if _, err := v.Verify(t.Context(), []string{p}, dpop.Request{Method: "GET", URL: target}); err != nil {
		t.Fatalf("the proof after a refusal of the same jti: %v", err)
	}
}

func TestNonces(t *testing.T) {
	now := time.Now()
	n := &dpop.Nonces{Key: []byte("0123456789abcdef0123456789abcdef"), Window: time.Minute, Now: func() time.Time { return now }}
	v := verifier()
	v.Nonces = n
	k := dpoptest.NewKey(t, jose.ES256)
	req := dpop.Request{Method: "GET", URL: target}
	if _, err := v.Verify(t.Context(), []string{k.Proof(t, "GET", target, dpoptest.Options{})}, req); !errors.Is(err, dpop.ErrUseNonce) {
		t.Fatalf("no nonce: %v, want use_dpop_nonce", err)
	}
	if _, err := v.Verify(t.Context(), []string{k.Proof(t, "GET", target, dpoptest.Options{Nonce: "made-up"})}, req); !errors.Is(err, dpop.ErrUseNonce) {
		t.Fatalf("made-up nonce: %v", err)
	}
	nonce := n.Current()
	if _, err := v.Verify(t.Context(), []string{k.Proof(t, "GET", target, dpoptest.Options{Nonce: nonce})}, req); err != nil {
		t.Fatalf("current nonce: %v", err)
	}
	now = now.Add(time.Minute) // the next window: still accepted
	if !n.Valid(nonce) {
		t.Fatal("nonce of the previous window refused")
	}
	now = now.Add(time.Minute)
	if n.Valid(nonce) {
		t.Fatal("nonce two windows old accepted")
	}
	other := &dpop.Nonces{Key: []byte("another key, another replica set"), Window: time.Minute, Now: n.Now}
	if other.Valid(n.Current()) {
		t.Fatal("a nonce under another key accepted")
	}
}

func TestParseAuthorization(t *testing.T) {
	for in, want := range map[string][2]string{
		"Bearer abc": {"Bearer", "abc"}, "bearer abc": {"Bearer", "abc"}, "DPoP abc": {"DPoP", "abc"}, "dpop  abc ": {"DPoP", "abc"},
		"Basic abc": {"", ""}, "DPoP": {"", ""}, "DPoP ": {"", ""}, "": {"", ""},
	} {
		s, tok := dpop.ParseAuthorization(in)
		if s != want[0] || tok != want[1] {
			t.Errorf("%q: %q %q, want %q", in, s, tok, want)
		}
	}
}

// Proofs with alg Ed25519 (RFC 9864's name, openid-client's) verify like
// EdDSA ones; a wrong signature, another key type, or a private jwk do
// not.
func TestEd25519ByItsFullySpecifiedName(t *testing.T) {
	v := verifier()
	k := dpoptest.NewKey(t, jose.EdDSA)
	ec := dpoptest.NewKey(t, jose.ES256)
	make := func(key *dpoptest.Key, jwk any, sigFlip bool) string {
		jb, _ := json.Marshal(jwk)
		head := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"Ed25519","typ":"dpop+jwt","jwk":` + string(jb) + `}`))
		body := base64.RawURLEncoding.EncodeToString([]byte(`{"htm":"GET","htu":"` + target + `","iat":` + strconv.FormatInt(time.Now().Unix(), 10) + `,"jti":"` + head[:12] + strconv.FormatBool(sigFlip) + `"}`))
		sig, _ := key.Priv.Sign(nil, []byte(head+"."+body), crypto.Hash(0))
		if sigFlip {
			sig[0] ^= 1
		}
		return head + "." + body + "." + base64.RawURLEncoding.EncodeToString(sig)
	}
	req := dpop.Request{Method: "GET", URL: target}
	if p, err := v.Verify(t.Context(), []string{make(k, jose.JSONWebKey{Key: k.Priv.Public()}, false)}, req); err != nil || p.JKT != k.JKT {
		t.Fatalf("Ed25519 proof: %v", err)
	}
	for name, proof := range map[string]string{
		"flipped signature": make(k, jose.JSONWebKey{Key: k.Priv.Public()}, true),
		"private jwk":       make(k, jose.JSONWebKey{Key: k.Priv}, false),
		"EC key":            make(k, jose.JSONWebKey{Key: ec.Priv.Public()}, false),
	} {
		if _, err := v.Verify(t.Context(), []string{proof}, req); !errors.Is(err, dpop.ErrInvalidProof) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
