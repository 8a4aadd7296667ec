// Command proxy is a load benchmark of Aero2's proxy. In one run, against
// one upstream, it measures: the upstream directly; a bare
// httputil.ReverseProxy with an idle pool sized for the load (the
// ceiling); and Aero2's proxy with a valid session on the Redis store
// (127.0.0.1:6379, or $AERO2_TEST_REDIS_ADDR). It prints requests/s, p50
// and p99 for each, Aero2's throughput as a fraction of the bare proxy's,
// and the p99 latency Aero2 adds at moderate load.
//
//	go run ./bench/proxy [-c 32] [-d 5s] [-moderate 4]
//
// Only the sign-in is not real here: the provider is a stand-in that
// hands out tokens for a provider session kept in the real store, so the
// measured request path (route, session cache, Redis, provider-session
// liveness, headers, upstream) is exactly production's.
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/proxy"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/redis"
)

func main() {
	conc := flag.Int("c", 32, "concurrent clients at full load")
	moderate := flag.Int("moderate", 4, "concurrent clients at moderate load (for added p99)")
	dur := flag.Duration("d", 5*time.Second, "duration of each measurement")
	flag.Parse()
	if err := run(*conc, *moderate, *dur); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func serve(h http.Handler) (string, func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }
}

func run(conc, moderate int, dur time.Duration) error {
	body := strings.Repeat("x", 1024)
	upURL, stop := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, body)
	}))
	defer stop()
	target, _ := url.Parse(upURL)

	bare := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(target); pr.SetXForwarded() },
		Transport: &http.Transport{MaxIdleConnsPerHost: 512, ForceAttemptHTTP2: true},
	}
	bareURL, stopBare := serve(bare)
	defer stopBare()

	aeroURL, client, cleanup, err := aero2(upURL)
	if err != nil {
		return err
	}
	defer cleanup()

	fmt.Printf("Aero2 proxy benchmark: %d concurrent clients, %s each, 1 KiB responses, GOMAXPROCS=%d\n\n", conc, dur, runtimeProcs())
	full := map[string]result{}
	for _, t := range []struct{ name, url string }{{"upstream direct", upURL + "/app/x"}, {"bare ReverseProxy", bareURL + "/app/x"}, {"Aero2 (Redis session)", aeroURL + "/app/x"}} {
		c := client
		if !strings.HasPrefix(t.url, aeroURL) {
			c = newClient(nil, conc)
		}
		r := load(c, t.url, conc, dur)
		full[t.name] = r
		fmt.Printf("%-24s %9.0f req/s   p50 %7s   p99 %7s   errors %d\n", t.name, r.rps, r.p50, r.p99, r.errors)
	}
	fmt.Printf("\nAero2 / bare ReverseProxy throughput: %.2f\n", full["Aero2 (Redis session)"].rps/full["bare ReverseProxy"].rps)

	fmt.Printf("\nModerate load: %d concurrent clients\n", moderate)
	b := load(newClient(nil, moderate), bareURL+"/app/x", moderate, dur)
	a := load(client, aeroURL+"/app/x", moderate, dur)
	fmt.Printf("%-24s %9.0f req/s   p50 %7s   p99 %7s\n", "bare ReverseProxy", b.rps, b.p50, b.p99)
	fmt.Printf("%-24s %9.0f req/s   p50 %7s   p99 %7s\n", "Aero2 (Redis session)", a.rps, a.p50, a.p99)
	fmt.Printf("p99 added by Aero2 at moderate load: %s\n", a.p99-b.p99)
	return nil
}

func runtimeProcs() int { return int(maxprocs()) }

type result struct {
	rps      float64
	p50, p99 time.Duration
	errors   int
}

func newClient(jar http.CookieJar, conc int) *http.Client {
	return &http.Client{Jar: jar, Transport: &http.Transport{MaxIdleConnsPerHost: conc * 2, DisableCompression: true}}
}

