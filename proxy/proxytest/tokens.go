package proxytest

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Tokens runs the code flow with PKCE against the provider by hand, as
// the user SignInAs chose, and returns the access and ID tokens, as an
// API client would get them.
func (o *OP) Tokens(t testing.TB) (access, id string) {
	t.Helper()
	const cb = "http://127.0.0.1:1/cb"
	o.AllowRedirect(cb)
	ctx := context.Background()
	p, err := gooidc.NewProvider(ctx, o.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	c := oauth2.Config{ClientID: ClientID, ClientSecret: ClientSecret, Endpoint: p.Endpoint(), RedirectURL: cb, Scopes: []string{"openid", "email", "profile"}}
	verifier := oauth2.GenerateVerifier()
	jar, _ := cookiejar.New(nil)
	b := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	loc := c.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier))
	for i := 0; i < 10 && !strings.HasPrefix(loc, cb); i++ {
		res, err := b.Get(loc)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		u, _ := res.Request.URL.Parse(res.Header.Get("Location"))
		loc = u.String()
	}
	u, _ := url.Parse(loc)
	tok, err := c.Exchange(ctx, u.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken, tok.Extra("id_token").(string)
}
