package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/dpop"
)

// maxIdlePerHost sizes the idle pool to an upstream. Go's default of 2
// idle connections per host makes every burst past 2 concurrent requests
// open (and then close) new connections, which halves throughput under
// load (bench/proxy measures it).
const maxIdlePerHost = 512

// newTransport builds the route's connection pool.
func newTransport(rc config.Route) (*http.Transport, error) {
	dial := or(rc.Timeouts.Dial, config.DefaultUpstreamDial)
	t := &http.Transport{
		// Upstreams are reached directly: an HTTP_PROXY in Aero2's
		// environment must not see every user's identity headers.
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: dial, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          0, // no global limit; per host below
		MaxIdleConnsPerHost:   maxIdlePerHost,
		IdleConnTimeout:       or(rc.Timeouts.Idle, config.DefaultUpstreamIdle),
		ResponseHeaderTimeout: or(rc.Timeouts.ResponseHeader, config.DefaultUpstreamHeader),
		TLSHandshakeTimeout:   dial,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     true,
	}
	if rc.TLS.CAFile != "" || rc.TLS.ServerName != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: rc.TLS.ServerName}
		if rc.TLS.CAFile != "" {
			pem, err := os.ReadFile(rc.TLS.CAFile)
			if err != nil {
				return nil, fmt.Errorf("reading the CA file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("no PEM certificate in %s", rc.TLS.CAFile)
			}
			tc.RootCAs = pool
		}
		t.TLSClientConfig = tc
	}
	return t, nil
}

func or(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// forwarding is what Rewrite needs to know about one request. It is
// also the context the request is forwarded with: the request's own,
// answering Value(forwardingKey{}) with itself, so that one allocation
// carries it where context.WithValue beside it took two. Everything
// else (Done, Err, Deadline, other keys) is the embedded context's, so
// contexts derived from it (ReverseProxy's WithCancel) still find the
// server's cancelCtx and need no goroutine of their own.
type forwarding struct {
	context.Context
	route  *Route
	d      decision
	scheme string
}

type forwardingKey struct{}

func (f *forwarding) Value(key any) any {
	if key == (forwardingKey{}) {
		return f
	}
	return f.Context.Value(key)
}

func (h *Handler) reverseProxy(t http.RoundTripper) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		// Rewrite, not Director: the outbound request starts with the
		// hop-by-hop headers and X-Forwarded-* already removed.
		Rewrite:        h.rewrite,
		Transport:      t,
		ModifyResponse: h.modifyResponse,
		ErrorHandler:   h.upstreamError,
		// No periodic flush: ReverseProxy flushes after every write, on
		// its own, the responses that stream (text/event-stream, and any
		// of unknown length: chunked, close-delimited, long polls that
		// trickle); a response of known length goes out as the server's
		// write buffers (a few KiB) fill and when it ends. A FlushInterval
		// would only send such a body that arrives slowly sooner, for a
		// timer and a writer (six allocations) on every proxied response
		// (TestResponsesStream, e2e/proxy).
		FlushInterval: 0,
		BufferPool:    proxyBuffers,
	}
}

// forward sends an admitted request upstream.
func (h *Handler) forward(w http.ResponseWriter, r *http.Request, rt *Route, d decision) {
	f := &forwarding{Context: r.Context(), route: rt, d: d, scheme: h.scheme(r)}
	rt.rp.ServeHTTP(w, r.WithContext(f))
}

// credentials returns the access token and assertion the route sends for
// an admitted identity. errNoSession means the session's tokens could not
// be refreshed.
func (h *Handler) credentials(r *http.Request, rt *Route, d *decision) (string, string, error) {
	var at, as string
	if len(rt.headers.accessToken) > 0 {
		if d.bearer {
			_, at = dpop.ParseAuthorization(r.Header.Get("Authorization"))
		} else {
			var err error
			if at, err = rt.app.sessions.accessToken(r.Context(), d.token, d.live); err != nil {
				return "", "", err
			}
		}
	}
	if rt.headers.assertion != "" {
		var err error
		if as, err = h.assertion(r, rt, d); err != nil {
			return "", "", err
		}
	}
	return at, as, nil
}

