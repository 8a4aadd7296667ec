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

const hintMultipleAuthMethods = "The request uses more than one client authentication method."

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
	c, err := p.authenticateClientRequest(ctx, r, form)
	if m != nil {
		m.done, m.client, m.err = true, c, err
	}
	return c, err
}

// authenticateClientRequest authenticates the client of a token,
// introspection, revocation, PAR or device authorization request: by
// private_key_jwt (verifyClientAssertion), by secret (fosite's
// client_secret_basic and client_secret_post, each only for a client
// registered with it), or as a public client by client_id alone.
func (p *Provider) authenticateClientRequest(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error) {
	if form.Has("client_assertion_type") || form.Has("client_assertion") {
		// RFC 6749 §2.3: one authentication method per request.
		if _, _, basic := r.BasicAuth(); basic || form.Has("client_secret") {
			return nil, fosite.ErrInvalidRequest.WithHint(hintMultipleAuthMethods)
		}
		if form.Get("client_assertion_type") != clientAssertionType {
			return nil, fosite.ErrInvalidClient.WithHintf("client_assertion_type must be %s.", clientAssertionType)
		}
		return p.verifyClientAssertion(ctx, form.Get("client_id"), form.Get("client_assertion"))
	}
	id := form.Get("client_id")
	if user, _, ok := r.BasicAuth(); ok {
		id, _ = url.QueryUnescape(user)
	}
	if c := p.clients.get(id); c != nil && c.keys != nil {
		// No secret to compare: fosite would compare what was sent with
		// an empty hash and fail, but say nothing useful.
		return nil, fosite.ErrInvalidClient.WithHint("The client authenticates with private_key_jwt: send client_assertion_type and client_assertion.")
	}
	return p.oauth.DefaultClientAuthenticationStrategy(ctx, r, form)
}
