package server

import (
	"net/http/httptest"
	"testing"
)

func TestClientIPTrustsOnlyConfiguredProxies(t *testing.T) {
	tp, err := newTrustedProxies([]string{"127.0.0.0/8", "10.0.0.0/8", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		peer, xff, want string
	}{
		{"192.0.2.7:5555", "", "192.0.2.7"},
		// An untrusted peer cannot claim another address.
		{"192.0.2.7:5555", "198.51.100.1", "192.0.2.7"},
		// A trusted proxy: the right-most hop that is not a proxy.
		{"127.0.0.1:5555", "198.51.100.1", "198.51.100.1"},
		{"127.0.0.1:5555", "203.0.113.9, 198.51.100.1, 10.1.2.3", "198.51.100.1"},
		// What the client wrote left of the real hop proves nothing.
		{"10.0.0.1:1", "1.2.3.4, 198.51.100.1", "198.51.100.1"},
		// A malformed hop: trust nothing beyond the last proxy.
		{"127.0.0.1:5555", "198.51.100.1, garbage", "127.0.0.1"},
		// Only proxies: the left-most one.
		{"127.0.0.1:5555", "10.9.9.9", "10.9.9.9"},
		{"[::1]:443", "2001:db8::1", "2001:db8::1"},
		{"[::ffff:127.0.0.1]:80", "198.51.100.2", "198.51.100.2"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.peer
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		if got := tp.ClientIP(r).String(); got != tc.want {
			t.Errorf("peer %s, XFF %q: client %s, want %s", tc.peer, tc.xff, got, tc.want)
		}
	}
}