// load runs conc clients against u for d and measures every request.
func load(c *http.Client, u string, conc int, d time.Duration) result {
	// Warm up the connection pools.
	for i := 0; i < conc*4; i++ {
		if res, err := c.Get(u); err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
	}
	deadline := time.Now().Add(d)
	var mu sync.Mutex
	var all []time.Duration
	errors := 0
	var wg sync.WaitGroup
	for i := 0; i < conc; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 1<<16)
			errs := 0
			for time.Now().Before(deadline) {
				t0 := time.Now()
				res, err := c.Get(u)
				if err != nil {
					errs++
					continue
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					errs++
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			errors += errs
			mu.Unlock()
		}()
	}
	wg.Wait()
	slices.Sort(all)
	if len(all) == 0 {
		return result{errors: errors}
	}
	return result{
		rps: float64(len(all)) / d.Seconds(),
		p50: all[len(all)/2].Round(time.Microsecond), p99: all[len(all)*99/100].Round(time.Microsecond),
		errors: errors,
	}
}

// aero2 starts Aero2's proxy on the Redis store and signs a client in.
func aero2(upURL string) (string, *http.Client, func(), error) {
	addr := os.Getenv("AERO2_TEST_REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	prefix := "aero2bench-" + rand.Text()[:10]
	ctx := context.Background()
	st, err := redis.Open(ctx, config.Redis{Addrs: []string{addr}, KeyPrefix: prefix, DialTimeout: 2 * time.Second, ReadTimeout: 3 * time.Second, WriteTimeout: 3 * time.Second, PoolSize: 64})
	if err != nil {
		return "", nil, nil, fmt.Errorf("the benchmark needs Redis (./scripts/test starts it): %w", err)
	}
	src := `
server: {public_url: "https://auth.example.com"}
secrets: {cookie_keys: ["bench-cookie-key-0123456789abcdef0123"], storage_key: "bench-storage-key-0123456789abcdef012"}
insecure_dev: true
identity_providers: [{id: dev, type: dev}]
routes:
  - {path: /app, upstream: "` + upURL + `"}
`
	cfg, err := config.Parse("bench.yaml", []byte(src), func(string) (string, bool) { return "", false })
	if err != nil {
		return "", nil, nil, err
	}
	now := time.Now().UTC()
	ps := &store.Session{ID: "bench-provider-session", App: "default", UserID: "u1", CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(time.Hour)}
	if err := st.CreateSession(ctx, ps, time.Hour); err != nil {
		return "", nil, nil, err
	}
	h, err := proxy.New(proxy.Options{
		Config: cfg, Store: st, Logger: slog.New(slog.DiscardHandler),
		Apps: []proxy.App{{Config: cfg.Apps()[0], Provider: standIn{sid: ps.ID}}},
	})
	if err != nil {
		return "", nil, nil, err
	}
	u, stop := serve(h)
	jar, _ := cookiejar.New(nil)
	c := newClient(jar, 64)
	res, err := c.Get(u + "/app/signin")
	if err != nil {
		return "", nil, nil, err
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		return "", nil, nil, fmt.Errorf("bench sign-in ended with %d", res.StatusCode)
	}
	return u, c, func() { stop(); st.DeleteSession(ctx, "default", ps.ID); st.Close() }, nil
}

// standIn is the benchmark's provider: it approves every sign-in at once.
type standIn struct{ sid string }

func (s standIn) AuthCodeURL(_ context.Context, a proxy.AuthRequest) (string, error) {
	return a.RedirectURI + "?code=bench&state=" + url.QueryEscape(a.State), nil
}

func (s standIn) Exchange(context.Context, proxy.AuthRequest, string) (*proxy.Tokens, error) {
	return &proxy.Tokens{Identity: proxy.Identity{Subject: "u1", Email: "bench@example.com", EmailVerified: true, Groups: []string{"bench"}, SessionID: s.sid}}, nil
}

func (standIn) Refresh(context.Context, string) (*proxy.Tokens, error) {
	return nil, fmt.Errorf("no refresh in the benchmark")
}

func (standIn) VerifyAccessToken(context.Context, string) (*proxy.Identity, error) {
	return nil, proxy.ErrInvalidToken
}

func (standIn) LogoutURL(context.Context, string, string) (string, error) { return "", nil }
