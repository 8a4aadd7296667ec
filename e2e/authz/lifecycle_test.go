package authz_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/aero2/aero2/store"
)

// refresh runs the refresh grant with x/oauth2 (a token source over an
// expired token refreshes once).
func refresh(e *env, cfg *oauth2.Config, rt string) (*oauth2.Token, error) {
	return cfg.TokenSource(e.ctx, &oauth2.Token{RefreshToken: rt, Expiry: time.Now().Add(-time.Hour)}).Token()
}

func TestRefreshRotationAndReuse(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		e := start(t, providerConfig, st)
		f := newFlow(e.web())
		tok1, err := e.exchange(f, e.login(e.browser(), f, "alice"))
		if err != nil {
			t.Fatal(err)
		}
		tok2, err := refresh(e, f.cfg, tok1.RefreshToken)
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		if tok2.RefreshToken == "" || tok2.RefreshToken == tok1.RefreshToken || tok2.AccessToken == tok1.AccessToken {
			t.Fatal("refresh did not rotate the refresh token")
		}
		// The refreshed ID token verifies and names the same user.
		raw, _ := tok2.Extra("id_token").(string)
		idt, err := e.provider.Verifier(&oidc.Config{ClientID: "web"}).Verify(e.ctx, raw)
		if err != nil || idt.Subject == "" {
			t.Fatalf("refreshed ID token: %v", err)
		}
		if err := idt.VerifyAccessToken(tok2.AccessToken); err != nil {
			t.Fatalf("refreshed at_hash: %v", err)
		}
		// Rotation retired the old access token.
		if in := e.introspect(tok1.AccessToken); in["active"] != false {
			t.Fatalf("access token of a rotated refresh token still active: %v", in)
		}
		tok3, err := refresh(e, f.cfg, tok2.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}

		// Presenting the first, already rotated token again is reuse: it
		// fails and the whole family dies (RFC 9700 §4.14.2).
		if _, err := refresh(e, f.cfg, tok1.RefreshToken); oauthError(t, err) != "invalid_grant" {
			t.Fatalf("reused refresh token: %v", err)
		}
		if in := e.introspect(tok3.AccessToken); in["active"] != false {
			t.Fatal("access token of the family still active after reuse")
		}
		if _, err := refresh(e, f.cfg, tok3.RefreshToken); oauthError(t, err) != "invalid_grant" {
			t.Fatalf("latest refresh token after reuse detection: %v", err)
		}
		// Another client cannot use someone else's refresh token.
		f2 := newFlow(e.web())
		tok4, _ := e.exchange(f2, e.login(e.browser(), f2, "alice"))
		spa := e.oauth("spa", "", spaRedirect, oauth2.AuthStyleInParams)
		if _, err := refresh(e, spa, tok4.RefreshToken); oauthError(t, err) != "invalid_grant" {
			t.Fatalf("refresh token of another client: %v", err)
		}
	})
}

