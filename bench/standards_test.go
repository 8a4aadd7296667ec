package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose3 "github.com/go-jose/go-jose/v3"
	"github.com/go-jose/go-jose/v4"
	fjwt "github.com/ory/fosite/token/jwt"

	"github.com/aero2/aero2/authz/keys"
	"github.com/aero2/aero2/dpop/dpoptest"
	"github.com/aero2/aero2/proxy/proxytest"
	"github.com/aero2/aero2/server"
	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/memory"
	"github.com/aero2/aero2/store/redis/redistest"
)

// Benchmarks of what issue 12 adds, each a ratio against its plain case
// measured in the same run, the two taking turns so that both see the
// same (shared) machine:
//
//	go test -run '^$' -bench 'DPoP|SigningAlgorithms' -benchtime 2000x ./bench/

const benchSecret = "bench-secret-0123456789abcdef-0123456789"

// benchPost posts a token request, with a DPoP proof when proof is set,
// and returns the answer's JSON.
func benchPost(b *testing.B, c *http.Client, base string, form url.Values, proof string) map[string]any {
	r, _ := http.NewRequest(http.MethodPost, base+"/oauth2/token", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth("svc", benchSecret)
	if proof != "" {
		r.Header.Set("DPoP", proof)
	}
	var m map[string]any
	json.Unmarshal(servertest.MustOK(b, c, r), &m)
	return m
}

// BenchmarkDPoPTokenIssuance: client-credentials issuance with a DPoP
// proof (ES256) against without, on the memory store and Redis. The proofs
// are signed before the timer runs: measured is the server's part —
// parsing the proof, one ECDSA verification, the jti's atomic create, the
// cnf claim — beside the access token's RS256 signature both pay.
func BenchmarkDPoPTokenIssuance(b *testing.B) {
	cfg := servertest.DevConfig + `
clients:
  - {id: svc, secret: "` + benchSecret + `", grant_types: [client_credentials], scopes: [api]}
`
	cfg = strings.Replace(cfg, "\nserver:\n", "\nserver:\n  rate_limits: {disabled: true}\n", 1)
	for _, backend := range []string{"memory", "redis"} {
		b.Run(backend, func(b *testing.B) {
			var st store.Store
			if backend == "redis" {
				st = redistest.New(b)
			}
			in := servertest.StartWith(b, cfg, servertest.Options{Store: st, Server: server.Options{Logger: slog.New(slog.DiscardHandler)}})
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
			key := dpoptest.NewKey(b, jose.ES256)
			form := url.Values{"grant_type": {"client_credentials"}, "scope": {"api"}}
			benchPost(b, c, in.URL, form, "")
			if m := benchPost(b, c, in.URL, form, key.Proof(b, "POST", in.URL+"/oauth2/token", dpoptest.Options{})); m["token_type"] != "DPoP" {
				b.Fatalf("not DPoP-bound: %v", m)
			}
			var tPlain, tDPoP time.Duration
			n := 0
			for b.Loop() {
				b.StopTimer()
				proof := key.Proof(b, "POST", in.URL+"/oauth2/token", dpoptest.Options{})
				b.StartTimer()
				t0 := time.Now()
				benchPost(b, c, in.URL, form, "")
				t1 := time.Now()
				benchPost(b, c, in.URL, form, proof)
				tPlain += t1.Sub(t0)
				tDPoP += time.Since(t1)
				n++
			}
			b.ReportMetric(float64(tDPoP)/float64(tPlain), "ratio")
			b.ReportMetric(float64(tPlain)/float64(n), "plain-ns/op")
			b.ReportMetric(float64(tDPoP)/float64(n), "dpop-ns/op")
		})
	}
}

// BenchmarkProxiedDPoP: requests through the proxy to an upstream with a
// DPoP-bound token and a fresh proof each (ES256) against with a plain
// bearer token, on the memory store and Redis. Both tokens' verification
// and introspection are cached (proxy.token_cache), as in production;
// what DPoP adds is the proof's verification and its jti's create in the
// store. Proofs are signed before the timer runs.
func BenchmarkProxiedDPoP(b *testing.B) {
	for _, backend := range []string{"memory", "redis"} {
		b.Run(backend, func(b *testing.B) {
			var st store.Store
			if backend == "redis" {
				st = redistest.New(b)
			}
			up, _ := proxytest.StartUpstream(b)
			cfg := servertest.DevConfig + `
proxy: {token_cache: 1m}
clients:
  - {id: svc, secret: "` + benchSecret + `", grant_types: [client_credentials], audience: [aero2-proxy]}
routes:
  - {path: /api, upstream: "` + up.URL + `", policy: {allow_client_credentials: true}}
`
			cfg = strings.Replace(cfg, "\nserver:\n", "\nserver:\n  rate_limits: {disabled: true}\n", 1)
			in := servertest.StartWith(b, cfg, servertest.Options{Store: st, Server: server.Options{Logger: slog.New(slog.DiscardHandler)}})
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
			key := dpoptest.NewKey(b, jose.ES256)
			form := url.Values{"grant_type": {"client_credentials"}, "audience": {"aero2-proxy"}}
			plain := benchPost(b, c, in.URL, form, "")["access_token"].(string)
			bound := benchPost(b, c, in.URL, form, key.Proof(b, "POST", in.URL+"/oauth2/token", dpoptest.Options{}))["access_token"].(string)
			target := in.URL + "/api/x"
			get := func(auth, proof string) {
				r, _ := http.NewRequest(http.MethodGet, target, nil)
				r.Header.Set("Authorization", auth)
				if proof != "" {
					r.Header.Set("DPoP", proof)
				}
				res, err := c.Do(r)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					b.Fatalf("%s: %d", auth[:5], res.StatusCode)
				}
			}
			get("Bearer "+plain, "")
			get("DPoP "+bound, key.Proof(b, "GET", target, dpoptest.Options{Token: bound}))
			var tPlain, tDPoP time.Duration
			n := 0
			for b.Loop() {
				b.StopTimer()
				proof := key.Proof(b, "GET", target, dpoptest.Options{Token: bound})
				b.StartTimer()
				t0 := time.Now()
				get("Bearer "+plain, "")
				t1 := time.Now()
				get("DPoP "+bound, proof)
				tPlain += t1.Sub(t0)
				tDPoP += time.Since(t1)
				n++
			}
			b.ReportMetric(float64(tDPoP)/float64(tPlain), "ratio")
			b.ReportMetric(float64(tPlain)/float64(n), "bearer-ns/op")
			b.ReportMetric(float64(tDPoP)/float64(n), "dpop-ns/op")
		})
	}
}

