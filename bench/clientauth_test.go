package main

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/aero2/aero2/server"
	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/redis/redistest"
)

// BenchmarkClientAuthentication measures client_credentials token
// issuance with private_key_jwt against client_secret_basic on one
// server: the two requests take turns, so both see the same machine, and
// the result is the private_key_jwt request's time over the secret one's
// (ratio). Assertions (RS256, 2048-bit) are signed before the timer runs:
// what is measured is the server's part — parsing, one RSA verification,
// the jti's atomic create — beside the access token's RS256 signature
// both requests pay.
//
//	go test -run '^$' -bench BenchmarkClientAuthentication -benchtime 2000x ./bench/
func BenchmarkClientAuthentication(b *testing.B) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	pub, _ := json.Marshal(jose.JSONWebKey{Key: key.Public(), KeyID: "k1"})
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	if err != nil {
		b.Fatal(err)
	}
	const secret = "bench-secret-0123456789abcdef-0123456789"
	cfg := servertest.DevConfig + `
clients:
  - {id: basic, secret: "` + secret + `", grant_types: [client_credentials], scopes: [api]}
  - id: jwt
    token_endpoint_auth_method: private_key_jwt
    grant_types: [client_credentials]
    scopes: [api]
    jwks: {keys: [` + string(pub) + `]}
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
			post := func(form url.Values, user string) {
				r, _ := http.NewRequest(http.MethodPost, in.URL+"/oauth2/token", strings.NewReader(form.Encode()))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				if user != "" {
					r.SetBasicAuth(user, secret)
				}
				servertest.MustOK(b, c, r)
			}
			assertion := func() url.Values {
				jti := make([]byte, 16)
				rand.Read(jti)
				now := time.Now()
				tok, err := josejwt.Signed(signer).Claims(map[string]any{"iss": "jwt", "sub": "jwt", "aud": in.URL,
					"jti": base64.RawURLEncoding.EncodeToString(jti), "iat": now.Unix(), "exp": now.Add(4 * time.Minute).Unix()}).Serialize()
				if err != nil {
					b.Fatal(err)
				}
				return url.Values{"grant_type": {"client_credentials"}, "scope": {"api"}, "client_id": {"jwt"},
					"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {tok}}
			}
			basicForm := url.Values{"grant_type": {"client_credentials"}, "scope": {"api"}}
			post(basicForm, "basic") // warm up both
			post(assertion(), "")
			var tBasic, tJWT time.Duration
			n := 0
			for b.Loop() {
				b.StopTimer()
				form := assertion()
				b.StartTimer()
				t0 := time.Now()
				post(basicForm, "basic")
				t1 := time.Now()
				post(form, "")
				tBasic += t1.Sub(t0)
				tJWT += time.Since(t1)
				n++
			}
			b.ReportMetric(float64(tJWT)/float64(tBasic), "ratio")
			b.ReportMetric(float64(tBasic)/float64(n), "basic-ns/op")
			b.ReportMetric(float64(tJWT)/float64(n), "private_key_jwt-ns/op")
		})
	}
}
