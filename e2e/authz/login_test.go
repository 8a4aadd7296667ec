package authz_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store"
)

func TestLoginResumesWithEveryParameter(t *testing.T) {
	e := start(t, providerConfig, nil)
	b := e.browser()
	// Parameters the client sends must all survive the sign-in detour:
	// state, nonce, PKCE, scope, response_mode.
	f := newFlow(e.web("openid", "email"), oauth2.SetAuthURLParam("response_mode", "form_post"))
	p := b.SignInDev(f.authURL, "alice")
	if p.Status != 200 || !strings.Contains(p.Body, `action="`+webRedirect+`"`) {
		t.Fatalf("form_post response: %d\n%s", p.Status, p.Body)
	}
	for _, want := range []string{`name="code"`, `name="state" value="` + f.state + `"`, `name="iss" value="` + e.in.URL + `"`} {
		if !strings.Contains(p.Body, want) {
			t.Errorf("form_post response lacks %s", want)
		}
	}
	if csp := p.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("form_post page may be framed: CSP %q", csp)
	}
	// The nonce survived too: the ID token carries it.
	f2 := newFlow(e.web())
	res := e.response(b.Get(f2.authURL))
	tok, err := e.exchange(f2, res)
	if err != nil {
		t.Fatal(err)
	}
	e.verifyIDToken(f2, tok)
	// response_mode=fragment carries iss too.
	f3 := newFlow(e.web(), oauth2.SetAuthURLParam("response_mode", "fragment"))
	p = b.Get(f3.authURL)
	frag, _ := url.ParseQuery(strings.SplitN(p.Header.Get("Location"), "#", 2)[1])
	if p.Status != http.StatusSeeOther || frag.Get("code") == "" || frag.Get("iss") != e.in.URL || frag.Get("state") != f3.state {
		t.Fatalf("fragment response: %d %q", p.Status, p.Header.Get("Location"))
	}
	// The authorization endpoint takes POST as well as GET (OIDC Core
	// §3.1.2.1).
	f4 := newFlow(e.web())
	u, _ := url.Parse(f4.authURL)
	res = e.response(b.PostForm(e.in.URL+"/oauth2/authorize", u.Query()))
	e.checkAuthResponse(f4, res)
	// A resume handle is single-use: the completed request is gone.
	if p := b.Get(e.in.URL + "/oauth2/authorize?resume=" + strings.Repeat("A", 43)); p.Status != 400 {
		t.Fatalf("unknown resume handle: %d", p.Status)
	}
}

func TestPromptAndMaxAge(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		e := start(t, providerConfig, st)
		b := e.browser()

		// prompt=none without a session: login_required to the client,
		// with state and iss.
		f := newFlow(e.web(), oauth2.SetAuthURLParam("prompt", "none"))
		res := e.response(b.Get(f.authURL))
		if res.Query.Get("error") != "login_required" || res.Query.Get("state") != f.state || res.Query.Get("iss") != e.in.URL {
			t.Fatalf("prompt=none without session: %s", res.URL)
		}
		first := newFlow(e.web())
		tok1, _ := e.exchange(first, e.login(b, first, "alice"))
		var c1 struct {
			AuthTime int64 `json:"auth_time"`
		}
		e.verifyIDToken(first, tok1).Claims(&c1)

		// prompt=none with a session: a code, silently.
		f = newFlow(e.web(), oauth2.SetAuthURLParam("prompt", "none"))
		res = e.response(b.Get(f.authURL))
		e.checkAuthResponse(f, res)

		// prompt=login: the sign-in page again, even with a session.
		time.Sleep(1100 * time.Millisecond) // auth_time has whole seconds
		f = newFlow(e.web(), oauth2.SetAuthURLParam("prompt", "login"))
		if p := b.Get(f.authURL); p.Status != 200 || !strings.HasSuffix(p.URL.Path, "/login") {
			t.Fatalf("prompt=login with a session: %d %s", p.Status, p.URL)
		}
		res = e.login(b, f, "alice")
		tok, err := e.exchange(f, res)
		if err != nil {
			t.Fatal(err)
		}
		var c struct {
			AuthTime int64 `json:"auth_time"`
		}
		e.verifyIDToken(f, tok).Claims(&c)
		if c.AuthTime <= c1.AuthTime {
			t.Fatalf("auth_time after prompt=login is not the new sign-in: %v", time.Unix(c.AuthTime, 0))
		}

		// max_age shorter than the session's age: sign in again.
		time.Sleep(1100 * time.Millisecond)
		f = newFlow(e.web(), oauth2.SetAuthURLParam("max_age", "0"))
		if p := b.Get(f.authURL); !strings.HasSuffix(p.URL.Path, "/login") {
			t.Fatalf("max_age=0: ended at %d %s", p.Status, p.URL)
		}
		// max_age the session satisfies: no sign-in.
		f = newFlow(e.web(), oauth2.SetAuthURLParam("max_age", "3600"))
		e.checkAuthResponse(f, e.response(b.Get(f.authURL)))
		// max_age with prompt=none and a stale session: login_required.
		time.Sleep(1100 * time.Millisecond)
		f = newFlow(e.web(), oauth2.SetAuthURLParam("max_age", "0"), oauth2.SetAuthURLParam("prompt", "none"))
		if res := e.response(b.Get(f.authURL)); res.Query.Get("error") != "login_required" {
			t.Fatalf("prompt=none, max_age=0: %s", res.URL)
		}
	})
}

