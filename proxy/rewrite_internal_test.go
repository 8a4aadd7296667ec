package proxy

import (
	"context"
	"errors"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"slices"
	"testing"

	"github.com/aero2/aero2/config"
)

// TestRewriteSetsForwardedHeadersApart: the outbound request's
// X-Forwarded-For, -Host and -Proto are what the server resolved, never
// what the client sent, and share one backing array without sharing a
// slice: appending to one (a RoundTripper may) leaves the others as
// they were.
func TestRewriteSetsForwardedHeadersApart(t *testing.T) {
	up, _ := url.Parse("http://upstream.internal:8080")
	h := &Handler{strip: newStripSet(nil), cookies: ownCookies{}, trusted: func(netip.Addr) bool { return false }}
	rt := &Route{upstream: up, headers: newHeaderPlan(config.IdentityHeaders{})}
	in := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/x"}, Host: "app.example.com", RemoteAddr: "[::ffff:192.0.2.7]:4000",
		Header: http.Header{"X-Forwarded-For": {"6.6.6.6"}, "X-Forwarded-Host": {"evil.example"}, "X-Forwarded-Proto": {"https"}}}
	f := &forwarding{Context: context.Background(), route: rt, d: decision{id: &Identity{Subject: "u1", Email: "a@example.com"}}, scheme: "http"}
	in = in.WithContext(f)
	out := in.Clone(in.Context())
	// ReverseProxy removes the client's X-Forwarded-* before Rewrite.
	for _, n := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
		delete(out.Header, n)
	}
	h.rewrite(&httputil.ProxyRequest{In: in, Out: out})
	want := http.Header{"X-Forwarded-For": {"192.0.2.7"}, "X-Forwarded-Host": {"app.example.com"}, "X-Forwarded-Proto": {"http"}}
	for n, v := range want {
		if !slices.Equal(out.Header[n], v) {
			t.Errorf("%s: %q, want %q", n, out.Header[n], v)
		}
	}
	before := out.Header.Clone()
	for n := range want {
		out.Header.Add(n, "added")
		for k, v := range before {
			if k != n && !slices.Equal(out.Header[k], v) {
				t.Fatalf("adding to %s changed %s: %q", n, k, out.Header[k])
			}
		}
		out.Header[n] = before[n]
	}
}

// TestForwardingIsTheRequestsContext: the forwarding a request is sent
// upstream with answers for itself and, for everything else, as the
// request's own context: its values, its cancellation, and that of
// contexts derived from it (ReverseProxy derives one for the outbound
// request).
func TestForwardingIsTheRequestsContext(t *testing.T) {
	type key struct{}
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	f := &forwarding{Context: parent, scheme: "https"}
	derived, stop := context.WithCancel(f)
	defer stop()
	if got, _ := derived.Value(forwardingKey{}).(*forwarding); got != f {
		t.Fatalf("Value(forwardingKey{}) = %v, want the forwarding", got)
	}
	if got := derived.Value(key{}); got != "v" {
		t.Fatalf("Value(key{}) = %v: the request's own values are lost", got)
	}
	cancel()
	select {
	case <-derived.Done():
	default:
		t.Fatal("cancelling the request's context did not end the outbound request's")
	}
	if !errors.Is(f.Err(), context.Canceled) {
		t.Fatalf("Err() = %v", f.Err())
	}
}

// TestAddrTextIsTheUnmappedAddress: X-Forwarded-For's text is the
// client address unmapped, as netip writes it, whatever form RemoteAddr
// had; and no string is made for it when RemoteAddr already holds it.
func TestAddrTextIsTheUnmappedAddress(t *testing.T) {
	for _, remote := range []string{
		"192.0.2.7:4000", "[::ffff:192.0.2.7]:4000", "[2001:db8::1]:443", "[2001:DB8:0:0::1]:443",
		"[fe80::1%eth0]:80", "[::1]:0", "[::]:1", "0.0.0.0:1",
	} {
		ap, err := netip.ParseAddrPort(remote)
		if err != nil {
			t.Fatalf("%s: %v", remote, err)
		}
		if got, want := addrText(remote, ap), ap.Addr().Unmap().String(); got != want {
			t.Errorf("%s: %q, want %q", remote, got, want)
		}
	}
	for _, remote := range []string{"192.0.2.7:4000", "[2001:db8::1]:443"} {
		ap := netip.MustParseAddrPort(remote)
		if n := testing.AllocsPerRun(100, func() { addrText(remote, ap) }); n != 0 {
			t.Errorf("%s: %v allocations", remote, n)
		}
	}
}
