package federation_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/aero2/aero2/federation/github/githubfake"
	"github.com/aero2/aero2/server/servertest"
)

// BenchmarkCallback measures the sign-in callback against GitHub's fake
// on loopback, with the Redis store:
//
//   - idp: the baseline, what the callback spends at the provider alone
//     (code exchange with PKCE, GET /user, GET /user/emails), done with a
//     bare x/oauth2 client;
//   - full: Aero2's whole /rp/callback/github (state taken from Redis,
//     the same provider calls, user upsert, session created, cookie set),
//     over HTTP as a browser sends it.
//
// Each reports logins/s (1 / mean latency, one login at a time) and p99.
// Run: go test -run '^$' -bench Callback -benchtime 3000x ./federation/
func BenchmarkCallback(b *testing.B) {
	gh := githubfake.Start(b, githubfake.User{ID: 1, Login: "bench", Name: "Bench",
		Emails: []githubfake.Email{{Email: "bench@example.com", Primary: true, Verified: true}}})

	b.Run("idp", func(b *testing.B) {
		cfg := oauth2.Config{ClientID: gh.ClientID, ClientSecret: gh.ClientSecret, RedirectURL: "http://127.0.0.1/cb",
			Endpoint: oauth2.Endpoint{TokenURL: gh.URL + "/login/oauth/access_token", AuthStyle: oauth2.AuthStyleInParams}}
		hc := &http.Client{Timeout: 10 * time.Second}
		ctx := context.WithValue(context.Background(), oauth2.HTTPClient, hc)
		lat := make([]time.Duration, 0, b.N)
		for b.Loop() {
			verifier := oauth2.GenerateVerifier()
			b.StopTimer()
			code := gh.Code(cfg.RedirectURL, oauth2.S256ChallengeFromVerifier(verifier))
			b.StartTimer()
			t0 := time.Now()
			tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
			if err != nil {
				b.Fatal(err)
			}
			for _, path := range []string{"/api/v3/user", "/api/v3/user/emails?per_page=100"} {
				req, _ := http.NewRequest("GET", gh.URL+path, nil)
				req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
				res, err := hc.Do(req)
				if err != nil || res.StatusCode != 200 {
					b.Fatalf("GET %s: %v", path, err)
				}
				res.Body.Close()
			}
			lat = append(lat, time.Since(t0))
		}
		report(b, lat)
	})

	b.Run("full", func(b *testing.B) {
		in := servertest.Start(b, githubConfig(gh, false), servertest.SharedStore(b))
		br := servertest.NewBrowser(b)
		start := in.URL + "/rp/authorize?idp=github&redirect_uri=/account"
		lat := make([]time.Duration, 0, b.N)
		for b.Loop() {
			b.StopTimer()
			// Start a sign-in (state stored in Redis, cookie set), and
			// have GitHub approve it without the browser round trip.
			_, loc := br.Redirect(start)
			u, err := url.Parse(loc)
			if err != nil {
				b.Fatal(err)
			}
			q := u.Query()
			code := gh.Code(q.Get("redirect_uri"), q.Get("code_challenge"))
			cb := q.Get("redirect_uri") + "?" + url.Values{"code": {code}, "state": {q.Get("state")}}.Encode()
			b.StartTimer()
			t0 := time.Now()
			status, loc := br.Redirect(cb)
			lat = append(lat, time.Since(t0))
			if status != http.StatusFound || !strings.HasSuffix(loc, "/account") {
				b.Fatalf("callback: %d %s", status, loc)
			}
		}
		report(b, lat)
	})
}

// BenchmarkCallbackParallel is the full callback with GOMAXPROCS
// concurrent logins (as many browsers at once), the sign-ins started and
// approved before the timer: logins/s is then throughput, not 1/latency.
func BenchmarkCallbackParallel(b *testing.B) {
	gh := githubfake.Start(b, githubfake.User{ID: 1, Login: "bench", Name: "Bench",
		Emails: []githubfake.Email{{Email: "bench@example.com", Primary: true, Verified: true}}})
	in := servertest.Start(b, githubConfig(gh, false), servertest.SharedStore(b))
	br := servertest.NewBrowser(b)
	start := in.URL + "/rp/authorize?idp=github&redirect_uri=/account"
	callbacks := make(chan string, b.N)
	for range b.N {
		_, loc := br.Redirect(start)
		u, err := url.Parse(loc)
		if err != nil {
			b.Fatal(err)
		}
		q := u.Query()
		code := gh.Code(q.Get("redirect_uri"), q.Get("code_challenge"))
		callbacks <- q.Get("redirect_uri") + "?" + url.Values{"code": {code}, "state": {q.Get("state")}}.Encode()
	}
	close(callbacks)
	var mu sync.Mutex
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	began := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		mine := make([]time.Duration, 0, b.N)
		for pb.Next() {
			cb := <-callbacks
			t0 := time.Now()
			res, err := br.NoRedirects().Client.Get(cb)
			if err != nil {
				b.Error(err)
				return
			}
			res.Body.Close()
			mine = append(mine, time.Since(t0))
			if res.StatusCode != http.StatusFound || !strings.HasSuffix(res.Header.Get("Location"), "/account") {
				b.Errorf("callback: %d %s", res.StatusCode, res.Header.Get("Location"))
				return
			}
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	elapsed := time.Since(began)
	b.StopTimer()
	report(b, lat)
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "logins/s") // throughput replaces 1/latency
}

func report(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	slices.Sort(lat)
	p99 := lat[min(len(lat)-1, len(lat)*99/100)]
	b.ReportMetric(float64(len(lat))/sum.Seconds(), "logins/s")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
}
