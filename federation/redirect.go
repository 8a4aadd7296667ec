package federation

import (
	"net/url"
	"strings"
)

// maxReturnTo bounds a post-login target; an authorize request with all its
// parameters fits easily.
const maxReturnTo = 4096

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
	if target == "" || len(target) > maxReturnTo {
		return false
	}
	// Browsers treat '\' as '/' and drop tabs and newlines inside URLs, so
	// "/\evil.example" and "/\t/evil.example" mean "//evil.example".
	for _, c := range target {
		if c < 0x20 || c == 0x7f || c == '\\' {
			return false
		}
	}
	if strings.HasPrefix(target, "/") {
		if strings.HasPrefix(target, "//") {
			return false // scheme-relative: another host
		}
		u, err := url.Parse(target)
		return err == nil && u.Scheme == "" && u.Host == "" && u.User == nil
	}
	u, err := url.Parse(target)
	if err != nil || u.User != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return false // javascript:, data:, relative "evil.example", …
	}
	return rd.origins[origin(u)]
}
