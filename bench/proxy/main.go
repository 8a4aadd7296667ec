// Command proxy is a load benchmark of Aero2's proxy. In one run, against
// one upstream, it measures three targets:
//
//   - the upstream directly;
//   - a bare httputil.ReverseProxy (Rewrite, X-Forwarded-*) with an idle
//     pool sized for the load: the ceiling for any Go reverse proxy;
//   - a whole Aero2 server (routing, access log, session check, header
//     stripping and injection, upstream pool) on the Redis store at
//     127.0.0.1:6379 ($AERO2_TEST_REDIS_ADDR), with a browser session
//     signed in for real: through Aero2's provider, login page and the dev
//     identity provider.
//
// The machine is shared and noisy, so the targets are not measured one
// after the other: the run is cut into rounds, and each round gives every
// target a slice in a fresh random order. Latencies and request counts are
// pooled per target across rounds. It prints requests/s, p50 and p99 for
// each target at full load (-c clients) and at moderate load (-moderate
// clients), Aero2's throughput as a fraction of the bare proxy's, and the
// p99 latency Aero2 adds at moderate load.
//
//	go run ./bench/proxy [-c 32] [-moderate 4] [-d 20s] [-rounds 10] [-session-cache 1ms] [-cpuprofile f]
//
// It asserts nothing about speed; it fails only when a request fails.
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"html"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httputil"
	"net/url"
	"os"
	"regexp"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/logging"
	"github.com/aero2/aero2/server"
	"github.com/aero2/aero2/store/redis"
)

func main() {
	conc := flag.Int("c", 32, "concurrent clients at full load")
	moderate := flag.Int("moderate", 4, "concurrent clients at moderate load")
	dur := flag.Duration("d", 20*time.Second, "total measuring time per target and load")
	rounds := flag.Int("rounds", 10, "rounds the time is cut into (targets alternate within each)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	sessionCache := flag.Duration("session-cache", 0, "proxy.session_cache (0: Aero2's default, 2s); 1ms makes nearly every request read Redis")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if err := run(*conc, *moderate, *dur, *rounds, *sessionCache); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type target struct {
	name   string
	url    string
	cookie string // the session cookie, for Aero2
}

func run(conc, moderate int, dur time.Duration, rounds int, sessionCache time.Duration) error {
	body := strings.Repeat("x", 1024)
	upURL, stopUp := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, body)
	}))
	defer stopUp()
	up, _ := url.Parse(upURL)

	bare := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(up); pr.SetXForwarded() },
		// Sized for the load: Go's default keeps 2 idle connections per
		// host, which alone halves throughput here.
		Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 512, IdleConnTimeout: 90 * time.Second},
	}
	bareURL, stopBare := serve(bare)
	defer stopBare()

	aeroURL, cookie, stopAero, err := aero2(upURL, sessionCache)
	if err != nil {
		return err
	}
	defer stopAero()

	targets := []target{
		{"upstream direct", upURL + "/app/x", ""},
		{"bare ReverseProxy", bareURL + "/app/x", ""},
		{"Aero2 (Redis session)", aeroURL + "/app/x", cookie},
	}
	cache := "2s (default)"
	if sessionCache > 0 {
		cache = sessionCache.String()
	}
	fmt.Printf("Aero2 proxy benchmark: GOMAXPROCS=%d, 1 KiB responses, %d rounds, targets alternating in random order, session_cache %s\n", runtime.GOMAXPROCS(0), rounds, cache)
	for _, load := range []int{conc, moderate} {
		res := measure(targets, load, dur, rounds)
		fmt.Printf("\n%d concurrent clients, %s per target (p99 by round: lowest / median / highest):\n", load, dur)
		for _, t := range targets {
			r := res[t.name]
			fmt.Printf("  %-24s %9.0f req/s   p50 %8s   p99 %8s   errors %d   p99 by round %s\n", t.name, r.rps, r.p50, r.p99, r.errors, spread(r.rounds99))
			s99, _ := r.sched.quantile(0.99)
			g99, gn := r.gcPause.quantile(0.99)
			gmax, _ := r.gcPause.quantile(1)
			fmt.Printf("  %-24s goroutine run delay p99 %s; %d GC pauses, p99 %s, max %s\n", "", s99, gn, g99, gmax)
			if r.errors > 0 {
				return fmt.Errorf("%s: %d failed requests", t.name, r.errors)
			}
		}
		a, b := res["Aero2 (Redis session)"], res["bare ReverseProxy"]
		fmt.Printf("  Aero2 / bare ReverseProxy throughput: %.2f\n", a.rps/b.rps)
		fmt.Printf("  latency Aero2 adds over the bare proxy: p50 %s, p99 %s\n", a.p50-b.p50, a.p99-b.p99)
	}
	return nil
}

