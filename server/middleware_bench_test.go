package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/aero2/aero2/metrics"
	"github.com/aero2/aero2/reqlog"
)

// BenchmarkMiddleware measures what the front door (client address, access
// log line as JSON, panic guard, request ID) adds to a request, against the
// same handler without it, and what request metrics add to that, in one
// run:
//
//	go test -run '^$' -bench BenchmarkMiddleware -benchmem ./server/
func BenchmarkMiddleware(b *testing.B) {
	tp, err := newTrustedProxies([]string{"127.0.0.0/8"})
	if err != nil {
		b.Fatal(err)
	}
	s := &Server{log: slog.New(slog.NewJSONHandler(io.Discard, nil)), trusted: tp, ids: newRequestIDs()}
	// With metrics: the request histogram by kind, detail and status,
	// as a proxied request records it.
	sm := &Server{log: s.log, trusted: tp, ids: s.ids, metrics: metrics.New()}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	kinded := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqlog.SetKind(r.Context(), "proxy", "routes[0]")
		w.Write([]byte("ok"))
	})
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{{"bare", ok}, {"middleware", s.middleware(kinded)}, {"middleware+metrics", sm.middleware(kinded)}} {
		b.Run(bc.name, func(b *testing.B) {
			r := httptest.NewRequest(http.MethodGet, "http://app.example.com/reports/2026", nil)
			r.RemoteAddr = "192.0.2.7:5555"
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				bc.h.ServeHTTP(w, r)
			}
		})
	}
}
