package authz

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"
	fjwt "github.com/ory/fosite/token/jwt"

	"github.com/aero2/aero2/authz/keys"
	"github.com/aero2/aero2/authz/oauthstore"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/memory"
)

// testKeys is a loaded key manager on a memory store.
func testKeys(t *testing.T) *keys.Manager {
	t.Helper()
	st := memory.New()
	t.Cleanup(func() { st.Close() })
	km, err := keys.NewManager(keys.Options{Store: store.ForApp(st, "a"), EncryptionKey: bytes.Repeat([]byte{1}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	if err := km.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	return km
}

// TestValidateAccessTokenChecks covers the checks the store cannot: a
// token Aero2 signed but that is not an access token (typ), and an expired
// grant.
func TestValidateAccessTokenChecks(t *testing.T) {
	km := testKeys(t)
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

// TestAccessTokenClaimsAreTheMapsJSON: the access token's header and
// claims, written from their struct, are byte for byte the JSON of the
// map of claims it used to be built as (RFC 9068 §2.2: typ at+jwt, kid,
// alg; iss, sub, aud, client_id, scope, jti, iat, exp, auth_time, cnf and
// the ID token's identity claims), and the session holds those claims for
// the store.
func TestAccessTokenClaimsAreTheMapsJSON(t *testing.T) {
	km := testKeys(t)
	set, _ := km.Set(t.Context())
	s := &tokenStrategy{signer: &keys.JWTSigner{Keys: km}, issuer: "https://issuer.example", now: time.Now}
	for i, c := range []struct {
		scopes, aud []string
		authTime    time.Time
		jkt         string
		extra       map[string]any
	}{
		{},
		{[]string{"openid", "email"}, []string{"https://api.example", "b"}, time.Unix(1764600000, 0), "thumb",
			map[string]any{"preferred_username": "a<b>&c", "email": "zoë@example.com", "email_verified": false,
				"groups": []any{"x", "y"}, "name": "not copied"}},
	} {
		req := fosite.NewRequest()
		req.Client = &fosite.DefaultClient{ID: "web"}
		req.GrantedScope, req.GrantedAudience = c.scopes, c.aud
		sess := oauthstore.NewSession()
		sess.Subject, sess.AuthTime = "alice", c.authTime
		sess.Claims.Extra = c.extra
		sess.SetExpiresAt(fosite.AccessToken, time.Now().Add(time.Hour))
		req.Session = sess
		at, _, err := s.GenerateAccessToken(withJKT(t.Context(), c.jkt), req)
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(at, ".")
		header, _ := base64.RawURLEncoding.DecodeString(parts[0])
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		var got map[string]any
		if err := json.Unmarshal(payload, &got); err != nil {
			t.Fatal(err)
		}
		aud := c.aud
		if len(aud) == 0 {
			aud = []string{"https://issuer.example"}
		}
		want := map[string]any{"iss": "https://issuer.example", "sub": "alice", "aud": aud, "client_id": "web",
			"jti": got["jti"], "iat": got["iat"], "exp": sess.GetExpiresAt(fosite.AccessToken).Unix()}
		if len(c.scopes) > 0 {
			want["scope"] = strings.Join(c.scopes, " ")
		}
		if !c.authTime.IsZero() {
			want["auth_time"] = c.authTime.Unix()
		}
		if c.jkt != "" {
			want["cnf"] = map[string]any{"jkt": c.jkt}
		}
		for _, k := range []string{"preferred_username", "email", "email_verified", "groups"} {
			if v, ok := c.extra[k]; ok {
				want[k] = v
			}
		}
		wantJSON, _ := json.Marshal(want)
		if string(payload) != string(wantJSON) {
			t.Errorf("token %d: claims\n got %s\nwant %s", i, payload, wantJSON)
		}
		if h := `{"alg":"RS256","kid":"` + set.Current.ID + `","typ":"at+jwt"}`; string(header) != h {
			t.Errorf("token %d: header %s, want %s", i, header, h)
		}
		if jti, _ := got["jti"].(string); len(jti) != 22 {
			t.Errorf("token %d: jti %q", i, jti)
		}
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
