package authz

import (
	"context"
	"net/http"
	"net/url"

	"github.com/ory/fosite"
)

// clientAuthMemo holds a request's client authentication once it has run.
// The endpoints authenticate the client before anything else (so that the
// client's rate limit is checked before fosite consumes any state), and
// fosite authenticates it again inside NewAccessRequest, NewRevocationRequest
// and the rest: the second time must give the same answer without checking
// again — a client assertion's jti may be used only once.
type clientAuthMemo struct {
	done   bool
	client fosite.Client
	err    error
}

type clientAuthKey struct{}

// withClientAuth returns a context in which a request's client
// authentication runs once.
func withClientAuth(ctx context.Context) context.Context {
	if _, ok := ctx.Value(clientAuthKey{}).(*clientAuthMemo); ok {
		return ctx
	}
	return context.WithValue(ctx, clientAuthKey{}, &clientAuthMemo{})
}

// authenticateClientOnce is fosite's ClientAuthenticationStrategy: within a
// context from withClientAuth, it runs once per request and then repeats
// its answer.
func (p *Provider) authenticateClientOnce(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error) {
	m, _ := ctx.Value(clientAuthKey{}).(*clientAuthMemo)
	if m != nil && m.done {
		return m.client, m.err
	}
	c, err := p.oauth.DefaultClientAuthenticationStrategy(ctx, r, form)
	if m != nil {
		m.done, m.client, m.err = true, c, err
	}
	return c, err
}
