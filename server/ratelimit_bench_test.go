package server_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aero2/aero2/server"
	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/redis/redistest"
)

// BenchmarkRateLimiter measures what the limiter costs a request: two
// servers on the same store, one with server.rate_limits.disabled, one
// with every limit on (and too large to refuse anything), take turns
// answering the same request; it reports the limited server's time per
// request against the unlimited one's (ratio) and the difference
// (limiter-ns/op). The turns interleave, so both see the same machine.
//
//	go test -run '^$' -bench BenchmarkRateLimiter -benchtime 2000x ./server/
//
// token: client_credentials (address, failure look, client: 3 limiter
// calls besides the RS256 signature); introspect: of a JWT access token
// (the same 3, besides one RSA verification).
func BenchmarkRateLimiter(b *testing.B) {
	for _, backend := range []string{"memory", "redis"} {
		b.Run(backend, func(b *testing.B) {
			newStore := func() store.Store {
				if backend == "redis" {
					return redistest.New(b)
				}
				return nil
			}
			st := newStore()
			huge := "{requests: 1000000, per: 1s}"
			var limits strings.Builder
			limits.WriteString("  rate_limits:\n")
			for _, name := range []string{"token", "client_auth_failures", "introspect"} {
				limits.WriteString("    " + name + ": {per_address: " + huge + ", per_client: " + huge + "}\n")
			}
			clients := "\nclients:\n  - {id: svc, secret: \"" + svcSecret + "\", grant_types: [client_credentials]}\n"
			// Quiet: a log line per request would cost more than the
			// limiter.
			quiet := servertest.Options{Store: st, Server: server.Options{Logger: slog.New(slog.DiscardHandler)}}
			on := servertest.StartWith(b, withServer(limits.String())+clients, quiet)
			off := servertest.StartWith(b, withServer("  rate_limits: {disabled: true}\n")+clients, quiet)
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
			post := func(in *servertest.Instance, path string, form url.Values) []byte {
				r, _ := http.NewRequest(http.MethodPost, in.URL+path, strings.NewReader(form.Encode()))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				r.SetBasicAuth("svc", svcSecret)
				return servertest.MustOK(b, c, r)
			}
			tokenForm := url.Values{"grant_type": {"client_credentials"}}
			var tok struct {
				AccessToken string `json:"access_token"`
			}
			for _, in := range []*servertest.Instance{on, off} {
				json.Unmarshal(post(in, "/oauth2/token", tokenForm), &tok)
			}
			for _, ep := range []struct {
				name, path string
				form       func(in *servertest.Instance) url.Values
			}{
				{"token", "/oauth2/token", func(*servertest.Instance) url.Values { return tokenForm }},
				{"introspect", "/oauth2/introspect", func(in *servertest.Instance) url.Values {
					var t struct {
						AccessToken string `json:"access_token"`
					}
					json.Unmarshal(post(in, "/oauth2/token", tokenForm), &t)
					return url.Values{"token": {t.AccessToken}}
				}},
			} {
				b.Run(ep.name, func(b *testing.B) {
					onForm, offForm := ep.form(on), ep.form(off)
					var tOn, tOff time.Duration
					for b.Loop() {
						t0 := time.Now()
						post(off, ep.path, offForm)
						t1 := time.Now()
						post(on, ep.path, onForm)
						tOff += t1.Sub(t0)
						tOn += time.Since(t1)
					}
					n := float64(b.N)
					b.ReportMetric(float64(tOn)/float64(tOff), "ratio")
					b.ReportMetric(float64(tOn-tOff)/n, "limiter-ns/op")
					b.ReportMetric(float64(tOff)/n, "unlimited-ns/op")
				})
			}
		})
	}
}
