package authz

import (
	"bytes"
	"testing"
	"time"

	"github.com/ory/fosite"
	fjwt "github.com/ory/fosite/token/jwt"

	"github.com/aero2/aero2/authz/keys"
	"github.com/aero2/aero2/authz/oauthstore"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/memory"
)

// TestValidateAccessTokenChecks covers the checks the store cannot: a
// token Aero2 signed but that is not an access token (typ), and an expired
// grant.
func TestValidateAccessTokenChecks(t *testing.T) {
	st := memory.New()
	defer st.Close()
	km, err := keys.NewManager(keys.Options{Store: store.ForApp(st, "a"), EncryptionKey: bytes.Repeat([]byte{1}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	if err := km.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	signer := &keys.JWTSigner{Keys: km}
	s := &tokenStrategy{signer: signer, issuer: "https://issuer.example", now: time.Now}

	req := fosite.NewRequest()
	req.Client = &fosite.DefaultClient{ID: "web"}
	sess := oauthstore.NewSession()
	sess.Subject = "alice"
	sess.SetExpiresAt(fosite.AccessToken, time.Now().Add(time.Hour))
	req.Session = sess

	at, sig, err := s.GenerateAccessToken(t.Context(), req)
	if err != nil || sig != at {
		t.Fatalf("generate: %v", err)
	}
	if err := s.ValidateAccessToken(t.Context(), req, at); err != nil {
		t.Fatalf("genuine access token: %v", err)
	}
	// An ID token (typ JWT) from the same key is not an access token.
	idt, _, err := signer.Generate(t.Context(), fjwt.MapClaims{"sub": "alice", "iss": "https://issuer.example"}, &fjwt.Headers{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ValidateAccessToken(t.Context(), req, idt); err == nil {
		t.Fatal("ID token accepted as an access token")
	}
	// The grant's expiry is the token's.
	sess.SetExpiresAt(fosite.AccessToken, time.Now().Add(-time.Second))
	if err := s.ValidateAccessToken(t.Context(), req, at); err == nil {
		t.Fatal("expired access token accepted")
	}
	// A spliced token (real signature, other payload) does not even get a
	// store name that matches the real one.
	if s.AccessTokenSignature(t.Context(), at[:len(at)-2]+"xx") == sig {
		t.Fatal("store name ignores part of the token")
	}
}

func TestSignAssertion(t *testing.T) {
	st := memory.New()
	defer st.Close()
	km, _ := keys.NewManager(keys.Options{Store: store.ForApp(st, "a"), EncryptionKey: bytes.Repeat([]byte{1}, 32)})
	if err := km.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	p := &Provider{issuer: "https://issuer.example", signer: &keys.JWTSigner{Keys: km}}
	tok, err := p.SignAssertion(t.Context(), map[string]any{"sub": "alice", "iss": "forged", "exp": time.Now().Add(time.Minute).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := p.signer.Decode(t.Context(), tok)
	if err != nil {
		t.Fatalf("assertion does not verify with the published keys: %v", err)
	}
	if parsed.Claims["iss"] != "https://issuer.example" || parsed.Claims["sub"] != "alice" || parsed.Header["typ"] != AssertionType {
		t.Fatalf("assertion: header %v claims %v", parsed.Header, parsed.Claims)
	}
	// Not an access token, though signed by the same key.
	s := &tokenStrategy{signer: p.signer, issuer: p.issuer, now: time.Now}
	req := fosite.NewRequest()
	sess := oauthstore.NewSession()
	sess.SetExpiresAt(fosite.AccessToken, time.Now().Add(time.Hour))
	req.Session = sess
	if err := s.ValidateAccessToken(t.Context(), req, tok); err == nil {
		t.Fatal("assertion accepted as an access token")
	}
}
