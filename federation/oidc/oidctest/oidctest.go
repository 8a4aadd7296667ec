// Package oidctest runs a real OpenID Connect provider in-process on a
// loopback port, for tests of Aero2's `oidc` connector and its presets.
//
// The provider is zitadel's `op` package (github.com/zitadel/oidc/v3): an
// implementation nobody here wrote, so a connector that passes against it
// speaks the protocol, not our reading of it. This package only supplies
// what a deployment of `op` must: storage, a client, a signing key and a
// login page that signs in the user the test chose.
//
// To test that Aero2 refuses bad answers, a test can make the provider
// misbehave the way a broken or malicious one would (Knobs): deny the
// sign-in, be slow or down, put `iss` in its redirects, publish the wrong
// key, or reissue the ID token with another issuer, audience, nonce,
// lifetime or signing key. Reissued tokens are still made and signed by
// `op` itself (op.CreateIDToken).
package oidctest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// User is an account at the provider.
type User struct {
	Subject           string
	PreferredUsername string
	Name              string
	Email             string
	EmailVerified     bool
	Picture           string
	// Claims are added to the ID token and userinfo as they are (groups,
	// hd, tid, …).
	Claims map[string]any
}

// Reissue replaces the ID token of the next token responses with one made
// from the same request with these changes (zero values change nothing).
type Reissue struct {
	Issuer string
	// ClientID and Audience: the token's azp/client and extra audiences.
	ClientID string
	Audience []string
	Nonce    string
	// Validity is the token's lifetime; negative for an expired token.
	Validity time.Duration
	// Key signs the token instead of the published key (an unknown key).
	Key *rsa.PrivateKey
	// AccessToken is hashed into at_hash instead of the access token the
	// response carries.
	AccessToken string
}

// Knobs make the provider misbehave. The zero value is an honest provider.
type Knobs struct {
	// Deny answers the authorization request with error=access_denied,
	// and ErrorDescription as its error_description.
	Deny             bool
	ErrorDescription string
	// TokenDelay holds every token request this long (a slow provider);
	// TokenDown answers them with 503.
	TokenDelay time.Duration
	TokenDown  bool
	// Iss is added as `iss` to the authorization response (RFC 9207);
	// AdvertiseIss puts authorization_response_iss_parameter_supported in
	// the metadata.
	Iss          string
	AdvertiseIss bool
	// ThinIDToken leaves profile and email out of the ID token: they are
	// then only at the userinfo endpoint.
	ThinIDToken bool
	// UserinfoSubject makes userinfo answer about another subject.
	UserinfoSubject string
	Reissue         *Reissue
	// RedirectURIs registered for the client. Start sets none: set them
	// (the Aero2 callback) before signing in.
	RedirectURIs []string
}

// Provider is a running OpenID Connect provider.
type Provider struct {
	// URL is the issuer, http://127.0.0.1:<port>[path]; Host is
	// http://127.0.0.1:<port>.
	URL          string
	Host         string
	ClientID     string
	ClientSecret string

	path  string
	op    *op.Provider
	st    *storage
	key   *rsa.PrivateKey
	keyID string

	mu    sync.Mutex
	users map[string]User
	next  string // subject of the user who signs in next
	k     Knobs
}

var (
	keyOnce   sync.Once
	sharedKey *rsa.PrivateKey
)

// Key returns an RSA key for tests. Generating one takes long under -race,
// so one is shared: a provider's key and a test's "unknown" key must then
// come from NewKey.
func Key() *rsa.PrivateKey {
	keyOnce.Do(func() { sharedKey = NewKey() })
	return sharedKey
}

// NewKey generates a new RSA key.
func NewKey() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

// Start runs a provider with one user (subject "alice-sub") who signs in
// by default, and stops it when the test ends.
func Start(t testing.TB) *Provider { t.Helper(); return StartAt(t, "") }

// StartAt runs a provider whose issuer has a path (such as
// "/<tenant>/v2.0", as Microsoft's): the issuer is
// http://127.0.0.1:<port><path>.
func StartAt(t testing.TB, path string) *Provider {
	t.Helper()
	p := &Provider{
		path:     path,
		ClientID: "aero2", ClientSecret: "client-secret-" + rand.Text(),
		key: Key(), keyID: "key-1",
		users: map[string]User{},
	}
	p.st = newStorage(p)
	srv := httptest.NewUnstartedServer(nil)
	p.Host = "http://" + srv.Listener.Addr().String()
	p.URL = p.Host + path
	var crypto [32]byte
	rand.Read(crypto[:])
	o, err := op.NewProvider(&op.Config{
		CryptoKey:      crypto,
		CodeMethodS256: true,
		// RFC 9207 and the token endpoint's basic auth are what most
		// providers do; Aero2 is a confidential client.
		SupportedScopes: []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail},
	}, p.st, op.StaticIssuer(p.URL), op.WithAllowInsecure(), op.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	p.op = o
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+path+"/login", p.login)
	if path == "" {
		mux.Handle("/", o)
	} else {
		mux.Handle(path+"/", http.StripPrefix(path, o))
	}
	srv.Config.Handler = p.tamper(mux)
	srv.Start()
	t.Cleanup(srv.Close)
	p.AddUser(User{
		Subject: "alice-sub", PreferredUsername: "alice", Name: "Alice Example",
		Email: "alice@example.com", EmailVerified: true, Picture: "https://example.com/alice.png",
		Claims: map[string]any{"groups": []string{"admins", "dev"}},
	})
	p.SignInAs("alice-sub")
	return p
}