func TestRevocation(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		e := start(t, providerConfig, st)
		f := newFlow(e.web())
		tok, err := e.exchange(f, e.login(e.browser(), f, "alice"))
		if err != nil {
			t.Fatal(err)
		}
		// Another client may not revoke it, and it stays alive.
		status, _, m := e.post("/oauth2/revoke", url.Values{"token": {tok.AccessToken}}, "service", serviceSecret)
		if status != 400 || m["error"] != "unauthorized_client" {
			t.Fatalf("revocation by another client: %d %v", status, m)
		}
		if in := e.introspect(tok.AccessToken); in["active"] != true {
			t.Fatal("token revoked by another client's request")
		}
		// Wrong secret.
		if status, _, m := e.post("/oauth2/revoke", url.Values{"token": {tok.AccessToken}}, "web", "wrong"+webSecret); status != 401 || m["error"] != "invalid_client" {
			t.Fatalf("revocation with a wrong secret: %d %v", status, m)
		}
		// Revoking the refresh token revokes the grant's access token too.
		status, h, _ := e.post("/oauth2/revoke", url.Values{"token": {tok.RefreshToken}, "token_type_hint": {"refresh_token"}}, "web", webSecret)
		if status != 200 || h.Get("Cache-Control") != "no-store" {
			t.Fatalf("revocation: %d", status)
		}
		if in := e.introspect(tok.AccessToken); in["active"] != false {
			t.Fatalf("access token active after revocation: %v", in)
		}
		if status, h, m := e.userinfo(tok.AccessToken); status != 401 || m["error"] != "invalid_token" || !strings.Contains(h.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Fatalf("userinfo after revocation: %d %v", status, m)
		}
		if _, err := refresh(e, f.cfg, tok.RefreshToken); oauthError(t, err) != "invalid_grant" {
			t.Fatalf("refresh after revocation: %v", err)
		}
		// Unknown tokens are revoked successfully (RFC 7009 §2.2).
		if status, _, _ := e.post("/oauth2/revoke", url.Values{"token": {"no-such-token"}}, "web", webSecret); status != 200 {
			t.Fatalf("revoking an unknown token: %d", status)
		}
		// A public client revokes its own tokens with client_id only.
		fs := newFlow(e.oauth("spa", "", spaRedirect, oauth2.AuthStyleInParams))
		stok, err := e.exchange(fs, e.login(e.browser(), fs, "alice"))
		if err != nil {
			t.Fatal(err)
		}
		if status, _, _ := e.post("/oauth2/revoke", url.Values{"token": {stok.AccessToken}, "client_id": {"spa"}}, "", ""); status != 200 {
			t.Fatalf("public client revocation: %d", status)
		}
		if in := e.introspect(stok.AccessToken); in["active"] != false {
			t.Fatal("public client's token survived its revocation")
		}
	})
}

func TestLogout(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		e := start(t, providerConfig, st)
		b := e.browser()
		f := newFlow(e.web())
		tok, err := e.exchange(f, e.login(b, f, "alice"))
		if err != nil {
			t.Fatal(err)
		}
		idToken := tok.Extra("id_token").(string)
		logout := e.in.URL + "/oauth2/logout?"

		// A post_logout_redirect_uri one character off: an error page, no
		// redirect, and nobody is signed out.
		p := b.Get(logout + url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {webLogout + "x"}, "state": {"s1"}}.Encode())
		if p.Status != 400 || p.Header.Get("Location") != "" || !strings.Contains(p.Body, "not registered") {
			t.Fatalf("unregistered post-logout URI: %d %s", p.Status, p.Header.Get("Location"))
		}
		if in := e.introspect(tok.AccessToken); in["active"] != true {
			t.Fatal("a refused logout revoked tokens")
		}
		// An access token is not an ID token hint, even though Aero2
		// signed it.
		if p := b.Get(logout + url.Values{"id_token_hint": {tok.AccessToken}, "post_logout_redirect_uri": {webLogout}}.Encode()); p.Status != 400 {
			t.Fatalf("access token as id_token_hint: %d", p.Status)
		}
		// A forged hint is refused too.
		if p := b.Get(logout + url.Values{"id_token_hint": {idToken[:len(idToken)-4] + "AAAA"}, "post_logout_redirect_uri": {webLogout}}.Encode()); p.Status != 400 {
			t.Fatalf("forged id_token_hint: %d", p.Status)
		}
		// Without a hint, the user is asked: a link alone signs nobody out.
		p = b.Get(logout + url.Values{"client_id": {"web"}, "post_logout_redirect_uri": {webLogout}}.Encode())
		if p.Status != 200 || !strings.Contains(p.Body, "Sign out?") {
			t.Fatalf("logout without hint: %d", p.Status)
		}
		// A forged confirmation (no CSRF token) changes nothing.
		action, fields := p.Form(t, "/oauth2/logout")
		forged := url.Values{"client_id": {"web"}, "post_logout_redirect_uri": {webLogout}, "confirm": {"yes"}}
		if p := b.PostForm(action, forged); p.Status != 200 || !strings.Contains(p.Body, "Sign out?") {
			t.Fatalf("logout confirmation without CSRF token: %d", p.Status)
		}
		if in := e.introspect(tok.AccessToken); in["active"] != true {
			t.Fatal("forged confirmation signed the user out")
		}
		_ = fields

		// The real thing: valid hint, exact URI, state returned.
		p = b.Get(logout + url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {webLogout}, "state": {"s2"}}.Encode())
		if p.Status != http.StatusSeeOther || p.Header.Get("Location") != webLogout+"?state=s2" {
			t.Fatalf("logout: %d Location %q", p.Status, p.Header.Get("Location"))
		}
		// Tokens of that session are dead at introspection and userinfo.
		if in := e.introspect(tok.AccessToken); in["active"] != false {
			t.Fatal("access token active after logout")
		}
		if status, _, _ := e.userinfo(tok.AccessToken); status != 401 {
			t.Fatalf("userinfo after logout: %d", status)
		}
		if _, err := refresh(e, f.cfg, tok.RefreshToken); err == nil {
			t.Fatal("refresh token works after logout")
		}
		// The browser is signed out: prompt=none now fails.
		fn := newFlow(e.web(), oauth2.SetAuthURLParam("prompt", "none"))
		res := e.response(b.Get(fn.authURL))
		if res.Query.Get("error") != "login_required" || res.Query.Get("iss") != e.in.URL || res.Query.Get("state") != fn.state {
			t.Fatalf("prompt=none after logout: %s", res.URL)
		}

		// The confirmation path: sign in again, log out without a hint.
		f2 := newFlow(e.web())
		tok2, _ := e.exchange(f2, e.login(b, f2, "alice"))
		p = b.Get(logout + url.Values{"client_id": {"web"}, "post_logout_redirect_uri": {webLogout}, "state": {"s3"}}.Encode())
		action, fields = p.Form(t, "/oauth2/logout")
		p = b.PostForm(action, fields)
		if p.Status != http.StatusSeeOther || p.Header.Get("Location") != webLogout+"?state=s3" {
			t.Fatalf("confirmed logout: %d %q", p.Status, p.Header.Get("Location"))
		}
		if in := e.introspect(tok2.AccessToken); in["active"] != false {
			t.Fatal("access token active after confirmed logout")
		}
	})
}