func TestConsent(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		e := start(t, providerConfig, st)
		b := e.browser()
		third := e.oauth("third", thirdSecret, thirdRedirect, oauth2.AuthStyleInParams)

		// prompt=none for a client the user never approved.
		first := newFlow(e.web())
		e.login(b, first, "alice")
		f := newFlow(third, oauth2.SetAuthURLParam("prompt", "none"))
		if res := e.response(b.Get(f.authURL)); res.Query.Get("error") != "consent_required" || res.Query.Get("iss") != e.in.URL {
			t.Fatalf("prompt=none without consent: %s", res.URL)
		}

		f = newFlow(third)
		p := b.Get(f.authURL)
		if p.Status != 200 || !strings.Contains(p.Body, "Allow Third Party") {
			t.Fatalf("no consent page for a third-party client: %d", p.Status)
		}
		if csp := p.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || p.Header.Get("X-Frame-Options") != "DENY" {
			t.Fatalf("consent page can be framed: %q", csp)
		}
		action, fields := p.Form(t, "/oauth2/consent")

		// CSRF: a forged token, and another browser (another session).
		forged := url.Values{"request": {fields.Get("request")}, "csrf": {"forged"}, "decision": {"allow"}}
		if p := b.PostForm(action, forged); p.Status != 403 {
			t.Fatalf("consent with a forged CSRF token: %d", p.Status)
		}
		other := e.browser()
		e.login(other, newFlow(e.web()), "alice")
		stolen := url.Values{"request": {fields.Get("request")}, "csrf": {fields.Get("csrf")}, "decision": {"allow"}}
		if p := other.PostForm(action, stolen); p.Status != 403 {
			t.Fatalf("consent form replayed from another session: %d", p.Status)
		}
		// A cross-site post is refused before anything else.
		req, _ := http.NewRequest(http.MethodPost, action, strings.NewReader(stolen.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		if res, err := b.Client.Do(req); err != nil || res.StatusCode != 403 {
			t.Fatalf("cross-site consent post: %v %v", err, res)
		}

		// Deny: access_denied to the client.
		deny := url.Values{"request": {fields.Get("request")}, "csrf": {fields.Get("csrf")}, "decision": {"deny"}}
		res := e.response(b.PostForm(action, deny))
		if res.Query.Get("error") != "access_denied" || res.Query.Get("state") != f.state || res.Query.Get("iss") != e.in.URL {
			t.Fatalf("denied consent: %s", res.URL)
		}

		// Allow: a code; then consent is remembered for these scopes.
		f = newFlow(third)
		action, fields = b.Get(f.authURL).Form(t, "/oauth2/consent")
		fields.Set("decision", "allow")
		res = e.response(b.PostForm(action, fields))
		e.checkAuthResponse(f, res)
		if _, err := e.exchange(f, res); err != nil {
			t.Fatalf("exchange after consent (client_secret_post): %v", err)
		}
		f = newFlow(third)
		e.checkAuthResponse(f, e.response(b.Get(f.authURL)))
		// More scopes than approved: asked again.
		f = newFlow(e.oauth("third", thirdSecret, thirdRedirect, oauth2.AuthStyleInParams, "openid", "profile", "email", "offline_access"))
		if p := b.Get(f.authURL); p.Status != 200 || !strings.Contains(p.Body, "offline_access") {
			t.Fatalf("new scope without consent: %d", p.Status)
		}
		// Remembered per user: eve is asked.
		if p := e.browser().SignInDev(newFlow(third).authURL, "eve"); p.Status != 200 || !strings.Contains(p.Body, "Allow Third Party") {
			t.Fatalf("consent of alice used for another user: %d", p.Status)
		}
	})
}

