package server_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aero2/aero2/server/servertest"
)

// slowConfig: bodies of Aero2's own endpoints must arrive within 1s, and
// proxied bodies may pause 1s at most.
func slowConfig(upstream string) string {
	return withServer("  read_body_timeout: 1s\n  proxy_body_idle_timeout: 1s\n") + `
routes:
  - path: /upload
    upstream: "` + upstream + `"
    policy: {public: true}
`
}

// trickle opens a connection to addr, sends head, then one body byte every
// gap until it has sent n or the server has closed the connection. It
// returns the status line the server answered (if any), whether the server
// closed the connection before all n bytes were sent, and how long it took.
func trickle(t *testing.T, addr, head string, n int, gap time.Duration) (status string, cut bool, took time.Duration) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	closed := make(chan string, 1)
	go func() {
		br := bufio.NewReader(c)
		line, _ := br.ReadString('\n')
		io.Copy(io.Discard, br) // until the server closes
		closed <- strings.TrimSpace(line)
	}()
	for i := 0; i < n; i++ {
		select {
		case status = <-closed:
			return status, true, time.Since(start)
		case <-time.After(gap):
		}
		if _, err := c.Write([]byte("a")); err != nil {
			return <-closed, true, time.Since(start)
		}
	}
	c.(*net.TCPConn).CloseWrite()
	return <-closed, false, time.Since(start)
}

// TestSlowBodiesToOwnEndpointsAreCut: ten clients send a token request's
// body one byte every 300ms (it would take 30s). Each is answered 408 and
// its connection closed once read_body_timeout (1s) has passed, not
// before, and long before the body could have arrived.
func TestSlowBodiesToOwnEndpointsAreCut(t *testing.T) {
	in := servertest.Start(t, slowConfig("http://127.0.0.1:9"), nil)
	addr := strings.TrimPrefix(in.URL, "http://")
	head := "POST /oauth2/token HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n"
	var wg sync.WaitGroup
	results := make(chan string, 10)
	for range 10 {
		wg.Go(func() {
			status, cut, took := trickle(t, addr, head, 100, 300*time.Millisecond)
			switch {
			case !cut:
				results <- "connection kept until the whole body was sent"
			case took < time.Second:
				results <- fmt.Sprintf("cut after %s, before the deadline", took)
			case !strings.Contains(status, " 408 "):
				results <- fmt.Sprintf("answered %q, want 408", status)
			default:
				results <- ""
			}
		})
	}
	wg.Wait()
	close(results)
	for r := range results {
		if r != "" {
			t.Error(r)
		}
	}
}

// TestSlowBodyToAFormIsCut: the sign-in pages' forms (here the dev
// provider's) are Aero2's own endpoints too.
func TestSlowBodyToAFormIsCut(t *testing.T) {
	in := servertest.Start(t, slowConfig("http://127.0.0.1:9"), nil)
	addr := strings.TrimPrefix(in.URL, "http://")
	head := "POST /rp/idp/dev/login HTTP/1.1\r\nHost: " + addr + "\r\nOrigin: " + in.URL + "\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n"
	if _, cut, took := trickle(t, addr, head, 100, 300*time.Millisecond); !cut || took < time.Second {
		t.Fatalf("cut %v after %s: want the connection closed after read_body_timeout", cut, took)
	}
}

// TestProxiedBodiesStreamUntilIdle: a proxied upload that keeps sending
// (one byte every 300ms for 3s, three times the idle limit) reaches the
// upstream whole; one that stops sending for longer than
// proxy_body_idle_timeout is cut.
func TestProxiedBodiesStreamUntilIdle(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if d, err := time.ParseDuration(r.Header.Get("X-Think")); err == nil {
			time.Sleep(d) // answer long after the body has arrived
		}
		fmt.Fprintf(w, "got %d", n)
	}))
	defer up.Close()
	in := servertest.Start(t, slowConfig(up.URL), nil)
	addr := strings.TrimPrefix(in.URL, "http://")
	head := "POST /upload HTTP/1.1\r\nHost: " + addr + "\r\nConnection: close\r\nContent-Length: 10\r\n\r\n"
	status, cut, took := trickle(t, addr, head, 10, 300*time.Millisecond)
	if cut || !strings.Contains(status, " 200 ") || took < 3*time.Second {
		t.Fatalf("streaming upload: %q, cut %v after %s: want it whole, 200", status, cut, took)
	}
	// A whole body, then an upstream that takes twice the idle limit to
	// answer: the limit is on the client's body, not on the answer.
	thinking := strings.Replace(head, "\r\n\r\n", "\r\nX-Think: 2s\r\n\r\n", 1)
	if status, cut, _ := trickle(t, addr, thinking, 10, 10*time.Millisecond); cut || !strings.Contains(status, " 200 ") {
		t.Fatalf("slow upstream answer after a whole body: %q, cut %v: want 200", status, cut)
	}
	// Stalled: 3 bytes, then nothing for 3s.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	io.WriteString(c, head+"abc")
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	br := bufio.NewReader(c)
	line, _ := br.ReadString('\n')
	_, err = io.Copy(io.Discard, br)
	if took := time.Since(start); err != nil || took < time.Second || !strings.Contains(line, " 408 ") {
		t.Fatalf("stalled upload: %q, then %v after %s: want 408 and the connection closed after the idle limit", line, err, took)
	}
}
