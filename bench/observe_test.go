package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/aero2/aero2/metrics"
	"github.com/aero2/aero2/server"
	"github.com/aero2/aero2/server/servertest"
)

// BenchmarkObservability measures what metrics (and, apart, traces) cost
// on the proxy path (a
// signed-in browser's GET through a route to an upstream) and at the token
// endpoint (client_credentials), as the ratio of the same request's time
// on a server with them on over one with them off (metrics/off,
// traces/off). Both servers run in the
// same process and the requests take turns, so both see the same machine.
//
//	go test -run '^$' -bench BenchmarkObservability -benchtime 3000x ./bench/
func BenchmarkObservability(b *testing.B) {
	const secret = "bench-secret-0123456789abcdef-0123456789"
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer up.Close()
	cfg := servertest.DevConfig + `
clients:
  - {id: basic, secret: "` + secret + `", grant_types: [client_credentials], scopes: [api]}
routes:
  - {path: /app, upstream: "` + up.URL + `"}
`
	cfg = strings.Replace(cfg, "\nserver:\n", "\nserver:\n  rate_limits: {disabled: true}\n", 1)
	quiet := slog.New(slog.DiscardHandler)
	type variant struct {
		name    string
		in      *servertest.Instance
		browser *http.Client
	}
	variants := []*variant{
		{name: "off", in: servertest.StartWith(b, cfg, servertest.Options{Server: server.Options{Logger: quiet}})},
		{name: "metrics", in: servertest.StartWith(b, cfg, servertest.Options{Server: server.Options{Logger: quiet, Metrics: metrics.New()}})},
		// Every span made and ended, then dropped by the exporter: the
		// cost inside Aero2, without an OTLP collector's I/O.
		{name: "traces", in: servertest.StartWith(b, cfg, servertest.Options{Server: server.Options{Logger: quiet,
			TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))}})},
	}
	for _, v := range variants {
		br := v.in.NewBrowser(b)
		if p := br.SignInDev(v.in.URL+"/app/", "alice"); p.Status != http.StatusOK {
			b.Fatalf("%s: sign-in ended at %d %s", v.name, p.Status, p.URL)
		}
		v.browser = br.NoRedirects().Client
	}
	do := func(c *http.Client, r *http.Request) {
		res, err := c.Do(r)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			b.Fatalf("%s %s: %d %s", r.Method, r.URL, res.StatusCode, body)
		}
	}
	api := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	for _, sc := range []struct {
		name string
		req  func(v *variant) (*http.Client, *http.Request)
	}{
		{"proxy", func(v *variant) (*http.Client, *http.Request) {
			r, _ := http.NewRequest(http.MethodGet, v.in.URL+"/app/reports", nil)
			return v.browser, r
		}},
		{"token", func(v *variant) (*http.Client, *http.Request) {
			r, _ := http.NewRequest(http.MethodPost, v.in.URL+"/oauth2/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "scope": {"api"}}.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.SetBasicAuth("basic", secret)
			return api, r
		}},
	} {
		b.Run(sc.name, func(b *testing.B) {
			spent := make([]time.Duration, len(variants))
			for _, v := range variants { // warm up each
				do(sc.req(v))
			}
			n := 0
			for b.Loop() {
				// Alternate the order, so neither always runs second.
				for k := range variants {
					i := (k + n) % len(variants)
					c, r := sc.req(variants[i])
					t0 := time.Now()
					do(c, r)
					spent[i] += time.Since(t0)
				}
				n++
			}
			for i, v := range variants {
				b.ReportMetric(float64(spent[i])/float64(n), v.name+"-ns/op")
				if i > 0 {
					b.ReportMetric(float64(spent[i])/float64(spent[0]), v.name+"/off")
				}
			}
		})
	}
}
