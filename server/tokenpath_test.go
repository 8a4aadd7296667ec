package server_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/redis/redistest"
)

// countingStore records every call the server makes to the store: one call
// is one round trip on Redis (a batch is one script, GetMany one MGET).
// Rate-limit checks are counted apart: they are the limiter's, not the
// token path's (two per token request, see bench/README.md).
type countingStore struct {
	store.Store
	mu    sync.Mutex
	calls []string
	rate  int
}

func (c *countingStore) note(op string, keys ...string) {
	c.mu.Lock()
	c.calls = append(c.calls, op+" "+strings.Join(keys, ","))
	c.mu.Unlock()
}

// take returns the calls since the last take, and the rate-limit checks.
func (c *countingStore) take() ([]string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	calls, rate := c.calls, c.rate
	c.calls, c.rate = nil, 0
	return calls, rate
}

func (c *countingStore) Create(ctx context.Context, app, key string, v []byte, ttl time.Duration) error {
	c.note("Create", key)
	return c.Store.Create(ctx, app, key, v, ttl)
}
func (c *countingStore) Put(ctx context.Context, app, key string, v []byte, ttl time.Duration) error {
	c.note("Put", key)
	return c.Store.Put(ctx, app, key, v, ttl)
}
func (c *countingStore) Get(ctx context.Context, app, key string) ([]byte, error) {
	c.note("Get", key)
	return c.Store.Get(ctx, app, key)
}
func (c *countingStore) Take(ctx context.Context, app, key string) ([]byte, error) {
	c.note("Take", key)
	return c.Store.Take(ctx, app, key)
}
func (c *countingStore) Delete(ctx context.Context, app string, keys ...string) error {
	c.note("Delete", keys...)
	return c.Store.Delete(ctx, app, keys...)
}
func (c *countingStore) SetAdd(ctx context.Context, app, key string, ttl time.Duration, m ...string) error {
	c.note("SetAdd", key)
	return c.Store.SetAdd(ctx, app, key, ttl, m...)
}
func (c *countingStore) SetMembers(ctx context.Context, app, key string) ([]string, error) {
	c.note("SetMembers", key)
	return c.Store.SetMembers(ctx, app, key)
}
func (c *countingStore) SetRemove(ctx context.Context, app, key string, m ...string) error {
	c.note("SetRemove", key)
	return c.Store.SetRemove(ctx, app, key, m...)
}
func (c *countingStore) Apply(ctx context.Context, app string, ops ...store.Op) error {
	keys := make([]string, len(ops))
	for i, op := range ops {
		keys[i] = op.Key
	}
	c.note("Apply", keys...)
	return c.Store.Apply(ctx, app, ops...)
}
func (c *countingStore) GetMany(ctx context.Context, app string, keys ...string) ([][]byte, error) {
	c.note("GetMany", keys...)
	return c.Store.GetMany(ctx, app, keys...)
}
func (c *countingStore) RateLimit(ctx context.Context, app string, b ...store.RateBucket) (store.RateResult, error) {
	c.mu.Lock()
	c.rate++
	c.mu.Unlock()
	return c.Store.RateLimit(ctx, app, b...)
}
func (c *countingStore) CreateSession(ctx context.Context, s *store.Session, ttl time.Duration) error {
	c.note("CreateSession")
	return c.Store.CreateSession(ctx, s, ttl)
}
func (c *countingStore) GetSession(ctx context.Context, app, id string) (*store.Session, error) {
	c.note("GetSession")
	return c.Store.GetSession(ctx, app, id)
}
func (c *countingStore) TouchSession(ctx context.Context, s *store.Session, ttl time.Duration) error {
	c.note("TouchSession")
	return c.Store.TouchSession(ctx, s, ttl)
}
func (c *countingStore) DeleteSession(ctx context.Context, app, id string) error {
	c.note("DeleteSession")
	return c.Store.DeleteSession(ctx, app, id)
}
func (c *countingStore) UserSessions(ctx context.Context, app, userID string) ([]*store.Session, error) {
	c.note("UserSessions")
	return c.Store.UserSessions(ctx, app, userID)
}
func (c *countingStore) GetUser(ctx context.Context, app, id string) (*store.User, error) {
	c.note("GetUser")
	return c.Store.GetUser(ctx, app, id)
}
func (c *countingStore) UpdateUser(ctx context.Context, u *store.User) error {
	c.note("UpdateUser")
	return c.Store.UpdateUser(ctx, u)
}
func (c *countingStore) UserByIdentity(ctx context.Context, app, idp, subject string) (*store.User, *store.Identity, error) {
	c.note("UserByIdentity")
	return c.Store.UserByIdentity(ctx, app, idp, subject)
}

