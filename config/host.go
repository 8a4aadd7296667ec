package config

import (
	"net"
	"strings"
)

// NormalizeHost lower-cases a host[:port] (a Host header, a route's host,
// an issuer's), drops a trailing dot and a default port, so
// "App.Example.com.:443" is "app.example.com". It returns "" for what is
// not a plain host[:port], so that no such Host matches anything.
// Every request pays for it: when h is already normal, it returns h
// without allocating.
func NormalizeHost(h string) string {
	if isNormalHost(h) {
		return h
	}
	return normalizeHostSlow(h)
}

func normalizeHostSlow(h string) string {
	h = strings.ToLower(h)
	host, port, err := net.SplitHostPort(h)
	if err != nil {
		host, port = h, ""
	}
	host = strings.TrimSuffix(host, ".")
	if host == "" || strings.ContainsAny(host, "/\\@?#%") {
		return ""
	}
	if port == "" || port == "80" || port == "443" {
		if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
			return "[" + host + "]"
		}
		return host
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), port)
}

// isNormalHost reports, conservatively, that normalizeHostSlow would
// return h unchanged: lower-case, no odd characters, no IPv6 brackets, no
// trailing dot, no empty or default port. Anything else takes the slow
// path.
func isNormalHost(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; 'A' <= c && c <= 'Z' || strings.IndexByte("/\\@?#%[] ", c) >= 0 {
			return false
		}
	}
	host, port, hasPort := h, "", false
	if i := strings.LastIndexByte(h, ':'); i >= 0 {
		host, port, hasPort = h[:i], h[i+1:], true
	}
	if host == "" || strings.Contains(host, ":") || strings.HasSuffix(host, ".") {
		return false
	}
	return !hasPort || port != "" && port != "80" && port != "443"
}
