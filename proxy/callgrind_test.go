//go:build callgrind

package proxy_test

import (
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/aero2/aero2/bench/callgrind"
)

// TestProxyHandlerInstructions counts, under valgrind's callgrind, the
// instructions of BenchmarkProxyHandler's three handlers (the bare
// ReverseProxy, Aero2 with the session cached, Aero2 reading the store on
// every request), the in-process upstream's work included: for each, 1,000
// and then 3,000 requests, three rounds taking turns, each count dumped
// under its own label. The difference of the two (the smallest of each
// over the rounds) over 2,000 is a request's instructions without what
// starting a run costs. Instruction counts do not move with the machine's
// load, as timings do; the collector is off while counting.
//
//	bench/callgrind-proxy.sh
func TestProxyHandlerInstructions(t *testing.T) {
	up := fixedUpstream(t)
	upURL, _ := url.Parse(up.URL)
	bare := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(upURL); pr.SetXForwarded() },
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, ForceAttemptHTTP2: true},
	}
	cached, cachedBase, cachedCookies := signedInProxy(t, up.URL, "30s")
	uncached, uncachedBase, uncachedCookies := signedInProxy(t, up.URL, "1ns")
	type variant struct {
		name    string
		h       http.Handler
		u       *url.URL
		cookies []*http.Cookie
	}
	mk := func(name string, h http.Handler, base string, cookies []*http.Cookie) variant {
		u, _ := url.Parse(base + "/x")
		return variant{name, h, u, cookies}
	}
	variants := []variant{
		mk("bare", bare, cachedBase, cachedCookies),
		mk("cached", cached, cachedBase, cachedCookies),
		mk("store", uncached, uncachedBase, uncachedCookies),
	}
	w := &discardWriter{h: http.Header{}}
	serve := func(v variant, n int) {
		for range n {
			proxyGet(t.Context(), v.h, w, v.u, v.cookies)
			if w.code != http.StatusOK {
				t.Fatalf("%s: status %d", v.name, w.code)
			}
		}
	}
	for _, v := range variants { // warm the pools and connections
		serve(v, 200)
	}
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	for round := range 3 {
		for _, v := range variants {
			for _, n := range []int{1000, 3000} {
				runtime.GC()
				callgrind.Zero()
				serve(v, n)
				callgrind.Dump(fmt.Sprintf("%s %d %d", v.name, n, round))
			}
		}
	}
}
