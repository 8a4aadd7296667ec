package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

// TestWireClientReadsWhatServersSend drives the load generator's client
// against net/http servers answering each way a server may: with a
// length, chunked, closing after the answer, and closing a kept-alive
// connection while idle. It must get every body whole, keep one
// connection while the server allows it, and fail loudly on a broken
// answer rather than count it.
func TestWireClientReadsWhatServersSend(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		// RFC 6749 §2.3.1: the ID and secret are form-encoded inside
		// basic authentication.
		user, pass, _ := r.BasicAuth()
		user, _ = url.QueryUnescape(user)
		pass, _ = url.QueryUnescape(pass)
		answer := fmt.Sprintf(`{"access_token":"a.b.c","form":%q,"auth":%q}`, body, user+":"+pass)
		switch r.URL.Query().Get("mode") {
		case "chunked":
			w.(http.Flusher).Flush() // headers out first: no length is known
			io.WriteString(w, answer[:10])
			w.(http.Flusher).Flush()
			io.WriteString(w, answer[10:])
		case "close":
			w.Header().Set("Connection", "close")
			io.WriteString(w, answer)
		case "big":
			io.WriteString(w, strings.Repeat("x", 100<<10))
		default:
			io.WriteString(w, answer)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	for _, mode := range []string{"length", "chunked", "close", "big"} {
		t.Run(mode, func(t *testing.T) {
			conns.Store(0)
			w, err := newWireClient(srv.URL+"/token?mode="+mode, "service", "s3cret:x")
			if err != nil {
				t.Fatal(err)
			}
			defer w.close()
			for i := range 3 {
				form := fmt.Sprintf("grant_type=client_credentials&n=%d", i)
				status, body, err := w.post(form)
				if err != nil || status != http.StatusOK {
					t.Fatalf("post %d: %d %v", i, status, err)
				}
				if mode == "big" {
					if len(body) != 100<<10 {
						t.Fatalf("body of %d bytes, want %d", len(body), 100<<10)
					}
					continue
				}
				if got := jsonField(body, "access_token"); got != "a.b.c" {
					t.Fatalf("access_token %q in %s", got, body)
				}
				if got := jsonField(body, "form"); got != form {
					t.Fatalf("server read form %q, want %q", got, form)
				}
				if got := jsonField(body, "auth"); got != "service:s3cret:x" {
					t.Fatalf("server read basic auth %q", got)
				}
			}
			want := int32(1)
			if mode == "close" {
				want = 3
			}
			if n := conns.Load(); n != want {
				t.Fatalf("%d connections for 3 requests, want %d", n, want)
			}
		})
	}

	t.Run("idle connection closed by the server", func(t *testing.T) {
		w, err := newWireClient(srv.URL+"/token", "", "")
		if err != nil {
			t.Fatal(err)
		}
		defer w.close()
		if _, _, err := w.post("a=1"); err != nil {
			t.Fatal(err)
		}
		srv.CloseClientConnections()
		if status, _, err := w.post("a=2"); err != nil || status != http.StatusOK {
			t.Fatalf("after the server closed the idle connection: %d %v", status, err)
		}
	})
}

// TestWireClientRefusesBrokenAnswers: an answer the client cannot read is
// an error, never a counted request.
func TestWireClientRefusesBrokenAnswers(t *testing.T) {
	for name, answer := range map[string]string{
		"not HTTP":        "SSH-2.0-OpenSSH\r\n",
		"bad status":      "HTTP/1.1 2x0 OK\r\n\r\n",
		"bad length":      "HTTP/1.1 200 OK\r\nContent-Length: -4\r\n\r\n",
		"no length":       "HTTP/1.1 200 OK\r\n\r\n{}",
		"short body":      "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}",
		"header no colon": "HTTP/1.1 200 OK\r\nbroken\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				io.WriteString(c, answer)
			}()
			w, err := newWireClient("http://"+ln.Addr().String()+"/token", "", "")
			if err != nil {
				t.Fatal(err)
			}
			defer w.close()
			if status, body, err := w.post("a=1"); err == nil {
				t.Fatalf("read %d %q from a broken answer, without an error", status, body)
			}
		})
	}
}

func TestJSONField(t *testing.T) {
	body := []byte(`{"access_token":"h.c.s","expires_in":3599,"token_type":"Bearer", "scope": "api","esc":"a\"b"}`)
	for name, want := range map[string]string{
		"access_token": "h.c.s",
		"scope":        "api",
		"expires_in":   "", // not a string
		"esc":          "", // escapes are not read
		"missing":      "",
	} {
		if got := jsonField(body, name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
}
