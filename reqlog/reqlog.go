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
	"net/http"
	"sync"
)

// Note is what one request's access log line says about who it was for.
// Its setters may be called from any goroutine serving the request.
type Note struct {
	mu      sync.Mutex
	user    string
	client  string
	checked *Checked
	// kind and detail name the endpoint that served the request, for
	// the request metrics (see SetKind).
	kind, detail string
	// id and addr are the request's ID and resolved client address, set
	// once by the server before any part sees the request (Start).
	id, addr string
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

// Start records the request's ID and client address. The server calls it
// once, before the request is served; the audit log reads them (Request).
func (n *Note) Start(id, addr string) {
	n.id, n.addr = id, addr
}

// Request returns the ID and client address of the request ctx serves,
// or "" for both outside of one.
func Request(ctx context.Context) (id, addr string) {
	if n := from(ctx); n != nil {
		return n.id, n.addr
	}
	return "", ""
}

// SetKind records which endpoint served the request, for the request
// metrics: kind is one of a fixed set of words (authorize, token, proxy,
// forward_auth, …) and detail a bounded refinement of it (a grant type
// Aero2 knows, a configured route, a forward-auth mode), never a value a
// client chose freely, since every distinct pair is a time series.
func SetKind(ctx context.Context, kind, detail string) {
	if n := from(ctx); n != nil {
		n.mu.Lock()
		n.kind, n.detail = kind, detail
		n.mu.Unlock()
	}
}

// Endpoint returns h, recording kind (with no detail) for every request
// it serves.
func Endpoint(kind string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		SetKind(r.Context(), kind, "")
		h.ServeHTTP(w, r)
	})
}

// SetDetail refines the kind already recorded (the token endpoint learns
// the grant type only once it has read the form).
func SetDetail(ctx context.Context, detail string) {
	if n := from(ctx); n != nil {
		n.mu.Lock()
		n.detail = detail
		n.mu.Unlock()
	}
}

// Kind returns the recorded kind and detail.
func (n *Note) Kind() (kind, detail string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.kind, n.detail
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
