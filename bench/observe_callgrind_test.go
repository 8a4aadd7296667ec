//go:build callgrind

package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/aero2/aero2/bench/callgrind"
)

// BenchmarkObservabilityInstructions counts, under valgrind's callgrind,
// the instructions that b.N requests of each scenario (10×b.N proxied
// requests) cost on each server
// of observabilityRig: one labelled dump per scenario and server, which
// bench/callgrind.sh turns into instructions per request and ratios
// against "off". Instruction counts do not move with the machine's load,
// so a cost of 1% is seen as 1%.
//
// Requests are served by calling each server's handler directly, so that
// what is counted is the server's work (and the upstream's, for the
// proxy), not an HTTP client's. Everything in the process is counted,
// background goroutines too; the garbage collector is off.
//
//	bench/callgrind.sh
func BenchmarkObservabilityInstructions(b *testing.B) {
	variants, scenarios := observabilityRig(b)
	serve := func(v *obsVariant, c *http.Client, r *http.Request) {
		for _, ck := range c.Jar.Cookies(r.URL) {
			r.AddCookie(ck)
		}
		r.RequestURI = r.URL.RequestURI()
		r.RemoteAddr = "127.0.0.1:40000"
		rec := httptest.NewRecorder()
		v.in.HTTP.Config.Handler.ServeHTTP(rec, r)
		if rec.Code != http.StatusOK {
			b.Fatalf("%s %s: %d %s", r.Method, r.URL, rec.Code, rec.Body)
		}
	}
	for _, sc := range scenarios {
		b.Run(sc.name, func(b *testing.B) {
			for _, v := range variants { // warm up each
				for range 50 {
					c, r := sc.req(v)
					serve(v, withJar(c), r)
				}
			}
			// A proxied request costs 1/35 of a signed token: ten times
			// as many of them, for as many collections in the count.
			reqs := b.N
			if sc.name == "proxy" {
				reqs *= 10
			}
			// The collector is off while counting: when it runs depends
			// on the heap of every server in the process, and would move
			// a count by more than metrics cost (allocations are
			// -benchmem's to show). Timers (the trace batcher, key
			// rotation) still fire by the wall clock, so the servers take
			// turns for three rounds and bench/callgrind.sh keeps each
			// one's smallest count.
			defer debug.SetGCPercent(debug.SetGCPercent(-1))
			for round := range 3 {
				for _, v := range variants {
					runtime.GC()
					callgrind.Zero()
					for range reqs {
						c, r := sc.req(v)
						serve(v, withJar(c), r)
					}
					callgrind.Dump(fmt.Sprintf("%s %s %d %d %d", sc.name, v.name, reqs, b.N, round))
				}
			}
		})
	}
}

// withJar gives a client without cookies (the API client) an empty jar.
func withJar(c *http.Client) *http.Client {
	if c.Jar == nil {
		return &http.Client{Jar: emptyJar{}}
	}
	return c
}

type emptyJar struct{}

func (emptyJar) SetCookies(*url.URL, []*http.Cookie) {}
func (emptyJar) Cookies(*url.URL) []*http.Cookie     { return nil }
