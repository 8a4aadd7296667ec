package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkMiddleware measures what the front door (client address, access
// log line as JSON, panic guard) adds to a request, against the same
// handler without it, in one run:
//
//	go test -run '^$' -bench BenchmarkMiddleware -benchmem ./server/
func BenchmarkMiddleware(b *testing.B) {
	tp, err := newTrustedProxies([]string{"127.0.0.0/8"})
	if err != nil {
		b.Fatal(err)
	}
	s := &Server{log: slog.New(slog.NewJSONHandler(io.Discard, nil)), trusted: tp}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{{"bare", ok}, {"middleware", s.middleware(ok)}} {
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
