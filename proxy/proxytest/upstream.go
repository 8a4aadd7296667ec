package proxytest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// Seen is one request as the upstream received it.
type Seen struct {
	Method, Host, Path, RawPath, Query string
	Header                             http.Header
	Body                               string
}

// Upstream is an application behind the proxy that records every request
// and answers with what it saw, as JSON.
type Upstream struct {
	*httptest.Server
	mu   sync.Mutex
	seen []Seen
}

// StartUpstream runs a recording upstream on loopback. Extra handlers
// (websocket, SSE, …) can be mounted on the returned mux before use.
func StartUpstream(t testing.TB) (*Upstream, *http.ServeMux) {
	t.Helper()
	u := &Upstream{}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s := u.record(r, string(body))
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s)
	})
	u.Server = httptest.NewServer(mux)
	t.Cleanup(u.Close)
	return u, mux
}

func (u *Upstream) record(r *http.Request, body string) Seen {
	s := Seen{Method: r.Method, Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: body}
	u.mu.Lock()
	u.seen = append(u.seen, s)
	u.mu.Unlock()
	return s
}

// Record lets extra handlers record what they receive.
func (u *Upstream) Record(r *http.Request) { u.record(r, "") }

// Seen returns the requests received so far.
func (u *Upstream) Seen() []Seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]Seen(nil), u.seen...)
}

// Last is the last request received; the test fails if there is none.
func (u *Upstream) Last(t testing.TB) Seen {
	t.Helper()
	s := u.Seen()
	if len(s) == 0 {
		t.Fatal("the upstream received nothing")
	}
	return s[len(s)-1]
}

// Count is how many requests the upstream received.
func (u *Upstream) Count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.seen)
}