// spread is the lowest, median and highest of sorted durations.
func spread(d []time.Duration) string {
	if len(d) == 0 {
		return "-"
	}
	return fmt.Sprintf("%s / %s / %s", d[0], d[len(d)/2], d[len(d)-1])
}

func serve(h http.Handler) (string, func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }
}

type result struct {
	rps      float64
	p50, p99 time.Duration
	// rounds99 is each round's own p99, sorted: how far the tail moves
	// between slices of one target is the machine's noise, the yardstick
	// for a difference in p99 between targets.
	rounds99 []time.Duration
	// sched is the whole process's goroutine scheduling latencies (time
	// runnable before running) and gcPause its GC stop-the-world pauses,
	// during this target's slices: a tail that the scheduler or the
	// collector makes shows there, whichever target it lands on.
	sched, gcPause histogram
	errors         int
}

// histogram accumulates runtime/metrics histograms across slices.
type histogram struct {
	buckets []float64
	counts  []uint64
}

func readHistograms() (sched, gc *metrics.Float64Histogram) {
	m := []metrics.Sample{{Name: "/sched/latencies:seconds"}, {Name: "/sched/pauses/total/gc:seconds"}}
	metrics.Read(m)
	return m[0].Value.Float64Histogram(), m[1].Value.Float64Histogram()
}

// add adds after minus before.
func (h *histogram) add(before, after *metrics.Float64Histogram) {
	if h.counts == nil {
		h.buckets, h.counts = after.Buckets, make([]uint64, len(after.Counts))
	}
	for i := range after.Counts {
		h.counts[i] += after.Counts[i] - before.Counts[i]
	}
}

// quantile is the upper bound of the bucket holding quantile q (a
// histogram's buckets are ranges), and the count.
func (h *histogram) quantile(q float64) (time.Duration, uint64) {
	var n uint64
	for _, c := range h.counts {
		n += c
	}
	if n == 0 {
		return 0, 0
	}
	want, seen := uint64(float64(n)*q), uint64(0)
	for i, c := range h.counts {
		seen += c
		if seen > want || seen == n {
			hi := h.buckets[i+1]
			if math.IsInf(hi, 1) {
				hi = h.buckets[i]
			}
			return time.Duration(hi * float64(time.Second)).Round(time.Microsecond), n
		}
	}
	return 0, n
}

// measure gives each target dur in total, in rounds slices, alternating.
func measure(targets []target, conc int, dur time.Duration, rounds int) map[string]result {
	slice := dur / time.Duration(rounds)
	clients := map[string]*http.Client{}
	lat := map[string][]time.Duration{}
	rounds99 := map[string][]time.Duration{}
	sched, gcPause := map[string]*histogram{}, map[string]*histogram{}
	errs := map[string]int{}
	for _, t := range targets {
		clients[t.name] = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc * 2, DisableCompression: true}}
		warm(clients[t.name], t, conc)
	}
	for range rounds {
		order := slices.Clone(targets)
		mrand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, t := range order {
			s0, g0 := readHistograms()
			l, e := load(clients[t.name], t, conc, slice)
			s1, g1 := readHistograms()
			if sched[t.name] == nil {
				sched[t.name], gcPause[t.name] = &histogram{}, &histogram{}
			}
			sched[t.name].add(s0, s1)
			gcPause[t.name].add(g0, g1)
			lat[t.name] = append(lat[t.name], l...)
			if len(l) > 0 {
				slices.Sort(l)
				rounds99[t.name] = append(rounds99[t.name], l[len(l)*99/100].Round(time.Microsecond))
			}
			errs[t.name] += e
		}
	}
	out := map[string]result{}
	for name, all := range lat {
		slices.Sort(all)
		r := result{errors: errs[name], rounds99: rounds99[name], sched: *sched[name], gcPause: *gcPause[name]}
		slices.Sort(r.rounds99)
		if len(all) > 0 {
			r.rps = float64(len(all)) / dur.Seconds()
			r.p50 = all[len(all)/2].Round(time.Microsecond)
			r.p99 = all[len(all)*99/100].Round(time.Microsecond)
		}
		out[name] = r
	}
	return out
}

func get(c *http.Client, t target) (int, error) {
	req, _ := http.NewRequest(http.MethodGet, t.url, nil)
	if t.cookie != "" {
		req.Header.Set("Cookie", t.cookie)
	}
	res, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, nil
}

// warm opens the connection pools before anything is measured.
func warm(c *http.Client, t target, conc int) {
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				get(c, t)
			}
		}()
	}
	wg.Wait()
}

