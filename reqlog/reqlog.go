// Package reqlog carries, in a request's context, what the access log
// says about who a request was for: the signed-in user, the OAuth client,
// and, for a forward-auth question, the request that was asked about. The
// access log (server's middleware) attaches a Note to every request; the
// parts that learn who it is for (the session manager, the provider, the
// proxy) fill it in. It holds identifiers only: never a name, an email, a
// token or a secret, so that the log says no more about people than "user
// <id>".
//
// Every function is a no-op on a context without a Note (a test calling a
// handler directly, a request made in process by Aero2 itself).
package reqlog

import (
	"context"
	"sync"
)

// Note is what one request's access log line says about who it was for.
// Its setters may be called from any goroutine serving the request.
type Note struct {
	mu      sync.Mutex
	user    string
	client  string
	checked *Checked
}

// Checked is the request a forward-auth question was about.
type Checked struct {
	Method, Host, Path string
}

type noteKey struct{}

// With returns ctx carrying n, which the caller keeps to read (the access
// log keeps it in its per-request state: no allocation of its own).
func With(ctx context.Context, n *Note) context.Context {
	return context.WithValue(ctx, noteKey{}, n)
}

func from(ctx context.Context) *Note {
	n, _ := ctx.Value(noteKey{}).(*Note)
	return n
}

// SetUser records the user the request was made as: the user's ID (the
// subject of the tokens the provider issues for them).
func SetUser(ctx context.Context, id string) {
	if n := from(ctx); n != nil && id != "" {
		n.mu.Lock()
		n.user = id
		n.mu.Unlock()
	}
}

// SetClient records the OAuth client the request came from or was for (an
// authenticated client at the token endpoint, the client_id of an
// authorization request, the client a bearer token was issued to).
func SetClient(ctx context.Context, id string) {
	if n := from(ctx); n != nil && id != "" {
		n.mu.Lock()
		n.client = id
		n.mu.Unlock()
	}
}

// SetChecked records the request a forward-auth question was about: its
// method, host and path, never its query (which may carry codes).
func SetChecked(ctx context.Context, method, host, path string) {
	if n := from(ctx); n != nil {
		n.mu.Lock()
		n.checked = &Checked{Method: method, Host: host, Path: path}
		n.mu.Unlock()
	}
}

// User, Client and Checked read the Note once the request is answered.
func (n *Note) User() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.user
}

// Client is the recorded client ID.
func (n *Note) Client() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.client
}

// Checked is the forward-auth request asked about, or nil.
func (n *Note) Checked() *Checked {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.checked
}
