// Package proxytest has helpers for the proxy's tests and benchmarks: a
// real OpenID provider on loopback, upstream servers that record what they
// receive, and the code flow an API client runs for its tokens.
//
// The provider is zitadel/oidc's `op` package with its example storage:
// an implementation nobody here wrote, so that the proxy's client side is
// checked against someone else's reading of the specifications. Tests
// that need Aero2's own provider will use it the same way, through
// configuration (issuer, client id, client secret).
package proxytest

import (
	"context"
	"crypto/sha256"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// User is a user of the test provider.
type User struct {
	ID, Username, Email string
	EmailVerified       bool
	Groups              []string
}

// Users are the test provider's users.
var Users = []User{
	{ID: "u-alice", Username: "alice", Email: "alice@example.com", EmailVerified: true, Groups: []string{"admins", "engineering"}},
	{ID: "u-bob", Username: "bob", Email: "bob@example.com", EmailVerified: true, Groups: []string{"engineering"}},
	{ID: "u-eve", Username: "eve", Email: "eve@example.com", EmailVerified: false},
}

// Client credentials the provider knows the proxy by.
const (
	ClientID     = "aero2-proxy"
	ClientSecret = "proxy-secret-0123456789"
)

// OP is a running provider.
type OP struct {
	Issuer   string
	Server   *httptest.Server
	Provider *op.Provider
	storage  *opStorage

	mu   sync.Mutex
	next string // the user the next login signs in as

	jwksFetches atomic.Int64
}

// StartOP runs a provider on a loopback port. redirectURIs are the
// proxy's callback URLs it accepts (exact match; AllowRedirect adds more).
func StartOP(t testing.TB, redirectURIs ...string) *OP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	users := userStore{}
	for _, u := range Users {
		users[u.ID] = u
	}
	client := storage.WebClient(ClientID, ClientSecret, redirectURIs...)
	st := &opStorage{Storage: storage.NewStorageWithClients(users, map[string]*storage.Client{ClientID: client}), users: users, sids: map[string]string{}}
	cfg := &op.Config{
		CryptoKey:                sha256.Sum256([]byte("proxytest")),
		DefaultLogoutRedirectURI: "/logged-out",
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
		SupportedUILocales:       []language.Tag{language.English},
	}
	p, err := op.NewProvider(cfg, st, op.StaticIssuer(issuer), op.WithAllowInsecure())
	if err != nil {
		t.Fatal(err)
	}
	o := &OP{Issuer: issuer, Provider: p, storage: st, next: "u-alice"}
	mux := http.NewServeMux()
	interceptor := op.NewIssuerInterceptor(p.IssuerFromRequest)
	// The login UI: sign in as the chosen user at once, as a user would
	// by typing their password.
	mux.Handle("/login/username", interceptor.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("authRequestID")
		o.mu.Lock()
		u := users[o.next]
		o.mu.Unlock()
		if err := st.CheckUsernamePassword(u.Username, "password", id); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		http.Redirect(w, r, op.AuthCallbackURL(p)(r.Context(), id), http.StatusFound)
	})))
	mux.HandleFunc("/logged-out", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("signed out at the provider")) })
	mux.Handle("/", o.countJWKS(o.typedAccessTokens(p)))
	srv := httptest.NewUnstartedServer(mux)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	o.Server = srv
	return o
}

// SignInAs chooses who the next sign-in is.
func (o *OP) SignInAs(userID string) {
	o.mu.Lock()
	o.next = userID
	o.mu.Unlock()
}

// SetSessionID makes the provider put sid in the user's ID tokens and
// access tokens, as Aero2's provider puts its store.Session.ID in ID
// tokens (and in introspection answers).
func (o *OP) SetSessionID(userID, sid string) {
	o.storage.mu.Lock()
	o.storage.sids[userID] = sid
	o.storage.mu.Unlock()
}

// TerminateSession deletes every token the provider issued to the user,
// refresh tokens included: the next refresh is refused, as after a
// sign-out at the provider.
func (o *OP) TerminateSession(t testing.TB, userID string) {
	t.Helper()
	if err := o.storage.TerminateSession(context.Background(), userID, ClientID); err != nil {
		t.Fatalf("terminate session: %v", err)
	}
}