// BenchmarkSigningAlgorithms: one access token signed by the provider's
// signer (keys.JWTSigner, what every token goes through) with an ES256
// key and an EdDSA key, each against an RS256 (2048-bit) key, in turns.
// The ratios are ES256/RS256 and EdDSA/RS256 signing time.
func BenchmarkSigningAlgorithms(b *testing.B) {
	st := memory.New()
	b.Cleanup(func() { st.Close() })
	signers := map[jose.SignatureAlgorithm]*keys.JWTSigner{}
	for _, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA} {
		m, err := keys.NewManager(keys.Options{Store: store.ForApp(st, "bench-"+string(alg)), EncryptionKey: []byte(strings.Repeat("k", 32)),
			Retention: time.Hour, Algorithm: jose3.SignatureAlgorithm(alg), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Load(b.Context()); err != nil {
			b.Fatal(err)
		}
		signers[alg] = &keys.JWTSigner{Keys: m}
	}
	claims := fjwt.MapClaims{"iss": "https://auth.example.com", "sub": "u1", "aud": []string{"api"}, "client_id": "svc",
		"scope": "openid profile", "jti": "j", "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	sign := func(alg jose.SignatureAlgorithm) time.Duration {
		t0 := time.Now()
		if _, _, err := signers[alg].Generate(b.Context(), claims, &fjwt.Headers{Extra: map[string]any{"typ": "at+jwt"}}); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	var rs, es, ed time.Duration
	n := 0
	for b.Loop() {
		rs += sign(jose.RS256)
		es += sign(jose.ES256)
		ed += sign(jose.EdDSA)
		n++
	}
	b.ReportMetric(float64(es)/float64(rs), "ES256/RS256")
	b.ReportMetric(float64(ed)/float64(rs), "EdDSA/RS256")
	b.ReportMetric(float64(rs)/float64(n), "RS256-ns/op")
	b.ReportMetric(float64(es)/float64(n), "ES256-ns/op")
	b.ReportMetric(float64(ed)/float64(n), "EdDSA-ns/op")
}
