package authz

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// TestFetchJWKSBounds: a jwks_uri is fetched over https (or http on
// loopback), without following redirects, within maxJWKSBytes, and only
// its public signing keys are kept.
func TestFetchJWKSBounds(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, _ := json.Marshal(jose.JSONWebKey{Key: k.Public(), KeyID: "sig"})
	priv, _ := json.Marshal(jose.JSONWebKey{Key: k, KeyID: "private"})
	enc, _ := json.Marshal(jose.JSONWebKey{Key: k.Public(), KeyID: "enc", Use: "enc"})
	good := `{"keys":[` + string(pub) + `,` + string(priv) + `,` + string(enc) + `,{"kty":"unknown"}]}`
	mux := http.NewServeMux()
	mux.HandleFunc("/good", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(good)) })
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/good", http.StatusFound) })
	mux.HandleFunc("/huge", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"keys":[` + strings.Repeat(" ", maxJWKSBytes) + `]}`))
	})
	mux.HandleFunc("/500", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", 500) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	hc := &http.Client{}

	set, err := fetchJWKS(context.Background(), hc, srv.URL+"/good")
	if err != nil || len(set.Keys) != 1 || set.Keys[0].KeyID != "sig" {
		t.Fatalf("good JWKS: %v %+v, want only the public signing key", err, set)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	for path, ctx := range map[string]context.Context{"/redirect": context.Background(), "/huge": context.Background(), "/500": context.Background(), "/slow": ctx} {
		if _, err := fetchJWKS(ctx, hc, srv.URL+path); err == nil {
			t.Errorf("%s: fetched", path)
		}
	}
	for _, u := range []string{"http://keys.example.com/jwks", "ftp://127.0.0.1/jwks", "file:///etc/passwd"} {
		if _, err := fetchJWKS(context.Background(), hc, u); err == nil || !strings.Contains(err.Error(), "not an https URL") {
			t.Errorf("%s: %v, want refused before any request", u, err)
		}
	}
}
