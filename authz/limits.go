package authz

import (
	"context"
	"net/http"
	"net/url"

	"github.com/aero2/aero2/ratelimit"
)

// limitAddress spends one request of limit per client address before the
// endpoint reads anything, and answers 429 when the address is over it:
// with a page on the authorization endpoint (its redirect URI is not
// verified yet, so nothing may redirect), with JSON elsewhere.
func (p *Provider) limitAddress(name ratelimit.Name, page bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d := p.opts.Limits.Allow(r.Context(), p.opts.App, name, ratelimit.Address(r)); !d.Allowed {
			if page {
				ratelimit.WritePage(w, p.opts.App, d)
			} else {
				ratelimit.WriteJSON(w, d)
			}
			return
		}
		next.ServeHTTP(w, r)
	})
}

// limitClientAuth wraps an endpoint that authenticates clients (token,
// introspection, revocation; inside api, so the form is parsed). Failed
// client authentications are counted apart, per address and per client
// ID: once an address or a client has used up client_auth_failures, the
// endpoint refuses it before any secret is checked, which is what stops
// guessing a client's secret.
func (p *Provider) limitClientAuth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		keys := []ratelimit.Key{ratelimit.Address(r), p.claimedClient(r)}
		if d := p.opts.Limits.Look(ctx, p.opts.App, ratelimit.ClientAuthFailures, keys...); !d.Allowed {
			ratelimit.WriteJSON(w, d)
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		next(sw, r)
		// Every 401 these endpoints answer is invalid_client (RFC 6749
		// §5.2, RFC 7662 §2.3, RFC 7009 §2.2.1).
		if sw.status == http.StatusUnauthorized {
			p.opts.Limits.Allow(context.WithoutCancel(ctx), p.opts.App, ratelimit.ClientAuthFailures, keys...)
		}
	}
}

// limitClient spends one request of limit for an authenticated client and
// answers 429 when it is over. It has answered when it returns false.
func (p *Provider) limitClient(w http.ResponseWriter, r *http.Request, name ratelimit.Name, clientID string) bool {
	d := p.opts.Limits.Allow(r.Context(), p.opts.App, name, ratelimit.Client(clientID))
	if !d.Allowed {
		ratelimit.WriteJSON(w, d)
	}
	return d.Allowed
}

// claimedClient is the key of the client a request says it is (HTTP
// Basic's user, form-encoded per RFC 6749 §2.3.1, or client_id), when that
// client exists: an unknown ID would only add a bucket to the store.
func (p *Provider) claimedClient(r *http.Request) ratelimit.Key {
	id := r.PostForm.Get("client_id")
	if user, _, ok := r.BasicAuth(); ok {
		if u, err := url.QueryUnescape(user); err == nil {
			id = u
		}
	}
	if p.clients.get(id) == nil {
		return ratelimit.Client("")
	}
	return ratelimit.Client(id)
}

// statusWriter records the status a handler answers.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
