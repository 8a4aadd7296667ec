package config

import "testing"

func TestNormalizeHost(t *testing.T) {
	for in, want := range map[string]string{
		"Auth.Example.COM":       "auth.example.com",
		"auth.example.com.":      "auth.example.com",
		"auth.example.com:443":   "auth.example.com",
		"auth.example.com.:8443": "auth.example.com:8443",
		"[::1]:80":               "[::1]",
		"[::1]:8080":             "[::1]:8080",
		"::1":                    "[::1]",
		"127.0.0.1:8080":         "127.0.0.1:8080",
		"evil.com/x":             "",
		"a@b.com":                "",
		"":                       "",
	} {
		if got := NormalizeHost(in); got != want {
			t.Errorf("NormalizeHost(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestNormalHostFastPath: whenever the fast path keeps a host as it is,
// the full normalisation agrees.
func TestNormalHostFastPath(t *testing.T) {
	for _, h := range []string{
		"auth.example.com", "auth.example.com:8443", "127.0.0.1:8080", "localhost", "app.localhost:3000",
		"Auth.example.com", "auth.example.com.", "auth.example.com.:8443", "auth.example.com:443", "x:80",
		"[::1]", "[::1]:8080", "::1", "[2001:db8::1]:443", "", ":", "a:", "a.:1", "A", "[::1]:80",
		"a:xyz", "a b", "a/b:1", "%41.com", ".", ":8080", "a..b:9",
	} {
		if isNormalHost(h) && normalizeHostSlow(h) != h {
			t.Errorf("fast path keeps %q, full normalisation gives %q", h, normalizeHostSlow(h))
		}
		if got, want := NormalizeHost(h), normalizeHostSlow(h); got != want {
			t.Errorf("NormalizeHost(%q) = %q, want %q", h, got, want)
		}
	}
}
