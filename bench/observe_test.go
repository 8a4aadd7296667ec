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

	"github.com/aero2/aero2/logging"
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
// Timings on a shared machine still swing by ±25%; for the exact cost in
// instructions, see BenchmarkObservabilityInstructions (bench/callgrind.sh).
//
//	go test -run '^$' -bench BenchmarkObservability -benchtime 3000x ./bench/
func BenchmarkObservability(b *testing.B) {
	variants, scenarios := observabilityRig(b)
	for _, sc := range scenarios {
		b.Run(sc.name, func(b *testing.B) {
			spent := make([]time.Duration, len(variants))
			for _, v := range variants { // warm up each
				c, r := sc.req(v)
				obsDo(b, c, r)
			}
			n := 0
			for b.Loop() {
				// Alternate the order, so neither always runs second.
				for k := range variants {
					i := (k + n) % len(variants)
					c, r := sc.req(variants[i])
					t0 := time.Now()
					obsDo(b, c, r)
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

// obsVariant is one server of the observability benchmarks, with a
// signed-in browser.
type obsVariant struct {
	name    string
	in      *servertest.Instance
	browser *http.Client
}

// obsScenario makes one request of its kind for a variant.
type obsScenario struct {
	name string
	req  func(v *obsVariant) (*http.Client, *http.Request)
}

// observabilityRig starts three servers on one configuration (a route to
// an upstream, a client_credentials client): with nothing observed, with
// metrics, and with traces (every span made and ended, then dropped by the
// exporter: the cost inside Aero2, without an OTLP collector's I/O). The
// spans are exported as they end, not batched: a batcher's goroutine wakes
// by the clock and would be counted against every server in the process,
// more than metrics cost. Each has a browser signed in.
func observabilityRig(b *testing.B) ([]*obsVariant, []obsScenario) {
	const secret = "bench-secret-0123456789abcdef-0123456789"
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	b.Cleanup(up.Close)
	cfg := servertest.DevConfig + `
clients:
  - {id: basic, secret: "` + secret + `", grant_types: [client_credentials], scopes: [api]}
routes:
  - {path: /app, upstream: "` + up.URL + `"}
proxy: {session_cache: 30s}
`
	// The longest session cache: a re-read of the session record when it
	// lapses depends on the wall clock, which valgrind stretches.
	cfg = strings.Replace(cfg, "\nserver:\n", "\nserver:\n  rate_limits: {disabled: true}\n", 1)
	quiet := slog.New(slog.DiscardHandler)
	variants := []*obsVariant{
		{name: "off", in: servertest.StartWith(b, cfg, servertest.Options{Server: server.Options{Logger: quiet}})},
		{name: "metrics", in: servertest.StartWith(b, cfg, servertest.Options{Server: server.Options{Logger: quiet, Metrics: metrics.New()}})},
		{name: "traces", in: servertest.StartWith(b, cfg, servertest.Options{Server: server.Options{Logger: quiet,
			TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewNoopExporter()))}})},
		// The log as `aero2 serve` writes it off a terminal (JSON lines;
		// discarded here, so that the encoding is counted, not the
		// write), and as slog's own JSON handler wrote it before (what
		// logging's doc compares).
		{name: "logs", in: servertest.StartWith(b, cfg, servertest.Options{Server: server.Options{Logger: slog.New(logging.NewJSON(io.Discard, slog.LevelInfo))}})},
		{name: "slogjson", in: servertest.StartWith(b, cfg, servertest.Options{Server: server.Options{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))}})},
	}
	for _, v := range variants {
		br := v.in.NewBrowser(b)
		if p := br.SignInDev(v.in.URL+"/app/", "alice"); p.Status != http.StatusOK {
			b.Fatalf("%s: sign-in ended at %d %s", v.name, p.Status, p.URL)
		}
		v.browser = br.NoRedirects().Client
	}
	api := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	return variants, []obsScenario{
		{"proxy", func(v *obsVariant) (*http.Client, *http.Request) {
			r, _ := http.NewRequest(http.MethodGet, v.in.URL+"/app/reports", nil)
			return v.browser, r
		}},
		{"token", func(v *obsVariant) (*http.Client, *http.Request) {
			r, _ := http.NewRequest(http.MethodPost, v.in.URL+"/oauth2/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "scope": {"api"}}.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.SetBasicAuth("basic", secret)
			return api, r
		}},
	}
}

// obsDo sends r with c and fails the benchmark unless it is answered 200.
func obsDo(b *testing.B, c *http.Client, r *http.Request) { servertest.MustOK(b, c, r) }