// assertion signs (or reuses, for half its life) the route's assertion.
// Its audience is the route: the origin the client used and the route's
// path prefix, in the assertions' own namespace, e.g.
// "urn:aero2:assertion:https://app.example.com/admin".
func (h *Handler) assertion(r *http.Request, rt *Route, res *decision) (string, error) {
	aud := assertionAudience(h.scheme(r)+"://"+config.NormalizeHost(r.Host), rt.prefix)
	now := h.now()
	if res.live != nil {
		res.live.mu.Lock()
		c, ok := res.live.assertions[aud]
		res.live.mu.Unlock()
		if ok && now.Before(c.fresh) {
			return c.jwt, nil
		}
	}
	jwt, err := rt.app.signer.SignAssertion(r.Context(), assertionClaims(res.id, aud, now))
	if err != nil {
		return "", fmt.Errorf("signing the assertion: %w", err)
	}
	if typ := jwtType(jwt); typ != AssertionType {
		// Fail closed: an assertion typed like an access or ID token could
		// be replayed as one.
		return "", fmt.Errorf("signing the assertion: the signer set typ %q, not %q", typ, AssertionType)
	}
	if res.live != nil {
		res.live.mu.Lock()
		if res.live.assertions == nil {
			res.live.assertions = map[string]cachedAssertion{}
		}
		res.live.assertions[aud] = cachedAssertion{jwt: jwt, fresh: now.Add(AssertionLifetime / 2)}
		res.live.mu.Unlock()
	}
	return jwt, nil
}

// rewrite prepares the outbound request.
func (h *Handler) rewrite(pr *httputil.ProxyRequest) {
	f := pr.In.Context().Value(forwardingKey{}).(*forwarding)
	rt, out := f.route, pr.Out
	if rt.stripPrefix && rt.prefix != "" {
		// The path was read and matched on its escaped form; cut the
		// route's segments off that same form, whatever their escaping.
		rest := afterSegments(out.URL.EscapedPath(), len(rt.segments))
		if rest == "" {
			rest = "/"
		}
		out.URL.RawPath = rest
		out.URL.Path, _ = url.PathUnescape(rest)
	}
	pr.SetURL(rt.upstream)
	if !rt.rewriteHost {
		out.Host = pr.In.Host
	}
	h.strip.strip(out.Header, h.trusted(h.peer(pr.In)))
	// X-Forwarded-For, -Host, -Proto: ReverseProxy has removed what the
	// client sent. The client address is the one the server resolved
	// (behind trusted proxies only); nothing the client wrote survives.
	// One backing array for the three values, as headerPlan.set: each
	// header a slice of capacity 1, so that appending to one never
	// writes into the next (two allocations fewer per request).
	xf := make([]string, 3)
	if ap, err := netip.ParseAddrPort(pr.In.RemoteAddr); err == nil {
		xf[0] = addrText(pr.In.RemoteAddr, ap)
		out.Header["X-Forwarded-For"] = xf[0:1:1]
	}
	xf[1], xf[2] = pr.In.Host, f.scheme
	out.Header["X-Forwarded-Host"] = xf[1:2:2]
	out.Header["X-Forwarded-Proto"] = xf[2:3:3]
	h.cookies.stripRequest(out.Header)
	if f.d.bearer {
		delete(out.Header, "Authorization") // Aero2's token, not the upstream's
		delete(out.Header, "Dpop")          // and its proof, spent here
	}
	rt.headers.write(out.Header, &f.d)
}

// addrText is ap's address as text, unmapped (what
// ap.Addr().Unmap().String() is), for remote, the "host:port" ap was
// parsed from: its host part itself when that already is the text (an
// IPv4 address or a canonical IPv6 one, what the server writes), so that
// no string is made for it on every proxied request.
func addrText(remote string, ap netip.AddrPort) string {
	var buf [64]byte
	text := ap.Addr().Unmap().AppendTo(buf[:0])
	host := remote
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	if len(host) >= 2 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	if host == string(text) { // compared without a conversion
		return host
	}
	return string(text)
}

// modifyResponse removes what an upstream must not send the browser:
// Set-Cookie for Aero2's own cookies (see ownCookies.stripResponse).
func (h *Handler) modifyResponse(res *http.Response) error {
	if !h.cookies.stripResponse(res.Header) {
		return nil
	}
	if f, ok := res.Request.Context().Value(forwardingKey{}).(*forwarding); ok && f.route.cookieWarned.CompareAndSwap(false, true) {
		h.log.Warn("upstream tried to set one of Aero2's cookies; removed (logged once per route)", "route", f.route.name)
	}
	return nil
}

// upstreamError answers when the upstream cannot be reached. The page
// names neither the upstream nor the error.
func (h *Handler) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) || r.Context().Err() != nil {
		// The client went away, or its connection failed (a request body
		// past its deadline): the transport may report that as its own
		// read error rather than as the cancellation, and the server
		// answers it (408), not a 504 from here.
		return
	}
	f, _ := r.Context().Value(forwardingKey{}).(*forwarding)
	name := ""
	if f != nil {
		name = f.route.name
	}
	h.log.Warn("upstream failed", "route", name, "err", err)
	status := http.StatusBadGateway
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		status = http.StatusGatewayTimeout
	}
	h.problem(w, r, withStatus(errUpstreamDown, status))
}
