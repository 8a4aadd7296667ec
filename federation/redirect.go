package federation

import (
	"net/url"
	"strings"

	"github.com/aero2/aero2/safeurl"
)

// Redirects decides where a browser may be sent after signing in: a
// same-origin relative path, or an absolute URL whose origin is the
// application's own or on the allow-list. Everything else is an open
// redirect waiting to be used for phishing.
type Redirects struct {
	origins map[string]bool
}

// NewRedirects allows issuer's origin and the given origins
// (scheme://host[:port]).
func NewRedirects(issuer string, allow []string) *Redirects {
	r := &Redirects{origins: map[string]bool{}}
	for _, o := range append([]string{issuer}, allow...) {
		if u, err := url.Parse(o); err == nil && u.Host != "" {
			r.origins[origin(u)] = true
		}
	}
	return r
}

func origin(u *url.URL) string {
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host)
}

// Allowed reports whether target is a safe post-login redirect.
func (rd *Redirects) Allowed(target string) bool {
	if strings.HasPrefix(target, "/") {
		return safeurl.LocalPath(target)
	}
	if !safeurl.Plain(target) {
		return false
	}
	u, err := url.Parse(target)
	if err != nil || u.User != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return false // javascript:, data:, relative "evil.example", …
	}
	return rd.origins[origin(u)]
}