func TestClientCredentials(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		e := start(t, providerConfig, st)
		cc := &clientcredentials.Config{ClientID: "service", ClientSecret: serviceSecret, TokenURL: e.provider.Endpoint().TokenURL,
			Scopes: []string{"api:read"}, EndpointParams: url.Values{"audience": {"https://api.example"}}}
		tok, err := cc.Token(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if tok.RefreshToken != "" || time.Until(tok.Expiry) > 11*time.Minute {
			t.Fatalf("client credentials: refresh token %t, expiry %s (client lifetime is 10m)", tok.RefreshToken != "", time.Until(tok.Expiry))
		}
		// Token responses must not be cached (RFC 6749 §5.1).
		status, h, body := e.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, "service", serviceSecret)
		if status != 200 || h.Get("Cache-Control") != "no-store" || h.Get("Pragma") != "no-cache" || body["access_token"] == nil {
			t.Fatalf("token response: %d Cache-Control %q", status, h.Get("Cache-Control"))
		}
		in := e.introspect(tok.AccessToken)
		if in["active"] != true || in["sub"] != "service" || in["client_id"] != "service" || in["scope"] != "api:read" {
			t.Fatalf("introspection: %v", in)
		}
		if aud, _ := in["aud"].([]any); len(aud) != 1 || aud[0] != "https://api.example" {
			t.Fatalf("audience: %v", in["aud"])
		}
		// A service token has no user: userinfo refuses it.
		if status, _, m := e.userinfo(tok.AccessToken); status != 403 || m["error"] != "insufficient_scope" {
			t.Fatalf("userinfo with a service token: %d %v", status, m)
		}
		// Scopes and audiences the client does not have; a wrong secret;
		// a client without the grant; a public client.
		bad := []struct {
			name string
			cfg  clientcredentials.Config
			want string
		}{
			{"scope", clientcredentials.Config{ClientID: "service", ClientSecret: serviceSecret, Scopes: []string{"admin"}}, "invalid_scope"},
			{"audience", clientcredentials.Config{ClientID: "service", ClientSecret: serviceSecret, EndpointParams: url.Values{"audience": {"https://other.example"}}}, "invalid_request"},
			{"secret", clientcredentials.Config{ClientID: "service", ClientSecret: serviceSecret + "x"}, "invalid_client"},
			{"unknown client", clientcredentials.Config{ClientID: "nobody", ClientSecret: serviceSecret}, "invalid_client"},
			{"grant not allowed", clientcredentials.Config{ClientID: "web", ClientSecret: webSecret}, "unauthorized_client"},
		}
		for _, c := range bad {
			c.cfg.TokenURL, c.cfg.AuthStyle = cc.TokenURL, oauth2.AuthStyleInHeader
			if _, err := c.cfg.Token(e.ctx); err == nil || oauthError(t, err) != c.want {
				t.Errorf("%s: %v, want %s", c.name, err, c.want)
			}
		}
		status, _, m := e.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"spa"}}, "", "")
		if status < 400 || m["error"] == nil {
			t.Errorf("public client with client_credentials: %d %v", status, m)
		}
		// Revocation: another client's attempt leaves the token alive; the
		// owner's kills it.
		if status, _, _ := e.post("/oauth2/revoke", url.Values{"token": {tok.AccessToken}}, "web", webSecret); status != 400 {
			t.Fatalf("revocation of a service token by another client: %d", status)
		}
		if in := e.introspect(tok.AccessToken); in["active"] != true {
			t.Fatal("service token revoked by another client")
		}
		if status, _, _ := e.post("/oauth2/revoke", url.Values{"token": {tok.AccessToken}}, "service", serviceSecret); status != 200 {
			t.Fatalf("revocation of a service token: %d", status)
		}
		if in := e.introspect(tok.AccessToken); in["active"] != false {
			t.Fatal("revoked service token still active")
		}
	})
}

