package server_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aero2/aero2/server"
)

// TestGracefulShutdown: after the signal, the listener closes, the request
// in flight finishes with its answer, and only then does the store close.
func TestGracefulShutdown(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	var storeClosedEarly atomic.Bool
	var inFlight atomic.Int32
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inFlight.Add(1)
		defer inFlight.Add(-1)
		close(entered)
		<-release
		w.Write([]byte("finished"))
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var closed atomic.Bool
	done := make(chan error, 1)
	go func() {
		done <- server.Serve(ctx, srv, ln, 10*time.Second, "", "", func() error {
			if inFlight.Load() > 0 {
				storeClosedEarly.Store(true)
			}
			closed.Store(true)
			return nil
		}, slog.New(slog.DiscardHandler))
	}()

	type result struct {
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		res, err := http.Get("http://" + ln.Addr().String() + "/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		got <- result{string(b), err}
	}()
	<-entered
	cancel() // SIGTERM
	time.Sleep(100 * time.Millisecond)
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Error("listener still accepting after shutdown began")
	}
	if closed.Load() {
		t.Error("store closed while a request was in flight")
	}
	close(release)
	r := <-got
	if r.err != nil || r.body != "finished" {
		t.Fatalf("in-flight request: %q, %v", r.body, r.err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if !closed.Load() || storeClosedEarly.Load() {
		t.Errorf("store closed=%v, early=%v", closed.Load(), storeClosedEarly.Load())
	}
}
