package server

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/aero2/aero2/logging"
	"github.com/aero2/aero2/proxy"
	"github.com/aero2/aero2/reqlog"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/tracing"
	"github.com/aero2/aero2/web"
)

// maxHostBytes bounds the Host header: a DNS name is at most 253 bytes
// (RFC 1035 §2.3.4), then a port.
const maxHostBytes = 253 + len(":65535")

// trustedProxies are the peers whose X-Forwarded-For is believed.
type trustedProxies struct{ prefixes []netip.Prefix }

func newTrustedProxies(list []string) (*trustedProxies, error) {
	t := &trustedProxies{}
	for _, s := range list {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("trusted proxy %q: %w", s, err)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		t.prefixes = append(t.prefixes, p.Masked())
	}
	return t, nil
}

func (t *trustedProxies) contains(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// peer parses a RemoteAddr ("ip:port").
func peer(remote string) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		host, _, err := net.SplitHostPort(remote)
		if err != nil {
			return netip.Addr{}, false
		}
		a, err := netip.ParseAddr(host)
		return a, err == nil
	}
	return ap.Addr(), true
}

// ClientIP is the request's client: the peer, or — when the peer is a
// trusted proxy — the right-most address in X-Forwarded-For that is not a
// trusted proxy. Addresses left of it were written by the client and prove
// nothing.
func (t *trustedProxies) ClientIP(r *http.Request) netip.Addr {
	a, ok := peer(r.RemoteAddr)
	if !ok || !t.contains(a) {
		return a
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		h, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return a // a malformed hop: trust nothing beyond the peer
		}
		if !t.contains(h) {
			return h.Unmap()
		}
		a = h
	}
	return a
}

// endSpan names a request's span by its endpoint kind and ends it.
func endSpan(span trace.Span, method, kind, detail string, status int) {
	if status == 0 {
		status = http.StatusOK
	}
	name := method + " " + kind
	if kind == "" {
		name = method
	} else if detail != "" {
		name += " " + detail
	}
	span.SetName(name)
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if status >= 500 {
		span.SetStatus(codes.Error, "")
	}
	span.End()
}

// addrString is a's text, or "" for no address.
func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	note   reqlog.Note // who the request was for, for the access log
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach Flush and Hijack beneath.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// middleware wraps every request: the client address behind trusted
// proxies, an access log line (the path only: queries carry codes and
// state), and a 500 instead of a dropped connection on panic.
//
// The access log line names who the request was for, as the parts that
// served it noted in its reqlog.Note: the signed-in user's ID, the OAuth
// client's, and for forward-auth the method, host and path that were
// checked (instead of /.aero2/forward-auth, which every such line would
// otherwise say).
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if len(r.Host) > maxHostBytes {
			// Anything derived from Host (the origin a sign-in state
			// keeps, redirects) stays small.
			web.Error(w, http.StatusBadRequest, "", "Bad request", web.ErrorData{Message: "The Host header is too long."})
			return
		}
		rec := &statusRecorder{ResponseWriter: w}
		ctx := reqlog.With(r.Context(), &rec.note)
		if s.proxy != nil {
			// Forward-auth trusts X-Forwarded-Method/Host/Uri from the
			// connection's peer, not from the client address resolved
			// below.
			if p, ok := peer(r.RemoteAddr); ok {
				ctx = proxy.WithPeer(ctx, p)
			}
		}
		// One outage latch per request: once a store call finds the store
		// unavailable, the request's later calls fail at once, and it
		// answers 503 after one store timeout, not one per call.
		ctx = store.FailFast(ctx)
		r = r.WithContext(ctx) // one copy of the request for all three
		ip := s.trusted.ClientIP(r)
		if ip.IsValid() {
			if p, ok := peer(r.RemoteAddr); !ok || p != ip {
				r.RemoteAddr = netip.AddrPortFrom(ip, 0).String()
			}
		}
		// The audit log names the request and its client by these.
		rec.note.Start(s.ids.next(), addrString(ip))
		var span trace.Span
		if s.tracer != nil {
			// A caller's traceparent (W3C Trace Context) makes this
			// request part of its trace; it decides nothing else.
			ctx = tracing.Propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
			ctx, span = s.tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer),
				trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("url.path", r.URL.Path)))
			r = r.WithContext(ctx)
		}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic serving request", "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				if rec.status == 0 {
					http.Error(rec, "internal error", http.StatusInternalServerError)
				}
			}
			if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
				return
			}
			d := time.Since(start)
			if span != nil {
				kind, detail := rec.note.Kind()
				endSpan(span, r.Method, kind, detail, rec.status)
			}
			if s.metrics != nil {
				kind, detail := rec.note.Kind()
				status := rec.status
				if status == 0 {
					status = http.StatusOK // nothing written: net/http sends 200
				}
				s.metrics.Request(kind, detail, status, d)
			}
			var attrs [11]slog.Attr // on the stack: every request logs
			// Through logging.LogAttrs: the production JSON log writes the
			// line straight to its encoder (logging's doc says what that
			// saves).
			logging.LogAttrs(r.Context(), s.log, slog.LevelInfo, "request", rec.accessAttrs(attrs[:0], r, d)...)
		}()
		next.ServeHTTP(rec, r)
	})
}

// accessAttrs appends the access log line's attributes to attrs.
// Durations are milliseconds (duration_ms), as every duration Aero2 logs.
func (rec *statusRecorder) accessAttrs(attrs []slog.Attr, r *http.Request, d time.Duration) []slog.Attr {
	note := &rec.note
	method, host, path := r.Method, r.Host, r.URL.Path
	checked := note.Checked()
	if checked != nil {
		method, host, path = checked.Method, checked.Host, checked.Path
	}
	attrs = append(attrs,
		slog.String("method", method), slog.String("host", host), slog.String("path", path),
		slog.Int("status", rec.status), slog.Int64("bytes", rec.bytes),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000), slog.String("client", r.RemoteAddr))
	if u := note.User(); u != "" {
		attrs = append(attrs, slog.String("user", u))
	}
	if c := note.Client(); c != "" {
		attrs = append(attrs, slog.String("client_id", c))
	}
	if checked != nil {
		attrs = append(attrs, slog.Bool("forward_auth", true))
	}
	if id, _ := reqlog.Request(r.Context()); id != "" {
		attrs = append(attrs, slog.String("request_id", id))
	}
	return attrs
}
