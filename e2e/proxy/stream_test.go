package proxy_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/aero2/aero2/proxy/proxytest"
	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store"
)

func mountStreams(release chan struct{}, got chan string) func(*proxytest.Upstream, *http.ServeMux) {
	return func(up *proxytest.Upstream, mux *http.ServeMux) {
		mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
			up.Record(r)
			c, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			defer c.CloseNow()
			ctx := r.Context()
			typ, msg, err := c.Read(ctx)
			if err != nil {
				return
			}
			c.Write(ctx, typ, []byte("echo "+string(msg)+" for "+r.Header.Get("X-Forwarded-User")))
		})
		// An event stream, and a body of unknown length (chunked): the
		// second part only once the client has the first, so that a
		// proxy which holds the first back until the upstream is done
		// gets "late" after it, not "second" (the wait is bounded, so
		// that such a proxy fails the test instead of hanging it).
		stream := func(contentType string) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				up.Record(r)
				w.Header().Set("Content-Type", contentType)
				io.WriteString(w, "data: first\n\n")
				http.NewResponseController(w).Flush()
				select {
				case <-release:
					io.WriteString(w, "data: second\n\n")
				case <-time.After(20 * time.Second):
					io.WriteString(w, "data: late\n\n")
				}
			}
		}
		mux.HandleFunc("/events", stream("text/event-stream"))
		mux.HandleFunc("/events/chunked", stream("text/plain; charset=utf-8"))
		mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
			up.Record(r)
			buf := make([]byte, 5)
			io.ReadFull(r.Body, buf)
			got <- string(buf) // the first chunk arrived before the body ended
			rest, _ := io.ReadAll(r.Body)
			io.WriteString(w, string(buf)+string(rest))
		})
	}
}

func TestWebSocketPassesWithTheAuthCheckAtUpgrade(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		s := start(t, st, routesYAML, mountStreams(nil, nil))
		ctx := context.Background()
		wsURL := "ws" + strings.TrimPrefix(s.in.URL, "http") + "/ws"
		_, res, err := websocket.Dial(ctx, wsURL, nil)
		if err == nil || res == nil || res.StatusCode != 401 {
			t.Fatalf("upgrade without a session: err %v, response %v", err, res)
		}
		if s.up.Count() != 0 {
			t.Fatal("the upstream saw an unauthenticated upgrade")
		}
		b := servertest.NewBrowser(t)
		b.Get(s.in.URL + "/app")
		c, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPClient: b.Client})
		if err != nil {
			t.Fatalf("upgrade with a session: %v", err)
		}
		defer c.CloseNow()
		c.Write(ctx, websocket.MessageText, []byte("hi"))
		_, msg, err := c.Read(ctx)
		if err != nil || string(msg) != "echo hi for u-alice" {
			t.Fatalf("echo = %q, %v", msg, err)
		}
	})
}

// TestResponsesStream: an event stream and a response of unknown length
// reach the client part by part, each part as the upstream flushes it,
// while the upstream is still writing; neither waits for the end of the
// response (the proxy sets no FlushInterval: ReverseProxy flushes these
// after every write on its own).
func TestResponsesStream(t *testing.T) {
	for _, path := range []string{"/events", "/events/chunked"} {
		t.Run(path, func(t *testing.T) {
			release := make(chan struct{})
			s := start(t, nil, routesYAML, mountStreams(release, nil))
			b := servertest.NewBrowser(t)
			b.Get(s.in.URL + "/app")
			res, err := b.Client.Get(s.in.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if path == "/events/chunked" && res.ContentLength != -1 {
				// A proxy that holds the body back until the upstream
				// gave up waiting knows its length by then.
				t.Fatalf("Content-Length %d: the response was held back until its end", res.ContentLength)
			}
			r := bufio.NewReader(res.Body)
			line, err := r.ReadString('\n')
			if err != nil || line != "data: first\n" {
				t.Fatalf("first part: %q %v", line, err)
			}
			close(release) // only now may the upstream finish: the first part was streamed
			rest, _ := io.ReadAll(r)
			if !strings.Contains(string(rest), "data: second") {
				t.Errorf("rest of the stream: %q (the first part came only once the upstream gave up waiting)", rest)
			}
		})
	}
}

func TestRequestBodiesAreStreamed(t *testing.T) {
	got := make(chan string, 1)
	s := start(t, nil, routesYAML, mountStreams(nil, got))
	b := servertest.NewBrowser(t)
	b.Get(s.in.URL + "/app")
	pr, pw := io.Pipe()
	done := make(chan string)
	go func() {
		res, err := b.Client.Post(s.in.URL+"/upload", "application/octet-stream", pr)
		if err != nil {
			done <- err.Error()
			return
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		done <- string(body)
	}()
	pw.Write([]byte("hello"))
	select {
	case first := <-got:
		if first != "hello" {
			t.Fatalf("first chunk %q", first)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the upstream did not get the first chunk while the body was still open: the proxy buffers")
	}
	pw.Write([]byte(" world"))
	pw.Close()
	if body := <-done; body != "hello world" {
		t.Errorf("echo = %q", body)
	}
}
