package server

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

type recordingTransport struct{ urls []string }

func (r *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r.urls = append(r.urls, req.URL.String())
	return &http.Response{StatusCode: 204, Body: http.NoBody, Request: req}, nil
}

func TestLocalTransportServesOwnOriginsInProcess(t *testing.T) {
	var seen *http.Request
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(201)
		io.WriteString(w, `{"got":"`+string(body)+`"}`)
	})
	next := &recordingTransport{}
	lt := newLocalTransport([]string{"https://Auth.Example.com/blog", "http://127.0.0.1:8080"}, func() http.Handler { return h }, next)
	c := &http.Client{Transport: lt}

	res, err := c.Post("https://auth.example.com:443/oauth2/token?x=1", "text/plain", strings.NewReader("grant"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 201 || string(body) != `{"got":"grant"}` || res.Header.Get("Content-Type") != "application/json" {
		t.Errorf("in-process answer: %d %q %v", res.StatusCode, body, res.Header)
	}
	if seen == nil || seen.Host != "auth.example.com:443" || seen.RequestURI != "/oauth2/token?x=1" || seen.TLS == nil || seen.URL.Query().Get("x") != "1" {
		t.Errorf("the handler saw %+v", seen)
	}
	if len(next.urls) != 0 {
		t.Errorf("own origin went to the network: %v", next.urls)
	}

	// Another origin, another scheme or port of ours: the network.
	for _, u := range []string{"https://idp.example.net/token", "http://auth.example.com/x", "http://127.0.0.1:9999/x"} {
		res, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	if len(next.urls) != 3 {
		t.Errorf("foreign origins not sent to the network: %v", next.urls)
	}
	res, _ = c.Get("http://127.0.0.1:8080/.well-known/openid-configuration")
	res.Body.Close()
	if len(next.urls) != 3 || seen.TLS != nil {
		t.Errorf("plain-http own origin: network %v, TLS %v", next.urls, seen.TLS)
	}
}
