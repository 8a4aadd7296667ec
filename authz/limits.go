package authz

import (
	"context"
	"net/http"
	"net/url"

	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/aero2/aero2/ratelimit"
)

// limitAuthorize spends one request of the authorization endpoint's
// limit per client address before it reads anything, and answers 429 with
// a page when the address is over it: the redirect URI is not verified
// yet, so nothing may redirect.
func (p *Provider) limitAuthorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d := p.opts.Limits.Allow(r.Context(), p.app, ratelimit.Authorize, ratelimit.Address(r)); !d.Allowed {
			ratelimit.WritePage(w, p.opts.DisplayName, d)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// limitClientAuth wraps an endpoint that authenticates clients (token,
// introspection, revocation; inside api, so the form is parsed): it
// spends one request of limit per address and, in the same round trip,
// looks at the client_auth_failures of the address and of the client ID
// the request claims. Failed client authentications are counted there,
// apart: once an address or a client has used them up, the endpoint
// refuses it before any secret is checked, which is what stops guessing a
// client's secret.
func (p *Provider) limitClientAuth(name ratelimit.Name, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		addr, claimed := ratelimit.Address(r), p.claimedClient(r)
		if d := p.opts.Limits.Check(ctx, p.app, ratelimit.Spend(name, addr), ratelimit.Peek(ratelimit.ClientAuthFailures, addr, claimed)); !d.Allowed {
			ratelimit.WriteJSON(w, d)
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		next(sw, r)
		// Every 401 these endpoints answer is invalid_client (RFC 6749
		// §5.2, RFC 7662 §2.3, RFC 7009 §2.2.1).
		if sw.status == http.StatusUnauthorized {
			p.opts.Limits.Allow(context.WithoutCancel(ctx), p.app, ratelimit.ClientAuthFailures, addr, claimed)
		}
	}
}

// limitClient spends one request of limit for an authenticated client and
// answers 429 when it is over. It has answered when it returns false.
func (p *Provider) limitClient(w http.ResponseWriter, r *http.Request, name ratelimit.Name, clientID string) bool {
	d := p.opts.Limits.Allow(r.Context(), p.app, name, ratelimit.Client(clientID))
	if !d.Allowed {
		ratelimit.WriteJSON(w, d)
	}
	return d.Allowed
}

// claimedClient is the key of the client a request says it is (HTTP
// Basic's user, form-encoded per RFC 6749 §2.3.1, client_id, or the sub
// of a client assertion, unverified), when that client exists: an unknown
// ID would only add a bucket to the store.
func (p *Provider) claimedClient(r *http.Request) ratelimit.Key {
	id := r.PostForm.Get("client_id")
	if user, _, ok := r.BasicAuth(); ok {
		if u, err := url.QueryUnescape(user); err == nil {
			id = u
		}
	}
	if a := r.PostForm.Get("client_assertion"); id == "" && a != "" && len(a) <= maxAssertionBytes {
		if tok, err := josejwt.ParseSigned(a, assertionAlgs); err == nil {
			var c josejwt.Claims
			if tok.UnsafeClaimsWithoutVerification(&c) == nil {
				id = c.Subject
			}
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