// load runs conc clients against t for d and returns every latency.
func load(c *http.Client, t target, conc int, d time.Duration) ([]time.Duration, int) {
	deadline := time.Now().Add(d)
	var mu sync.Mutex
	var all []time.Duration
	var errors atomic.Int64
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 1<<14)
			for time.Now().Before(deadline) {
				t0 := time.Now()
				status, err := get(c, t)
				if err != nil || status != http.StatusOK {
					errors.Add(1)
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return all, int(errors.Load())
}

// aero2 starts a whole Aero2 on the Redis store in front of upURL, signs a
// browser in through its provider and the dev identity provider, and
// returns the server's URL and the proxy session cookie.
func aero2(upURL string, sessionCache time.Duration) (string, string, func(), error) {
	addr := os.Getenv("AERO2_TEST_REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", nil, err
	}
	base := "http://" + ln.Addr().String()
	prefix := "aero2bench-" + rand.Text()[:10]
	src := `
insecure_dev: true
server: {public_url: "` + base + `"}
store: {type: redis, redis: {addrs: ["` + addr + `"], key_prefix: "` + prefix + `"}}
secrets: {cookie_keys: ["bench-cookie-key-0123456789abcdef0123"], storage_key: "bench-storage-key-0123456789abcdef012"}
identity_providers:
  - {id: dev, type: dev, config: {users: [{username: alice, email: alice@example.com, groups: [bench]}]}}
routes:
  - {path: /app, upstream: "` + upURL + `"}
`
	if sessionCache > 0 {
		src += "proxy: {session_cache: " + sessionCache.String() + "}\n"
	}
	cfg, err := config.Parse("bench.yaml", []byte(src), func(string) (string, bool) { return "", false })
	if err != nil {
		return "", "", nil, err
	}
	ctx := context.Background()
	// Access logs are formatted as in production (JSON) and discarded.
	log := slog.New(logging.NewJSON(io.Discard, slog.LevelInfo)) // as `aero2 serve` logs JSON
	srv, err := server.New(ctx, cfg, server.Options{Logger: log})
	if err != nil {
		return "", "", nil, fmt.Errorf("the benchmark needs Redis at %s (./scripts/test starts it): %w", addr, err)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	cleanup := func() {
		hs.Close()
		srv.Close()
		if st, err := redis.Open(ctx, cfg.Store.Redis); err == nil {
			c := st.Client()
			iter := c.Scan(ctx, 0, prefix+":*", 1000).Iterator()
			for iter.Next(ctx) {
				c.Del(ctx, iter.Val())
			}
			st.Close()
		}
	}
	cookie, err := signIn(base)
	if err != nil {
		cleanup()
		return "", "", nil, fmt.Errorf("bench sign-in: %w", err)
	}
	return base, cookie, cleanup, nil
}

var (
	providerLink = regexp.MustCompile(`href="([^"]*rp/authorize[^"]*)"`)
	formAction   = regexp.MustCompile(`<form method="post" action="([^"]+)">`)
	stateField   = regexp.MustCompile(`name="state" value="([^"]*)"`)
)

// signIn walks the sign-in as a browser would and returns the proxy
// session cookie as a Cookie header value.
func signIn(base string) (string, error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	page := func(res *http.Response, err error) (string, *url.URL, error) {
		if err != nil {
			return "", nil, err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		return string(b), res.Request.URL, err
	}
	body, at, err := page(c.Get(base + "/app/"))
	if err != nil {
		return "", err
	}
	m := providerLink.FindStringSubmatch(body)
	if m == nil {
		return "", fmt.Errorf("no login page at %s", at)
	}
	link, _ := at.Parse(html.UnescapeString(m[1]))
	if body, at, err = page(c.Get(link.String())); err != nil {
		return "", err
	}
	a, s := formAction.FindStringSubmatch(body), stateField.FindStringSubmatch(body)
	if a == nil || s == nil {
		return "", fmt.Errorf("no dev provider page at %s", at)
	}
	action, _ := at.Parse(html.UnescapeString(a[1]))
	if _, at, err = page(c.PostForm(action.String(), url.Values{"state": {html.UnescapeString(s[1])}, "user": {"alice"}})); err != nil {
		return "", err
	}
	if at.Path != "/app/" {
		return "", fmt.Errorf("sign-in ended at %s", at)
	}
	u, _ := url.Parse(base)
	for _, ck := range jar.Cookies(u) {
		if ck.Name == "aero2_proxy" {
			return ck.Name + "=" + ck.Value, nil
		}
	}
	return "", fmt.Errorf("no proxy session cookie after sign-in")
}
