package authz_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aero2/aero2/store"
)

// TestSigningAlgorithms: an application signing with ES256 or EdDSA
// (signing_keys.algorithm) advertises it in discovery, publishes keys of
// its kind (EC P-256, OKP Ed25519), and two independent clients accept
// its tokens: go-oidc verifies the ID token and its at_hash (SHA-512 for
// EdDSA), openid-client verifies ID tokens from the code exchange and the
// refresh and calls userinfo.
func TestSigningAlgorithms(t *testing.T) {
	for _, c := range []struct{ alg, kty, crv string }{{"ES256", "EC", "P-256"}, {"EdDSA", "OKP", "Ed25519"}, {"RS256", "RSA", ""}} {
		t.Run(c.alg, func(t *testing.T) {
			stores(t, func(t *testing.T, st store.Store) {
				e := start(t, providerConfig+"signing_keys: {algorithm: "+c.alg+"}\n", st)

				var md struct {
					Algs []string `json:"id_token_signing_alg_values_supported"`
				}
				if err := e.provider.Claims(&md); err != nil {
					t.Fatal(err)
				}
				if len(md.Algs) != 1 || md.Algs[0] != c.alg {
					t.Fatalf("id_token_signing_alg_values_supported %v, want [%s]", md.Algs, c.alg)
				}
				res, err := http.Get(e.in.URL + "/.well-known/jwks.json")
				if err != nil {
					t.Fatal(err)
				}
				var set struct{ Keys []map[string]any }
				json.NewDecoder(res.Body).Decode(&set)
				res.Body.Close()
				if len(set.Keys) != 2 {
					t.Fatalf("JWKS has %d keys, want current and next", len(set.Keys))
				}
				for _, k := range set.Keys {
					if k["kty"] != c.kty || k["alg"] != c.alg || k["use"] != "sig" || k["d"] != nil || (c.crv != "" && k["crv"] != c.crv) {
						t.Fatalf("JWKS key %v: want a public %s key (kty %s, crv %q)", k, c.alg, c.kty, c.crv)
					}
				}

				// go-oidc: discovery's algorithms, the JWKS, at_hash.
				f := newFlow(e.web())
				tok, err := e.exchange(f, e.login(e.browser(), f, "alice"))
				if err != nil {
					t.Fatal(err)
				}
				idt := e.verifyIDToken(f, tok)
				if h := jwtHeader(t, tok.AccessToken); h["alg"] != c.alg || h["typ"] != "at+jwt" {
					t.Fatalf("access token header %v, want alg %s", h, c.alg)
				}
				if st, _, m := e.userinfo(tok.AccessToken); st != http.StatusOK || m["sub"] != idt.Subject {
					t.Fatalf("userinfo with the %s access token: %d %v", c.alg, st, m)
				}
				// The refresh's ID token: go-oidc again, at_hash included.
				tok.Expiry = time.Now().Add(-time.Minute)
				refreshed, err := e.web().TokenSource(e.ctx, tok).Token()
				if err != nil {
					t.Fatal(err)
				}
				raw, _ := refreshed.Extra("id_token").(string)
				ridt, err := e.provider.Verifier(oidcConfig("web")).Verify(e.ctx, raw)
				if err != nil || refreshed.AccessToken == tok.AccessToken {
					t.Fatalf("refreshed ID token with %s: %v", c.alg, err)
				}
				if err := ridt.VerifyAccessToken(refreshed.AccessToken); err != nil {
					t.Fatalf("refreshed at_hash with %s: %v", c.alg, err)
				}

				// openid-client: code flow, userinfo, refresh (a second ID
				// token, whose signature it checks too).
				m := nodeCodeFlow(t, e, e.browser(), nodeClient{ID: "web", Auth: "client_secret_basic", Secret: webSecret}, false,
					map[string]any{"userinfo": true, "refresh": true})
				if m["claims"].(map[string]any)["sub"] == nil || m["userinfo"].(map[string]any)["sub"] != m["claims"].(map[string]any)["sub"] {
					t.Fatalf("openid-client with %s: %v", c.alg, m)
				}
				if r := m["refreshed"].(map[string]any); r["claims"] == nil {
					t.Fatalf("openid-client refresh with %s: %v", c.alg, r)
				}
			})
		})
	}
}

func jwtHeader(t *testing.T, tok string) map[string]any {
	t.Helper()
	var h map[string]any
	if err := json.Unmarshal([]byte(decodeSegment(t, strings.Split(tok, ".")[0])), &h); err != nil {
		t.Fatal(err)
	}
	return h
}
