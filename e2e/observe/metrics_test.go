package observe_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/aero2/aero2/metrics"
	"github.com/aero2/aero2/server"
	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store"
)

// TestMetricsAfterFlows scrapes /metrics, over HTTP from the metrics
// listener's handler, after a scripted proxy sign-in and proxied
// requests, a policy denial, a code exchange, a refresh, a reused code, a
// wrong client secret and a revocation over its limit, and checks the
// series each of them counts, by their exact counts.
func TestMetricsAfterFlows(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		m := metrics.New()
		e := start(t, st, server.Options{Metrics: m})
		mh := httptest.NewServer(server.MetricsHandler(m))
		defer mh.Close()

		// The proxy: a sign-in through Aero2's own provider, then two
		// proxied requests and one its policy refuses.
		b := servertest.NewBrowser(t)
		if p := b.SignInDev(e.in.URL+"/app/x", "alice"); p.Status != 200 || p.Body != "upstream /app/x" {
			t.Fatalf("proxied sign-in ended at %d %s: %q", p.Status, p.URL, p.Body)
		}
		if p := b.Get(e.in.URL + "/app/y"); p.Status != 200 {
			t.Fatalf("second proxied request: %d", p.Status)
		}
		if p := b.Get(e.in.URL + "/finance/q"); p.Status != http.StatusForbidden {
			t.Fatalf("route alice's groups do not admit: %d", p.Status)
		}

		// The provider: a code exchange, a refresh, the code again, a
		// wrong secret, and two revocations against a limit of one.
		code, verifier := e.code()
		tok, err := e.web.Exchange(e.ctx, code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		if st, body := e.postForm("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, webSecret); st != 200 {
			t.Fatalf("refresh: %d %s", st, body)
		}
		if _, err := e.web.Exchange(e.ctx, code, oauth2.VerifierOption(verifier)); err == nil {
			t.Fatal("a used code was exchanged again")
		}
		if st, _ := e.postForm("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}, "wrong-secret"); st != http.StatusUnauthorized {
			t.Fatalf("wrong secret: %d", st)
		}
		if st, body := e.postForm("/oauth2/revoke", url.Values{"token": {tok.AccessToken}}, webSecret); st != 200 {
			t.Fatalf("revoke: %d %s", st, body)
		}
		if st, _ := e.postForm("/oauth2/revoke", url.Values{"token": {tok.AccessToken}}, webSecret); st != http.StatusTooManyRequests {
			t.Fatalf("second revocation under a limit of one: %d", st)
		}

		got := scrape(t, mh.URL+"/metrics")
		want := map[string]float64{
			// Two sign-ins at the dev provider: the proxy's browser and
			// the web client's.
			`aero2_sign_ins_total{app="default",idp="dev",outcome="succeeded"}`: 2,
			// The proxy's own code exchange and the web client's; one
			// refresh.
			`aero2_tokens_issued_total{app="default",grant_type="authorization_code"}`: 2,
			`aero2_tokens_issued_total{app="default",grant_type="refresh_token"}`:      1,
			`aero2_tokens_refused_total{app="default",reason="reuse_detected"}`:        1,
			`aero2_tokens_refused_total{app="default",reason="invalid_client"}`:        1,
			`aero2_policy_denials_total{app="default",route="routes[1]"}`:              1,
			`aero2_rate_limit_hits_total{app="default",limit="revoke"}`:                1,
			// The proxied requests: the one the sign-in came back to and
			// the second; the denial is answered by Aero2, not upstream.
			`aero2_upstream_duration_seconds_count{route="routes[0]",status="2xx"}`:                            2,
			`aero2_http_request_duration_seconds_count{detail="routes[0]",kind="proxy",status="2xx"}`:          2,
			`aero2_http_request_duration_seconds_count{detail="routes[0]",kind="proxy",status="3xx"}`:          1,
			`aero2_http_request_duration_seconds_count{detail="routes[1]",kind="proxy",status="4xx"}`:          1,
			`aero2_http_request_duration_seconds_count{detail="authorization_code",kind="token",status="2xx"}`: 2,
			`aero2_http_request_duration_seconds_count{detail="authorization_code",kind="token",status="4xx"}`: 1,
			`aero2_http_request_duration_seconds_count{detail="refresh_token",kind="token",status="2xx"}`:      1,
			`aero2_http_request_duration_seconds_count{detail="refresh_token",kind="token",status="4xx"}`:      1,
			`aero2_http_request_duration_seconds_count{detail="",kind="revoke",status="2xx"}`:                  1,
			`aero2_http_request_duration_seconds_count{detail="",kind="revoke",status="4xx"}`:                  1,
			`aero2_http_request_duration_seconds_count{detail="",kind="jwks",status="2xx"}`:                    1, // the proxy's verifier
		}
		var bad []string
		for k, v := range want {
			if got[k] != v {
				bad = append(bad, k)
				t.Errorf("%s = %v, want %v", k, got[k], v)
			}
		}
		// Present and counting: every store operation the flows used,
		// the signatures, the Go runtime.
		for _, k := range []string{
			`aero2_store_duration_seconds_count{op="take"}`,
			`aero2_store_duration_seconds_count{op="apply"}`,
			`aero2_store_duration_seconds_count{op="get_session"}`,
			`aero2_store_duration_seconds_count{op="rate_limit"}`,
			`aero2_signing_duration_seconds_count{app="default"}`,
			`aero2_http_request_duration_seconds_count{detail="",kind="authorize",status="3xx"}`,
			`aero2_http_request_duration_seconds_count{detail="dev",kind="sign_in_callback",status="3xx"}`,
			`go_goroutines`,
			`go_memstats_alloc_bytes`,
		} {
			if got[k] <= 0 {
				bad = append(bad, k)
				t.Errorf("%s = %v, want > 0", k, got[k])
			}
		}
		// Labels are bounded: no user, client address, path or token.
		for k := range got {
			for _, leak := range []string{"alice", "127.0.0.1", "/app", "/finance", tok.AccessToken[:12], code[:8]} {
				if strings.Contains(k, leak) {
					t.Errorf("series %s has %q in a label", k, leak)
				}
			}
		}
		if len(bad) > 0 {
			var keys []string
			for k := range got {
				if strings.HasPrefix(k, "aero2_") && !strings.Contains(k, "_bucket") {
					keys = append(keys, k)
				}
			}
			sort.Strings(keys)
			for _, k := range keys {
				t.Logf("%s %v", k, got[k])
			}
		}
	})
}

// TestMetricsAndPprofOnlyOnTheMetricsListener: the public port serves
// neither /metrics nor /debug/pprof/; the metrics handler serves both.
func TestMetricsAndPprofOnlyOnTheMetricsListener(t *testing.T) {
	m := metrics.New()
	e := start(t, nil, server.Options{Metrics: m})
	mh := httptest.NewServer(server.MetricsHandler(m))
	defer mh.Close()
	for _, p := range []string{"/metrics", "/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/goroutine?debug=1"} {
		res, err := http.Get(e.in.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			t.Errorf("public port answers %s with 200", p)
		}
		res, err = http.Get(mh.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("metrics listener answers %s with %d", p, res.StatusCode)
		}
	}
}