// TestApplicationIsolation: two applications in one deployment. A token,
// code or client of one is worthless at the other.
func TestApplicationIsolation(t *testing.T) {
	cfg := `
insecure_dev: true
store: {type: memory}
secrets:
  cookie_keys: ["` + servertest.CookieKey + `"]
  storage_key: "` + servertest.StorageKey + `"
applications:
  - name: one
    issuer: "{{.URL}}/one"
    identity_providers: [{id: dev, type: dev, config: {users: [{username: alice, email: alice@example.com}]}}]
    clients:
      - {id: web, secret: "` + webSecret + `", redirect_uris: ["` + webRedirect + `"], first_party: true}
      - {id: service, secret: "` + serviceSecret + `", grant_types: [client_credentials], scopes: [api], introspector: true}
  - name: two
    issuer: "{{.URL}}/two"
    identity_providers: [{id: dev, type: dev, config: {users: [{username: alice, email: alice@example.com}]}}]
    clients:
      - {id: web, secret: "` + webSecret + `", redirect_uris: ["` + webRedirect + `"], first_party: true}
      - {id: service, secret: "` + serviceSecret + `", grant_types: [client_credentials], scopes: [api], introspector: true}
`
	in := servertest.Start(t, cfg, nil)
	one := &env{t: t, in: &servertest.Instance{URL: in.URL + "/one", Server: in.Server}}
	two := &env{t: t, in: &servertest.Instance{URL: in.URL + "/two", Server: in.Server}}
	for _, e := range []*env{one, two} {
		e.ctx = t.Context()
		p, err := oidcProvider(e)
		if err != nil {
			t.Fatalf("discovery at %s: %v", e.in.URL, err)
		}
		e.provider = p
	}
	f := newFlow(one.web())
	res := one.login(one.browser(), f, "alice")
	// The code of application one, redeemed at two (same client ID and
	// secret, same redirect URI): refused.
	fTwo := *f
	fTwo.cfg = two.web()
	if _, err := two.exchange(&fTwo, res); err == nil || oauthError(t, err) != "invalid_grant" {
		t.Fatalf("code of one at two: %v", err)
	}
	tok, err := one.exchange(f, res)
	if err != nil {
		t.Fatal(err)
	}
	// Its tokens: inactive at two, refused by two's userinfo and refresh.
	status, _, m := two.post("/oauth2/introspect", url.Values{"token": {tok.AccessToken}}, "service", serviceSecret)
	if status != 200 || m["active"] != false {
		t.Fatalf("token of one introspected at two: %d %v", status, m)
	}
	if status, _, _ := two.userinfo(tok.AccessToken); status != 401 {
		t.Fatalf("token of one at two's userinfo: %d", status)
	}
	if _, err := refresh(two, two.web(), tok.RefreshToken); err == nil {
		t.Fatal("refresh token of one accepted by two")
	}
	// And one's ID token does not verify with two's keys.
	if _, err := two.provider.Verifier(oidcConfig("web")).Verify(t.Context(), tok.Extra("id_token").(string)); err == nil {
		t.Fatal("ID token of one verifies with two's keys")
	}
	if in := one.introspect(tok.AccessToken); in["active"] != true {
		t.Fatal("token inactive at its own application")
	}
}
