package authz_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/aero2/aero2/store"
)

// TestCodeFlowHappyPath is the flow a real app runs: x/oauth2 with PKCE,
// sign-in through the dev provider, go-oidc verifying the ID token against
// discovery and JWKS, then userinfo and introspection.
func TestCodeFlowHappyPath(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		e := start(t, providerConfig, st)
		b := e.browser()
		f := newFlow(e.web("openid", "profile", "email", "groups"))
		res := e.login(b, f, "alice")
		tok, err := e.exchange(f, res)
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		if tok.RefreshToken == "" || tok.Type() != "Bearer" || time.Until(tok.Expiry) < 50*time.Minute {
			t.Fatalf("token response: refresh token %t, type %q, expires in %s", tok.RefreshToken != "", tok.TokenType, time.Until(tok.Expiry))
		}
		idt := e.verifyIDToken(f, tok)
		var claims struct {
			Name          string   `json:"name"`
			Email         string   `json:"email"`
			EmailVerified bool     `json:"email_verified"`
			Groups        []string `json:"groups"`
			SID           string   `json:"sid"`
			AuthTime      int64    `json:"auth_time"`
		}
		if err := idt.Claims(&claims); err != nil {
			t.Fatal(err)
		}
		if claims.Name != "Alice Admin" || claims.Email != "alice@example.com" || !claims.EmailVerified ||
			!slices.Equal(claims.Groups, []string{"admins", "engineering"}) || claims.SID == "" ||
			time.Since(time.Unix(claims.AuthTime, 0)) > time.Minute {
			t.Fatalf("ID token claims: %+v", claims)
		}
		if idt.Issuer != e.in.URL || !slices.Equal(idt.Audience, []string{"web"}) {
			t.Fatalf("ID token iss %s aud %v", idt.Issuer, idt.Audience)
		}
		// The sid is the store's session ID: the proxy checks it.
		if _, err := e.in.Server.Store().GetSession(t.Context(), "default", claims.SID); err != nil {
			t.Fatalf("sid %q is not a live session: %v", claims.SID, err)
		}

		// The access token is an RFC 9068 JWT.
		at, err := josejwt.ParseSigned(tok.AccessToken, []jose.SignatureAlgorithm{jose.RS256})
		if err != nil {
			t.Fatal(err)
		}
		if typ, _ := at.Headers[0].ExtraHeaders["typ"].(string); typ != "at+jwt" || at.Headers[0].KeyID == "" {
			t.Fatalf("access token header: %+v", at.Headers[0])
		}
		var atc map[string]any
		at.UnsafeClaimsWithoutVerification(&atc)
		for _, k := range []string{"iss", "sub", "aud", "client_id", "scope", "jti", "exp", "iat"} {
			if _, ok := atc[k]; !ok {
				t.Errorf("access token lacks %s: %v", k, atc)
			}
		}
		if atc["client_id"] != "web" || atc["sub"] != idt.Subject || atc["scope"] != "openid profile email groups" {
			t.Errorf("access token claims: %v", atc)
		}
		if aud, _ := atc["aud"].([]any); slices.Contains(aud, any("web")) {
			t.Error("access token audience is the client ID: it could pass as an ID token")
		}
		// Identity claims ride along (RFC 9068 §2.2.3.1), for resource
		// servers' policies.
		if atc["email"] != "alice@example.com" || atc["email_verified"] != true || fmt.Sprint(atc["groups"]) != "[admins engineering]" {
			t.Errorf("access token identity claims: %v", atc)
		}

		// Userinfo, GET and POST.
		status, _, ui := e.userinfo(tok.AccessToken)
		if status != 200 || ui["sub"] != idt.Subject || ui["email"] != "alice@example.com" || ui["name"] != "Alice Admin" {
			t.Fatalf("userinfo: %d %v", status, ui)
		}
		uinfo, err := e.provider.UserInfo(e.ctx, f.cfg.TokenSource(e.ctx, tok))
		if err != nil || uinfo.Subject != idt.Subject {
			t.Fatalf("userinfo through go-oidc: %v", err)
		}
		req, _ := http.NewRequest(http.MethodPost, e.in.URL+"/oauth2/userinfo", strings.NewReader("access_token="+tok.AccessToken))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if status, _, ui := e.do(req); status != 200 || ui["sub"] != idt.Subject {
			t.Fatalf("userinfo POST: %d %v", status, ui)
		}

		// Introspection.
		in := e.introspect(tok.AccessToken)
		if in["active"] != true || in["client_id"] != "web" || in["sub"] != idt.Subject || in["iss"] != e.in.URL || in["token_type"] != "Bearer" {
			t.Fatalf("introspection: %v", in)
		}
		if in := e.introspect(tok.RefreshToken); in["active"] != true || in["token_use"] != "refresh_token" {
			t.Fatalf("refresh token introspection: %v", in)
		}

		// A second authorization in the same browser needs no sign-in.
		f2 := newFlow(e.web())
		res2 := e.response(b.Get(f2.authURL))
		e.checkAuthResponse(f2, res2)
	})
}

// TestAccessTokenIdentityClaimsFollowScopes: an access token carries only
// the identity claims of the granted scopes, after a refresh too.
func TestAccessTokenIdentityClaimsFollowScopes(t *testing.T) {
	e := start(t, providerConfig, nil)
	claimsOf := func(tok string) map[string]any {
		t.Helper()
		at, err := josejwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
		if err != nil {
			t.Fatal(err)
		}
		var c map[string]any
		at.UnsafeClaimsWithoutVerification(&c)
		return c
	}
	f := newFlow(e.web("openid", "offline_access"))
	tok, err := e.exchange(f, e.login(e.browser(), f, "alice"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"email", "email_verified", "groups", "preferred_username"} {
		if _, ok := claimsOf(tok.AccessToken)[k]; ok {
			t.Errorf("access token has %s without the scope that grants it", k)
		}
	}

	f = newFlow(e.web("openid", "email", "groups", "offline_access"))
	tok, err = e.exchange(f, e.login(e.browser(), f, "alice"))
	if err != nil {
		t.Fatal(err)
	}
	tok.Expiry = time.Now().Add(-time.Minute) // make the token source refresh
	fresh, err := f.cfg.TokenSource(e.ctx, tok).Token()
	if err != nil || fresh.AccessToken == tok.AccessToken {
		t.Fatalf("refresh: %v", err)
	}
	c := claimsOf(fresh.AccessToken)
	if c["email"] != "alice@example.com" || fmt.Sprint(c["groups"]) != "[admins engineering]" {
		t.Errorf("refreshed access token claims: %v", c)
	}
	if _, ok := c["name"]; ok {
		t.Error("access token has name without the profile scope")
	}
}