const roundTripConfig = servertest.DevConfig + `
clients:
  - {id: service, secret: "service-secret-0123456789abcdef-0123", grant_types: [client_credentials], scopes: [api]}
  - {id: rp, secret: "` + rpSecret + `", redirect_uris: ["` + rpRedirect + `"], first_party: true}
`

// TestTokenStoreRoundTrips counts what one token request costs the store
// (issue 13): a client-credentials token is one write; a refresh is one
// read of the token with its single-use marker, one read of the user (a
// disabled user's grant dies: see authz/disabled.go), and one batch that
// checks the guard and writes everything. Introspecting a JWT is one read.
// Each on Redis, where a call is a round trip.
func TestTokenStoreRoundTrips(t *testing.T) {
	cs := &countingStore{Store: redistest.New(t)}
	in := servertest.Start(t, roundTripConfig, cs)
	ctx := context.Background()

	cc := clientcredentials.Config{ClientID: "service", ClientSecret: "service-secret-0123456789abcdef-0123",
		TokenURL: in.URL + "/oauth2/token", Scopes: []string{"api"}, AuthStyle: oauth2.AuthStyleInHeader}
	if _, err := cc.Token(ctx); err != nil { // warm: keys loaded, caches filled
		t.Fatal(err)
	}
	cs.take()
	for range 3 {
		tok, err := cc.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		calls, rate := cs.take()
		if len(calls) != 1 || !strings.HasPrefix(calls[0], "Apply oauth:at:") {
			t.Errorf("client_credentials: %d store calls %q (and %d rate-limit checks); want one write of the token", len(calls), calls, rate)
		}
		if !introspectAs(t, in, "service", "service-secret-0123456789abcdef-0123", tok.AccessToken) {
			t.Fatal("the token is not active")
		}
		calls, _ = cs.take()
		if len(calls) != 1 || !strings.HasPrefix(calls[0], "Get oauth:at:") {
			t.Errorf("introspection: %d store calls %q; want one read of the token", len(calls), calls)
		}
	}

	b := servertest.NewBrowser(t)
	if p := b.SignInDev(in.URL+"/login", "alice"); p.Status != http.StatusOK {
		t.Fatalf("sign-in: %d %s", p.Status, p.URL)
	}
	rp := oauth2.Config{ClientID: "rp", ClientSecret: rpSecret, RedirectURL: rpRedirect, Scopes: []string{"openid", "email"},
		Endpoint: oauth2.Endpoint{AuthURL: in.URL + "/oauth2/authorize", TokenURL: in.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader}}
	verifier := oauth2.GenerateVerifier()
	_, loc := b.Redirect(rp.AuthCodeURL("state-0123456789", oauth2.S256ChallengeOption(verifier)))
	u, _ := url.Parse(loc)
	tok, err := rp.Exchange(ctx, u.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	rt := tok.RefreshToken
	for i := range 3 {
		cs.take()
		next, err := rp.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
		if err != nil {
			t.Fatalf("refresh %d: %v", i, err)
		}
		if next.RefreshToken == "" || next.RefreshToken == rt || next.Extra("id_token") == nil {
			t.Fatalf("refresh %d did not rotate, or gave no ID token", i)
		}
		rt = next.RefreshToken
		calls, rate := cs.take()
		want := []string{"GetMany oauth:rt:", "GetUser", "Apply "}
		ok := len(calls) == len(want)
		for j := range want {
			ok = ok && strings.HasPrefix(calls[j], want[j])
		}
		if !ok {
			t.Errorf("refresh %d: %d store calls (and %d rate-limit checks):\n%s\nwant: read the token and its marker, the user, then one guarded batch",
				i, len(calls), rate, strings.Join(calls, "\n"))
		}
		if i == 0 {
			t.Logf("refresh batch: %s", calls[len(calls)-1])
		}
	}
}