// Revoke revokes an access token (RFC 7009) as its client would.
func (o *OP) Revoke(t testing.TB, token string) {
	t.Helper()
	if err := o.storage.RevokeToken(context.Background(), tokenID(o, token), "", ClientID); err != nil {
		t.Fatalf("revoke: %v", err)
	}
}

// tokenID is the jti of a JWT access token (the example storage keys
// tokens by it).
func tokenID(o *OP, token string) string {
	claims := new(oidc.AccessTokenClaims)
	if _, err := oidc.ParseToken(token, claims); err != nil {
		return token
	}
	return claims.JWTID
}

// opStorage is the example storage with this package's users, JWT access
// tokens, and groups and sid in the ID token.
type opStorage struct {
	*storage.Storage
	users     userStore
	mu        sync.Mutex
	sids      map[string]string
	redirects []string
}

func (s *opStorage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.Storage.GetClientByClientID(ctx, id)
	if err != nil {
		return nil, err
	}
	return jwtClient{c, s}, nil
}

// jwtClient issues JWT access tokens, like Aero2's provider, and accepts
// the redirect URIs added with AllowRedirect.
type jwtClient struct {
	op.Client
	s *opStorage
}

func (jwtClient) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeJWT }

func (c jwtClient) RedirectURIs() []string {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return append(c.Client.RedirectURIs(), c.s.redirects...)
}

// AllowRedirect registers another exact redirect URI for the client.
func (o *OP) AllowRedirect(uri string) {
	o.storage.mu.Lock()
	o.storage.redirects = append(o.storage.redirects, uri)
	o.storage.mu.Unlock()
}

func (s *opStorage) SetUserinfoFromScopes(ctx context.Context, ui *oidc.UserInfo, userID, clientID string, scopes []string) error {
	if err := s.Storage.SetUserinfoFromScopes(ctx, ui, userID, clientID, scopes); err != nil {
		return err
	}
	s.extra(ui, userID)
	return nil
}

func (s *opStorage) SetUserinfoFromToken(ctx context.Context, ui *oidc.UserInfo, tokenID, subject, origin string) error {
	if err := s.Storage.SetUserinfoFromToken(ctx, ui, tokenID, subject, origin); err != nil {
		return err
	}
	s.extra(ui, subject)
	return nil
}

func (s *opStorage) extra(ui *oidc.UserInfo, userID string) {
	u := s.users[userID]
	ui.Email, ui.EmailVerified, ui.PreferredUsername = u.Email, oidc.Bool(u.EmailVerified), u.Username
	ui.AppendClaims("groups", u.Groups)
	s.mu.Lock()
	if sid := s.sids[userID]; sid != "" {
		ui.AppendClaims("sid", sid)
	}
	s.mu.Unlock()
}

type userStore map[string]User

func (u userStore) GetUserByID(id string) *storage.User {
	x, ok := u[id]
	if !ok {
		return nil
	}
	return &storage.User{ID: x.ID, Username: x.Username, Password: "password", Email: x.Email, EmailVerified: x.EmailVerified, PreferredLanguage: language.English}
}

func (u userStore) GetUserByUsername(name string) *storage.User {
	for _, x := range u {
		if x.Username == name {
			return u.GetUserByID(x.ID)
		}
	}
	return nil
}

func (u userStore) ExampleClientID() string { return "service" }

// GetPrivateClaimsFromScopes puts the user's email and groups in JWT
// access tokens, as Aero2's provider does for bearer-token policy.
func (s *opStorage) GetPrivateClaimsFromScopes(ctx context.Context, userID, clientID string, scopes []string) (map[string]any, error) {
	claims, err := s.Storage.GetPrivateClaimsFromScopes(ctx, userID, clientID, scopes)
	if err != nil {
		return nil, err
	}
	if claims == nil {
		claims = map[string]any{}
	}
	u := s.users[userID]
	claims["email"], claims["email_verified"], claims["groups"] = u.Email, u.EmailVerified, u.Groups
	s.mu.Lock()
	if sid := s.sids[userID]; sid != "" {
		claims["sid"] = sid // the session the token belongs to
	}
	s.mu.Unlock()
	return claims, nil
}
