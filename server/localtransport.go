package server

import (
	"bytes"
	"crypto/tls"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/ratelimit"
)

// localTransport lets Aero2's parts call Aero2's own HTTP endpoints (the
// proxy signing in at its application's provider: discovery, token, JWKS,
// introspection) without a trip through the network. It serves requests for
// this server's own application origins with the server's handler, in
// process, and sends everything else to next. Besides saving a round trip
// through the load balancer on every sign-in and introspection, it works
// where a pod cannot reach its own public URL (hairpin NAT, split DNS).
type localTransport struct {
	origins map[string]bool
	handler func() http.Handler // the server's root handler, once built
	next    http.RoundTripper
}

func newLocalTransport(issuers []string, handler func() http.Handler, next http.RoundTripper) *localTransport {
	t := &localTransport{origins: map[string]bool{}, handler: handler, next: next}
	for _, iss := range issuers {
		if u, err := url.Parse(iss); err == nil && u.Host != "" {
			t.origins[u.Scheme+"://"+config.NormalizeHost(u.Host)] = true
		}
	}
	return t
}

func (t *localTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	h := t.handler()
	if h == nil || !t.origins[req.URL.Scheme+"://"+config.NormalizeHost(req.URL.Host)] {
		return t.next.RoundTrip(req)
	}
	// Build the request a server would see.
	// Limited where the request that caused it came in: its address is
	// ours, and its client the proxy's, which every user shares.
	sr := req.Clone(ratelimit.Exempt(req.Context()))
	sr.RequestURI = req.URL.RequestURI()
	sr.Host = req.URL.Host
	sr.RemoteAddr = "127.0.0.1:0"
	sr.Proto, sr.ProtoMajor, sr.ProtoMinor = "HTTP/1.1", 1, 1
	if sr.Body == nil {
		sr.Body = http.NoBody
	}
	if req.URL.Scheme == "https" {
		sr.TLS = &tls.ConnectionState{HandshakeComplete: true, ServerName: req.URL.Hostname()}
	}
	w := &bufferedResponse{header: http.Header{}}
	h.ServeHTTP(w, sr)
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return &http.Response{
		Status:        strconv.Itoa(w.status) + " " + http.StatusText(w.status),
		StatusCode:    w.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        w.header,
		Body:          io.NopCloser(bytes.NewReader(w.body.Bytes())),
		ContentLength: int64(w.body.Len()),
		Request:       req,
	}, nil
}

// bufferedResponse is the ResponseWriter of an in-process call. The
// endpoints it serves answer small JSON documents.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	b.WriteHeader(http.StatusOK)
	return b.body.Write(p)
}