// TestKeyRotation: a token issued before a rotation still verifies (its
// key is published as previous), new tokens use the new key, and the JWKS
// published the new key before it signed anything.
func TestKeyRotation(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		e := start(t, providerConfig, st)
		f := newFlow(e.web())
		before, err := e.exchange(f, e.login(e.browser(), f, "alice"))
		if err != nil {
			t.Fatal(err)
		}
		oldJWKS := fetchJWKS(t, e)
		if len(oldJWKS) != 2 {
			t.Fatalf("JWKS before rotation has %d keys, want current and next", len(oldJWKS))
		}
		if err := e.in.Server.RotateKeys(t.Context(), "default"); err != nil {
			t.Fatal(err)
		}
		newJWKS := fetchJWKS(t, e)
		if len(newJWKS) != 3 {
			t.Fatalf("JWKS after rotation has %d keys, want next, current and previous", len(newJWKS))
		}
		// Verify the old ID token with a verifier that fetches the new JWKS.
		fresh, err := oidc.NewProvider(e.ctx, e.in.URL)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fresh.Verifier(&oidc.Config{ClientID: "web"}).Verify(e.ctx, before.Extra("id_token").(string)); err != nil {
			t.Fatalf("ID token from before the rotation: %v", err)
		}
		if in := e.introspect(before.AccessToken); in["active"] != true {
			t.Fatal("access token from before the rotation is inactive")
		}
		if status, _, _ := e.userinfo(before.AccessToken); status != 200 {
			t.Fatalf("userinfo with a pre-rotation token: %d", status)
		}
		after, err := refresh(e, f.cfg, before.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		kidOf := func(tok string) string {
			h := strings.Split(tok, ".")[0]
			for kid := range newJWKS {
				if strings.Contains(decodeSegment(t, h), kid) {
					return kid
				}
			}
			return ""
		}
		oldKid, newKid := kidOf(before.AccessToken), kidOf(after.AccessToken)
		if oldKid == "" || newKid == "" || oldKid == newKid {
			t.Fatalf("kids before/after rotation: %q %q", oldKid, newKid)
		}
		if !oldJWKS[newKid] {
			t.Fatal("the new signing key was not published as next before the rotation")
		}
		if _, err := fresh.Verifier(&oidc.Config{ClientID: "web"}).Verify(e.ctx, after.Extra("id_token").(string)); err != nil {
			t.Fatalf("ID token after the rotation: %v", err)
		}
	})
}