// AddUser adds or replaces an account.
func (p *Provider) AddUser(u User) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.users[u.Subject] = u
}

// SignInAs chooses who signs in at the next authorization requests.
func (p *Provider) SignInAs(subject string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.next = subject
}

// Set replaces the knobs.
func (p *Provider) Set(k Knobs) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.k = k
}

// Update changes the knobs with fn.
func (p *Provider) Update(fn func(*Knobs)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fn(&p.k)
}

func (p *Provider) knobs() Knobs {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.k
}

func (p *Provider) user(subject string) (User, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	u, ok := p.users[subject]
	return u, ok
}

// login is the provider's sign-in page: it signs in the chosen user at
// once (or refuses, with Deny) and continues the authorization.
func (p *Provider) login(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	k := p.knobs()
	if k.Deny {
		req, err := p.st.AuthRequestByID(r.Context(), id)
		if err != nil {
			http.Error(w, "unknown request", http.StatusBadRequest)
			return
		}
		op.AuthRequestError(w, r, req, oidc.ErrAccessDenied().WithDescription("%s", k.ErrorDescription), p.op)
		return
	}
	p.mu.Lock()
	next := p.next
	p.mu.Unlock()
	if _, err := p.st.complete(id, next); err != nil {
		http.Error(w, "unknown request", http.StatusBadRequest)
		return
	}
	http.Redirect(w, r, p.URL+"/authorize/callback?id="+url.QueryEscape(id), http.StatusFound)
}

// tamper wraps the real provider with the knobs' misbehaviour.
func (p *Provider) tamper(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k := p.knobs()
		path := strings.TrimPrefix(r.URL.Path, p.path)
		switch {
		case path == "/.well-known/openid-configuration" && k.AdvertiseIss:
			rec := record(next, r)
			var doc map[string]any
			if json.Unmarshal(rec.Body.Bytes(), &doc) == nil {
				doc["authorization_response_iss_parameter_supported"] = true
				body, _ := json.Marshal(doc)
				rec.Body = bytes.NewBuffer(body)
				rec.Header().Del("Content-Length")
			}
			replay(w, rec)
		case (strings.HasPrefix(path, "/authorize") || path == "/login") && k.Iss != "":
			rec := record(next, r)
			if loc, err := url.Parse(rec.Header().Get("Location")); err == nil && rec.Code == http.StatusFound {
				q := loc.Query()
				q.Set("iss", k.Iss)
				loc.RawQuery = q.Encode()
				rec.Header().Set("Location", loc.String())
			}
			replay(w, rec)
		case path == "/oauth/token":
			if k.TokenDelay > 0 {
				// Read the body first: only then does the server notice
				// a client that gives up, and end the wait.
				body, _ := io.ReadAll(r.Body)
				r.Body = io.NopCloser(bytes.NewReader(body))
				select {
				case <-time.After(k.TokenDelay):
				case <-r.Context().Done():
					return
				}
			}
			if k.TokenDown {
				http.Error(w, "service unavailable", http.StatusServiceUnavailable)
				return
			}
			if k.Reissue == nil {
				next.ServeHTTP(w, r)
				return
			}
			rec := record(next, r.WithContext(op.ContextWithIssuer(r.Context(), p.URL)))
			p.reissue(r.Context(), rec, *k.Reissue)
			replay(w, rec)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// reissue replaces the id_token in a token response.
func (p *Provider) reissue(ctx context.Context, rec *httptest.ResponseRecorder, re Reissue) {
	var res map[string]any
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &res) != nil {
		return
	}
	p.st.mu.Lock()
	last := p.st.last
	p.st.mu.Unlock()
	if last == nil {
		return
	}
	req := *last
	if re.ClientID != "" {
		req.clientID = re.ClientID
	}
	if re.Audience != nil {
		req.audience = re.Audience
	}
	if re.Nonce != "" {
		req.nonce = re.Nonce
	}
	issuer, validity := p.URL, 5*time.Minute
	if re.Issuer != "" {
		issuer = re.Issuer
	}
	if re.Validity != 0 {
		validity = re.Validity
	}
	var st op.Storage = p.st
	if re.Key != nil {
		st = otherKey{p.st, re.Key}
	}
	at, _ := res["access_token"].(string)
	if re.AccessToken != "" {
		at = re.AccessToken
	}
	idt, err := op.CreateIDToken(ctx, issuer, &req, validity, at, "", st, &client{p: p})
	if err != nil {
		panic("oidctest: reissue: " + err.Error())
	}
	res["id_token"] = idt
	body, _ := json.Marshal(res)
	rec.Body = bytes.NewBuffer(body)
	rec.Header().Del("Content-Length")
}

// otherKey signs with a key the provider does not publish.
type otherKey struct {
	*storage
	key *rsa.PrivateKey
}

func (o otherKey) SigningKey(context.Context) (op.SigningKey, error) {
	return signingKey{id: "key-1", key: o.key}, nil
}

func record(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

func replay(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
}
