package authz_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store/redis/redistest"
)

// TestProviderFailsClosedWhenTheStoreFails: with Redis down, hanging, or
// dying under the request, each endpoint answers 503 with Retry-After —
// never a token, never "inactive" for a live token, never 500 — and shows
// nothing of the failure.
func TestProviderFailsClosedWhenTheStoreFails(t *testing.T) {
	p := redistest.PrivateServer(t)
	e := start(t, providerConfig, p.Open(t))
	b := e.browser()
	f := newFlow(e.web())
	tok, err := e.exchange(f, e.login(b, f, "alice"))
	if err != nil {
		t.Fatal(err)
	}
	api := servertest.NewBrowser(t) // no cookies: a client's back channel
	form := func(path string, v url.Values, user, pass string) func() *http.Request {
		return servertest.NewPost(e.in.URL+path, v, user, pass)
	}
	get := servertest.NewGet
	jsonError := func(what string, pages []*servertest.Page) {
		t.Helper()
		for _, pg := range pages {
			if !strings.Contains(pg.Body, `"error":"temporarily_unavailable"`) || !strings.HasPrefix(pg.Header.Get("Content-Type"), "application/json") {
				t.Errorf("%s: want a JSON temporarily_unavailable error, got %q: %s", what, pg.Header.Get("Content-Type"), pg.Body)
			}
		}
	}

	// Authorization, signed in (the session lookup fails) and not (the
	// request cannot be kept for after the sign-in).
	b.FailsClosed(t, p, "authorize, signed in", get(newFlow(e.web()).authURL))
	api.FailsClosed(t, p, "authorize, signed out", get(newFlow(e.web()).authURL))

	// The token endpoint: a fresh code each time, a refresh token, client
	// credentials.
	codeExchange := func() *http.Request {
		f := newFlow(e.web())
		code := e.response(b.Get(f.authURL)).Query.Get("code") // signed in already
		return form("/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webRedirect}, "code_verifier": {f.verifier}}, "web", webSecret)()
	}
	jsonError("code exchange", api.FailsClosed(t, p, "code exchange", codeExchange))
	jsonError("refresh", api.FailsClosed(t, p, "refresh", form("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, "web", webSecret)))
	jsonError("client credentials", api.FailsClosed(t, p, "client credentials", form("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, "service", serviceSecret)))

	// Userinfo and introspection of a live token: never "inactive".
	jsonError("userinfo", api.FailsClosed(t, p, "userinfo", get(e.in.URL+"/oauth2/userinfo", "Authorization", "Bearer "+tok.AccessToken)))
	jsonError("introspection", api.FailsClosed(t, p, "introspection", form("/oauth2/introspect", url.Values{"token": {tok.AccessToken}}, "service", serviceSecret)))
	jsonError("revocation", api.FailsClosed(t, p, "revocation", form("/oauth2/revoke", url.Values{"token": {tok.RefreshToken}}, "web", webSecret)))

	// RP-initiated logout.
	idt, _ := tok.Extra("id_token").(string)
	b.FailsClosed(t, p, "logout", get(e.in.URL+"/oauth2/logout?"+url.Values{"id_token_hint": {idt}, "post_logout_redirect_uri": {webLogout}}.Encode()))

	// Redis is back: the token still works, so none of the failed
	// requests revoked or rotated anything by mistake.
	if in := e.introspect(tok.AccessToken); in["active"] != true {
		t.Errorf("after the outages the access token is %v", in)
	}
	if _, err := e.web().TokenSource(e.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err != nil {
		t.Errorf("after the outages the refresh token fails: %v", err)
	}
}
