//go:build callgrind

package main

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aero2/aero2/bench/callgrind"
	"github.com/aero2/aero2/server"
	"github.com/aero2/aero2/server/servertest"
)

// TestRevalidationInstructions counts, under valgrind's callgrind, what a
// proxied request of a session of Aero2's own provider costs when it is
// served from the proxy's cache ("cached"), when it reads the proxy
// record and its provider session (one store round trip, memory store
// here) without recording a use ("read": session_cache 1ns, the clock
// moving a millisecond before each request), and when that read also records the use ("touch": the
// clock moves past the touch gap before every request: a tenth of the
// idle timeout, 10 minutes here, so that the requests of the three rounds
// fit in the session's lifetimes; 5 minutes at the default 12 hours). A
// session in steady use is read and touched once per touch gap
// (trustUntil), read whenever session_cache (2s by default) lapses, and
// served from the cache otherwise. For each: 200 and then 600 requests,
// three rounds; the difference of the smallest counts over 400 is one
// request's.
//
//	bench/callgrind-proxy.sh revalidate
func TestRevalidationInstructions(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	t.Cleanup(up.Close)
	type variant struct {
		name string
		in   *servertest.Instance
		c    *http.Client
		step time.Duration // the clock's move before each request
		mu   sync.Mutex
		now  time.Time
	}
	mk := func(name, cache string, step time.Duration) *variant {
		v := &variant{name: name, step: step, now: time.Now()}
		clock := func() time.Time { v.mu.Lock(); defer v.mu.Unlock(); return v.now }
		cfg := servertest.DevConfig + `
routes:
  - {path: /app, upstream: "` + up.URL + `"}
proxy: {session_cache: ` + cache + `}
session: {idle_timeout: 10m}
`
		cfg = strings.Replace(cfg, "\nserver:\n", "\nserver:\n  rate_limits: {disabled: true}\n", 1)
		v.in = servertest.StartWith(t, cfg, servertest.Options{Server: server.Options{Logger: slog.New(slog.DiscardHandler), Now: clock}})
		br := v.in.NewBrowser(t)
		if p := br.SignInDev(v.in.URL+"/app/", "alice"); p.Status != http.StatusOK {
			t.Fatalf("%s: sign-in ended at %d %s", name, p.Status, p.URL)
		}
		v.c = br.NoRedirects().Client
		return v
	}
	variants := []*variant{
		mk("cached", "30s", 0),
		mk("read", "1ns", time.Millisecond),
		mk("touch", "1ns", time.Minute+time.Second),
	}
	serve := func(v *variant, n int) {
		h := v.in.HTTP.Config.Handler
		for i := range n {
			v.mu.Lock()
			v.now = v.now.Add(v.step)
			v.mu.Unlock()
			r, _ := http.NewRequest(http.MethodGet, v.in.URL+"/app/reports", nil)
			for _, ck := range v.c.Jar.Cookies(r.URL) {
				r.AddCookie(ck)
			}
			r.RequestURI = r.URL.RequestURI()
			r.RemoteAddr = "127.0.0.1:40000"
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != http.StatusOK {
				t.Fatalf("%s: request %d: %d %s", v.name, i, rec.Code, rec.Body)
			}
		}
	}
	for _, v := range variants {
		serve(v, 20)
	}
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	for round := range 3 {
		for _, v := range variants {
			for _, n := range []int{200, 600} {
				runtime.GC()
				callgrind.Zero()
				serve(v, n)
				callgrind.Dump(fmt.Sprintf("%s %d %d", v.name, n, round))
			}
		}
	}
}
