package proxy_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"runtime"
	"testing"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/config/configtest"
	"github.com/aero2/aero2/proxy"
	"github.com/aero2/aero2/proxy/proxytest"
	"github.com/aero2/aero2/store/memory"
)

// discardWriter is a ResponseWriter that keeps nothing, so that what a
// benchmark allocates is what the proxy allocates.
type discardWriter struct {
	h    http.Header
	code int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(code int)        { d.code = code }

// signedInProxy runs a proxy whose route / goes to upstream, signs a
// browser in through a test provider, and returns the handler, its base
// URL and the browser's cookies.
func signedInProxy(b testing.TB, upstream, sessionCache string) (http.Handler, string, []*http.Cookie) {
	b.Helper()
	op := proxytest.StartOP(b)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	src := `
insecure_dev: true
server: {public_url: "` + base + `"}
secrets: {cookie_keys: ["` + configtest.CookieKey + `"], storage_key: "` + configtest.StorageKey + `"}
identity_providers: [{id: dev, type: dev}]
proxy: {provider: "` + op.Issuer + `", client_secret: ` + proxytest.ClientSecret + `, session_cache: ` + sessionCache + `}
routes:
  - {path: /, upstream: "` + upstream + `"}
`
	cfg, err := config.Parse("t.yaml", []byte(src), func(string) (string, bool) { return "", false })
	if err != nil {
		b.Fatal(err)
	}
	h, err := proxy.New(proxy.Options{Config: cfg, Store: memory.New(), Apps: []proxy.App{{Config: cfg.Apps()[0]}}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	b.Cleanup(srv.Close)
	op.AllowRedirect(base + "/.aero2/callback")
	jar, _ := cookiejar.New(nil)
	res, err := (&http.Client{Jar: jar}).Get(base + "/x")
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b.Fatalf("sign-in: %d", res.StatusCode)
	}
	u, _ := url.Parse(base)
	return h, base, jar.Cookies(u)
}

// fixedUpstream answers every request with 1 KiB.
func fixedUpstream(t testing.TB) *httptest.Server {
	body := bytes.Repeat([]byte("a"), 1024)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	}))
	t.Cleanup(up.Close)
	return up
}

// proxyGet serves one GET of target with cookies through h into w.
func proxyGet(ctx context.Context, h http.Handler, w *discardWriter, u *url.URL, cookies []*http.Cookie) {
	r := &http.Request{Method: http.MethodGet, URL: u, Host: u.Host, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, RemoteAddr: "127.0.0.1:4000"}
	for _, c := range cookies {
		r.AddCookie(c)
	}
	clear(w.h)
	w.code = 0
	h.ServeHTTP(w, r.WithContext(ctx))
}

// TestProxiedRequestReusesCopyBuffers: a proxied request allocates less
// than the 32 KiB buffer httputil.ReverseProxy makes for each response
// without a BufferPool (it made 44 KB per request before the pool, 12 KB
// with it). Bytes are counted over the whole process, the upstream's
// too, so the bound errs on the generous side.
func TestProxiedRequestReusesCopyBuffers(t *testing.T) {
	up := fixedUpstream(t)
	h, base, cookies := signedInProxy(t, up.URL, "30s")
	u, _ := url.Parse(base + "/x")
	w := &discardWriter{h: http.Header{}}
	for range 20 { // warm the pools and connections
		proxyGet(t.Context(), h, w, u, cookies)
	}
	const n = 500
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		proxyGet(t.Context(), h, w, u, cookies)
		if w.code != http.StatusOK {
			t.Fatalf("status %d", w.code)
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / n; per >= 32<<10 {
		t.Errorf("%d bytes allocated per proxied request: the copy buffer is not pooled", per)
	}
}

// BenchmarkProxyHandler: one proxied GET (a 1 KiB answer) through the
// bare httputil.ReverseProxy, and through Aero2's handler with a
// signed-in browser session, on the memory store: with the session in the
// in-process cache, and read from the store on every request
// (session_cache 1ns). Run with -benchmem: B/op and allocs/op of "bare"
// are the baseline the others are measured against, in the same run.
//
//	go test -run '^$' -bench BenchmarkProxyHandler -benchmem ./proxy/
func BenchmarkProxyHandler(b *testing.B) {
	up := fixedUpstream(b)
	upURL, _ := url.Parse(up.URL)
	// The transports are alike: a pool large enough that no request
	// waits for a connection.
	transport := func() *http.Transport {
		return &http.Transport{MaxIdleConnsPerHost: 64, ForceAttemptHTTP2: true}
	}
	bare := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(upURL); pr.SetXForwarded() },
		Transport: transport(),
	}
	run := func(b *testing.B, h http.Handler, target string, cookies []*http.Cookie) {
		w := &discardWriter{h: http.Header{}}
		u, _ := url.Parse(target)
		for b.Loop() {
			proxyGet(b.Context(), h, w, u, cookies)
			if w.code != http.StatusOK {
				b.Fatalf("status %d", w.code)
			}
		}
	}
	cached, cachedBase, cachedCookies := signedInProxy(b, up.URL, "2s")
	uncached, uncachedBase, uncachedCookies := signedInProxy(b, up.URL, "1ns")
	b.Run("bare", func(b *testing.B) { run(b, bare, cachedBase+"/x", cachedCookies) })
	b.Run("aero2/cached", func(b *testing.B) { run(b, cached, cachedBase+"/x", cachedCookies) })
	b.Run("aero2/store", func(b *testing.B) { run(b, uncached, uncachedBase+"/x", uncachedCookies) })
}

// BenchmarkProxyHandlerParallel is BenchmarkProxyHandler with 32
// requests in flight per P (-cpu 2: 64, as bench/proxy's full load):
// what it adds to the sequential one is contention (the session cache's
// lock, singleflight, the transports' connection pools), which a
// -mutexprofile or -blockprofile of it shows. Ratios against "bare", in
// the same run, as there.
//
//	go test -run '^$' -bench BenchmarkProxyHandlerParallel -benchmem -cpu 2 ./proxy/
func BenchmarkProxyHandlerParallel(b *testing.B) {
	up := fixedUpstream(b)
	upURL, _ := url.Parse(up.URL)
	bare := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(upURL); pr.SetXForwarded() },
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, ForceAttemptHTTP2: true},
	}
	run := func(b *testing.B, h http.Handler, target string, cookies []*http.Cookie) {
		u, _ := url.Parse(target)
		b.SetParallelism(32)
		b.RunParallel(func(pb *testing.PB) {
			w := &discardWriter{h: http.Header{}}
			for pb.Next() {
				proxyGet(b.Context(), h, w, u, cookies)
				if w.code != http.StatusOK {
					b.Errorf("status %d", w.code)
					return
				}
			}
		})
	}
	cached, cachedBase, cachedCookies := signedInProxy(b, up.URL, "2s")
	uncached, uncachedBase, uncachedCookies := signedInProxy(b, up.URL, "1ns")
	b.Run("bare", func(b *testing.B) { run(b, bare, cachedBase+"/x", cachedCookies) })
	b.Run("aero2/cached", func(b *testing.B) { run(b, cached, cachedBase+"/x", cachedCookies) })
	b.Run("aero2/store", func(b *testing.B) { run(b, uncached, uncachedBase+"/x", uncachedCookies) })
}
