package server_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/redis/redistest"
)

const roundTripConfig = servertest.DevConfig + `
clients:
  - {id: service, secret: "service-secret-0123456789abcdef-0123", grant_types: [client_credentials], scopes: [api]}
  - {id: rp, secret: "` + rpSecret + `", redirect_uris: ["` + rpRedirect + `"], first_party: true}
`

// TestTokenStoreRoundTrips counts what one token request costs the store
// (issue 13): a client-credentials token is one write; a refresh is two
// round trips: one read of the token with its single-use marker and the
// user the token names (a disabled user's grant dies: see
// authz/disabled.go), and one batch that checks the guard and writes
// everything. Introspecting a JWT is one read, and a refresh token one
// too: the token with its marker and its user. Each on Redis, where a
// call is a round trip.
func TestTokenStoreRoundTrips(t *testing.T) {
	cs := servertest.NewCountingStore(redistest.New(t))
	in := servertest.Start(t, roundTripConfig, cs)
	ctx := context.Background()

	cc := clientcredentials.Config{ClientID: "service", ClientSecret: "service-secret-0123456789abcdef-0123",
		TokenURL: in.URL + "/oauth2/token", Scopes: []string{"api"}, AuthStyle: oauth2.AuthStyleInHeader}
	if _, err := cc.Token(ctx); err != nil { // warm: keys loaded, caches filled
		t.Fatal(err)
	}
	cs.Drain()
	for range 3 {
		tok, err := cc.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		calls, rate := drainCalls(cs)
		if len(calls) != 1 || !strings.HasPrefix(calls[0], "Apply oauth:at:") {
			t.Errorf("client_credentials: %d store calls %q (and %d rate-limit checks); want one write of the token", len(calls), calls, rate)
		}
		if !introspectAs(t, in, "service", "service-secret-0123456789abcdef-0123", tok.AccessToken) {
			t.Fatal("the token is not active")
		}
		calls, _ = drainCalls(cs)
		if len(calls) != 1 || !strings.HasPrefix(calls[0], "Get oauth:at:") {
			t.Errorf("introspection: %d store calls %q; want one read of the token", len(calls), calls)
		}
	}

	rp, tok := rpSignIn(t, in)
	rt := tok.RefreshToken
	for i := range 3 {
		cs.Drain()
		next, err := rp.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
		if err != nil {
			t.Fatalf("refresh %d: %v", i, err)
		}
		if next.RefreshToken == "" || next.RefreshToken == rt || next.Extra("id_token") == nil {
			t.Fatalf("refresh %d did not rotate, or gave no ID token", i)
		}
		rt = next.RefreshToken
		calls, rate := drainCalls(cs)
		want := []string{"GetManyAndUser oauth:rt:", "Apply "}
		ok := len(calls) == len(want)
		for j := range want {
			ok = ok && strings.HasPrefix(calls[j], want[j])
		}
		if !ok {
			t.Errorf("refresh %d: %d store calls (and %d rate-limit checks):\n%s\nwant: read the token, its marker and its user together, then one guarded batch",
				i, len(calls), rate, strings.Join(calls, "\n"))
		}
		if i == 0 {
			t.Logf("refresh batch: %s", calls[len(calls)-1])
		}
	}
	// With its hint: without one, fosite tries the token as an access
	// token first, which costs a read of its own (a named refresh token
	// has a JWT's two dots).
	if !introspectForm(t, in, "rp", rpSecret, url.Values{"token": {rt}, "token_type_hint": {"refresh_token"}}) {
		t.Fatal("the refresh token is not active")
	}
	if calls, _ := drainCalls(cs); len(calls) != 1 || !strings.HasPrefix(calls[0], "GetManyAndUser oauth:rt:") {
		t.Errorf("introspecting a refresh token: %d store calls %q; want one read of the token, its marker and its user", len(calls), calls)
	}
}

// TestIntrospectedRefreshTokenOfAGoneUser: introspection reads a refresh
// token and the user it names in one round trip (the test above), and
// still judges the user: a disabled or deleted user's refresh token is
// not active (RFC 7662 §2.2), though its record is still there (neither
// store.Admin call touches grants; `aero2 users` revokes them too).
func TestIntrospectedRefreshTokenOfAGoneUser(t *testing.T) {
	st := redistest.New(t)
	in := servertest.Start(t, roundTripConfig, st)
	_, tok := rpSignIn(t, in)
	var adm store.Admin = st
	user := userOf(t, st)
	for _, step := range []struct {
		name   string
		do     func() error
		active bool
	}{
		{"signed in", func() error { return nil }, true},
		{"disabled", func() error { return adm.SetUserDisabled(t.Context(), "default", user, true) }, false},
		{"enabled again", func() error { return adm.SetUserDisabled(t.Context(), "default", user, false) }, true},
		{"deleted", func() error { return adm.DeleteUser(t.Context(), "default", user) }, false},
	} {
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if got := introspectAs(t, in, "rp", rpSecret, tok.RefreshToken); got != step.active {
			t.Errorf("%s: the refresh token is active: %v, want %v", step.name, got, step.active)
		}
	}
}

// rpSignIn signs alice in and gets the rp client's tokens for her
// (authorization code with PKCE): the client's config and the tokens.
func rpSignIn(t *testing.T, in *servertest.Instance) (*oauth2.Config, *oauth2.Token) {
	t.Helper()
	b := servertest.NewBrowser(t)
	if p := b.SignInDev(in.URL+"/login", "alice"); p.Status != http.StatusOK {
		t.Fatalf("sign-in: %d %s", p.Status, p.URL)
	}
	rp := &oauth2.Config{ClientID: "rp", ClientSecret: rpSecret, RedirectURL: rpRedirect, Scopes: []string{"openid", "email"},
		Endpoint: oauth2.Endpoint{AuthURL: in.URL + "/oauth2/authorize", TokenURL: in.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader}}
	verifier := oauth2.GenerateVerifier()
	_, loc := b.Redirect(rp.AuthCodeURL("state-0123456789", oauth2.S256ChallengeOption(verifier)))
	u, _ := url.Parse(loc)
	tok, err := rp.Exchange(t.Context(), u.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	return rp, tok
}

// drainCalls returns the store calls since the last drain as strings,
// without the rate-limit checks, and how many of those there were: they
// are the limiter's, not the token path's (two per token request, see
// bench/README.md).
func drainCalls(cs *servertest.CountingStore) ([]string, int) {
	calls, rate := cs.Drain().Without("RateLimit")
	return calls.Strings(), rate
}
