package authz_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/memory"
)

// authorizeURL builds an authorization request for the web client with a
// valid PKCE challenge, changed by mod.
func authorizeURL(e *env, mod func(url.Values)) string {
	v := url.Values{
		"client_id": {"web"}, "redirect_uri": {webRedirect}, "response_type": {"code"},
		"scope": {"openid"}, "state": {"state-12345678"},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"},
	}
	if mod != nil {
		mod(v)
	}
	return e.in.URL + "/oauth2/authorize?" + v.Encode()
}

// noFollow fetches without following redirects.
func noFollow(t *testing.T, u string) *http.Response {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res
}

// TestBadAuthorizationRequests: every refusal carries the right OAuth
// error; with a verified redirect URI it goes to the client with state and
// iss, otherwise an error page shows and nothing redirects. Nothing is
// stored for a refused request.
func TestBadAuthorizationRequests(t *testing.T) {
	st := memory.New()
	e := start(t, providerConfig, st)
	redirected := []struct {
		name string
		mod  func(url.Values)
		want string
	}{
		{"missing PKCE", func(v url.Values) { v.Del("code_challenge"); v.Del("code_challenge_method") }, "invalid_request"},
		{"plain PKCE", func(v url.Values) { v.Set("code_challenge_method", "plain") }, "invalid_request"},
		{"PKCE method missing", func(v url.Values) { v.Del("code_challenge_method") }, "invalid_request"},
		{"malformed challenge", func(v url.Values) { v.Set("code_challenge", "short") }, "invalid_request"},
		{"implicit", func(v url.Values) { v.Set("response_type", "token") }, "unsupported_response_type"},
		{"hybrid", func(v url.Values) { v.Set("response_type", "code id_token") }, "unsupported_response_type"},
		{"scope not allowed", func(v url.Values) { v.Set("scope", "openid admin") }, "invalid_scope"},
		{"unknown prompt", func(v url.Values) { v.Set("prompt", "maybe") }, "invalid_request"},
		{"prompt none with login", func(v url.Values) { v.Set("prompt", "none login") }, "invalid_request"},
		{"negative max_age", func(v url.Values) { v.Set("max_age", "-1") }, "invalid_request"},
		{"repeated parameter", func(v url.Values) { v.Add("scope", "openid") }, "invalid_request"},
		{"request object", func(v url.Values) { v.Set("request", "eyJhbGciOiJub25lIn0.e30.") }, "request_not_supported"},
		{"request_uri (no fetch)", func(v url.Values) { v.Set("request_uri", "http://127.0.0.1:1/evil") }, "request_uri_not_supported"},
		{"short state", func(v url.Values) { v.Set("state", "abc") }, "invalid_state"},
	}
	before := st.Len()
	for _, c := range redirected {
		res := noFollow(t, authorizeURL(e, c.mod))
		loc, _ := url.Parse(res.Header.Get("Location"))
		if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc.String(), webRedirect+"?") {
			t.Errorf("%s: %d to %q, want a redirect to the client", c.name, res.StatusCode, loc)
			continue
		}
		q := loc.Query()
		if q.Get("error") != c.want || q.Get("iss") != e.in.URL {
			t.Errorf("%s: error %q iss %q, want %s with iss", c.name, q.Get("error"), q.Get("iss"), c.want)
		}
		if c.name != "short state" && q.Get("state") != "state-12345678" {
			t.Errorf("%s: state %q not returned", c.name, q.Get("state"))
		}
	}

	pages := []struct {
		name string
		mod  func(url.Values)
		want string
	}{
		{"redirect URI one character off", func(v url.Values) { v.Set("redirect_uri", webRedirect+"s") }, "invalid_request"},
		{"redirect URI of another client", func(v url.Values) { v.Set("redirect_uri", thirdRedirect) }, "invalid_request"},
		{"unknown client", func(v url.Values) { v.Set("client_id", "nobody") }, "invalid_client"},
		{"missing client", func(v url.Values) { v.Del("client_id") }, "invalid_client"},
	}
	for _, c := range pages {
		res := noFollow(t, authorizeURL(e, c.mod))
		if res.StatusCode < 400 || res.Header.Get("Location") != "" {
			t.Errorf("%s: %d Location %q, want an error page and no redirect", c.name, res.StatusCode, res.Header.Get("Location"))
		}
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: error page may be framed", c.name)
		}
	}
	p := e.browser().Get(authorizeURL(e, func(v url.Values) { v.Set("redirect_uri", "https://evil.example/cb") }))
	if p.Status != 400 || !strings.Contains(p.Body, "redirect_uri") || strings.Contains(p.Body, "evil.example") {
		t.Errorf("error page for a foreign redirect URI: %d\n%s", p.Status, p.Body)
	}
	// Oversized and malformed requests.
	if res := noFollow(t, authorizeURL(e, func(v url.Values) { v.Set("nonce", strings.Repeat("n", 9000)) })); res.StatusCode != 400 || res.Header.Get("Location") != "" {
		t.Errorf("oversized authorization request: %d", res.StatusCode)
	}
	if res := noFollow(t, e.in.URL+"/oauth2/authorize?client_id=web&scope=%zz"); res.StatusCode != 400 || res.Header.Get("Location") != "" {
		t.Errorf("malformed query: %d", res.StatusCode)
	}
	if after := st.Len(); after != before {
		t.Errorf("refused authorization requests stored %d entries", after-before)
	}
}

// TestBadTokenRequests covers the token endpoint's refusals.
func TestBadTokenRequests(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		e := start(t, providerConfig, st)
		b := e.browser()
		code := func() (*flow, *authResponse) {
			f := newFlow(e.web())
			return f, e.response(b.SignInDev(f.authURL, "alice"))
		}
		// Sign in once; later flows reuse the session.
		f, res := code()
		e.checkAuthResponse(f, res)

		// Wrong verifier: invalid_grant, and the code is burnt.
		_, err := f.cfg.Exchange(e.ctx, res.Query.Get("code"), oauth2.VerifierOption(oauth2.GenerateVerifier()))
		if oauthError(t, err) != "invalid_grant" {
			t.Fatalf("wrong code_verifier: %v", err)
		}
		if _, err := e.exchange(f, res); err == nil {
			t.Fatal("code still usable after a wrong verifier")
		}

		next := func() (*flow, *authResponse) {
			f := newFlow(e.web())
			r := e.response(b.Get(f.authURL))
			e.checkAuthResponse(f, r)
			return f, r
		}
		// No verifier at all.
		f, res = next()
		if _, err := f.cfg.Exchange(e.ctx, res.Query.Get("code")); oauthError(t, err) != "invalid_request" && oauthError(t, err) != "invalid_grant" {
			t.Fatalf("missing code_verifier: %v", err)
		}
		// Wrong secret, unknown client, another client's code.
		f, res = next()
		bad := *f.cfg
		bad.ClientSecret = webSecret + "x"
		if _, err := bad.Exchange(e.ctx, res.Query.Get("code"), oauth2.VerifierOption(f.verifier)); oauthError(t, err) != "invalid_client" {
			t.Fatalf("wrong secret: %v", err)
		}
		bad = *f.cfg
		bad.ClientID = "nobody"
		if _, err := bad.Exchange(e.ctx, res.Query.Get("code"), oauth2.VerifierOption(f.verifier)); oauthError(t, err) != "invalid_client" {
			t.Fatalf("unknown client: %v", err)
		}
		third := e.oauth("third", thirdSecret, webRedirect, oauth2.AuthStyleInParams)
		if _, err := third.Exchange(e.ctx, res.Query.Get("code"), oauth2.VerifierOption(f.verifier)); oauthError(t, err) != "invalid_grant" {
			t.Fatalf("code of another client: %v", err)
		}
		// Secret sent with a method the client is not registered for.
		status, _, m := e.post("/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "code": {res.Query.Get("code")},
			"redirect_uri": {webRedirect}, "code_verifier": {f.verifier}, "client_id": {"web"}, "client_secret": {webSecret}}, "", "")
		if status != 401 || m["error"] != "invalid_client" {
			t.Fatalf("client_secret_post for a client_secret_basic client: %d %v", status, m)
		}
		// A different redirect_uri than the authorization request's.
		status, _, m = e.post("/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "code": {res.Query.Get("code")},
			"redirect_uri": {webRedirect + "/x"}, "code_verifier": {f.verifier}}, "web", webSecret)
		if status != 400 || m["error"] != "invalid_grant" {
			t.Fatalf("redirect_uri mismatch at the token endpoint: %d %v", status, m)
		}

		// Reused code: the second use fails and revokes the first's tokens.
		f, res = next()
		tok, err := e.exchange(f, res)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.exchange(f, res); oauthError(t, err) != "invalid_grant" {
			t.Fatalf("reused code: %v", err)
		}
		if in := e.introspect(tok.AccessToken); in["active"] != false {
			t.Fatal("tokens of a reused code are still active")
		}
		if _, err := refresh(e, f.cfg, tok.RefreshToken); err == nil {
			t.Fatal("refresh token of a reused code still works")
		}

		// Concurrent redemptions of one code: exactly one gets tokens.
		// Concurrent redemptions of one code: exactly one gets tokens. (The
		// others may fail at any of fosite's steps — the PKCE record is
		// spent by the first reader — so this asserts the single winner,
		// not a revocation.)
		f, res = next()
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if _, err := e.exchange(f, res); err == nil {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d of 8 concurrent redemptions of one code succeeded", wins.Load())
		}

		// Grants that do not exist here, and bodies that are not forms.
		for _, c := range []struct {
			name   string
			body   string
			ctype  string
			status int
			want   string
		}{
			{"password grant", "grant_type=password&username=alice&password=x", "application/x-www-form-urlencoded", 400, "unsupported_grant_type"},
			{"implicit grant", "grant_type=implicit", "application/x-www-form-urlencoded", 400, "unsupported_grant_type"},
			{"JSON body", `{"grant_type":"client_credentials"}`, "application/json", 400, "invalid_request"},
			{"malformed form", "grant_type=%zz", "application/x-www-form-urlencoded", 400, "invalid_request"},
			{"empty body", "", "application/x-www-form-urlencoded", 400, "invalid_request"},
			{"repeated parameter", "grant_type=client_credentials&grant_type=client_credentials", "application/x-www-form-urlencoded", 400, "invalid_request"},
			{"oversized", "grant_type=client_credentials&scope=" + strings.Repeat("a", 70<<10), "application/x-www-form-urlencoded", 413, "invalid_request"},
		} {
			req, _ := http.NewRequest(http.MethodPost, e.in.URL+"/oauth2/token", strings.NewReader(c.body))
			req.Header.Set("Content-Type", c.ctype)
			req.SetBasicAuth("service", serviceSecret)
			status, h, m := e.do(req)
			if status != c.status || m["error"] != c.want || h.Get("Cache-Control") != "no-store" {
				t.Errorf("%s: %d %v (Cache-Control %q), want %d %s", c.name, status, m, h.Get("Cache-Control"), c.status, c.want)
			}
		}
		// No client authentication at all: invalid_client, 401, with a
		// challenge (RFC 6749 §5.2), and nothing stored.
		for _, body := range []string{"grant_type=client_credentials", "grant_type=authorization_code&code=x&code_verifier=y&redirect_uri=" + url.QueryEscape(webRedirect), "grant_type=refresh_token&refresh_token=x"} {
			req, _ := http.NewRequest(http.MethodPost, e.in.URL+"/oauth2/token", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			status, h, m := e.do(req)
			if status != 401 || m["error"] != "invalid_client" || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Basic") || h.Get("Cache-Control") != "no-store" {
				t.Errorf("no client authentication (%.30s): %d %v %v", body, status, m, h)
			}
		}
		if status, h, _ := e.do(mustRequest(http.MethodGet, e.in.URL+"/oauth2/token")); status != 405 || h.Get("Allow") == "" {
			t.Errorf("GET /oauth2/token: %d", status)
		}
	})
}

func mustRequest(method, u string) *http.Request {
	r, _ := http.NewRequest(method, u, nil)
	return r
}

// TestExpiredCode uses a one-second code lifetime.
func TestExpiredCode(t *testing.T) {
	e := start(t, providerConfig+"tokens: {authorization_code: 1s}\n", nil)
	f := newFlow(e.web())
	res := e.login(e.browser(), f, "alice")
	time.Sleep(2100 * time.Millisecond)
	if _, err := e.exchange(f, res); oauthError(t, err) != "invalid_grant" {
		t.Fatalf("expired code: %v", err)
	}
}

// TestForgedBearerTokens: tokens signed with alg none, HS256 (keyed with
// the public key: algorithm confusion) or by another key are refused at
// userinfo and inactive at introspection — even when they reuse the
// signature of a real, stored token, so that only the signature check
// stands between them and acceptance.
func TestForgedBearerTokens(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		e := start(t, providerConfig, st)
		f := newFlow(e.web())
		tok, err := e.exchange(f, e.login(e.browser(), f, "alice"))
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(tok.AccessToken, ".")
		var header map[string]any
		json.Unmarshal([]byte(decodeSegment(t, parts[0])), &header)
		kid, _ := header["kid"].(string)
		enc := func(v any) string { j, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(j) }
		// Claims of the forgery: another user, same everything else.
		var claims map[string]any
		json.Unmarshal([]byte(decodeSegment(t, parts[1])), &claims)
		claims["sub"] = "mallory"

		hsSigner, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte(kid + "-public-key-bytes-as-secret")},
			(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", kid))
		hsObj, _ := hsSigner.Sign([]byte(enc(claims)))
		hs, _ := hsObj.CompactSerialize()

		forgeries := map[string]string{
			"alg none":                         enc(map[string]any{"alg": "none", "kid": kid, "typ": "at+jwt"}) + "." + enc(claims) + ".",
			"alg none with a stored signature": enc(map[string]any{"alg": "none", "kid": kid, "typ": "at+jwt"}) + "." + enc(claims) + "." + parts[2],
			"HS256":                            hs,
			"HS256 header, stored signature":   enc(map[string]any{"alg": "HS256", "kid": kid, "typ": "at+jwt"}) + "." + enc(claims) + "." + parts[2],
			"tampered claims":                  parts[0] + "." + enc(claims) + "." + parts[2],
			"ID token as access token":         tok.Extra("id_token").(string),
			"refresh token as access token":    tok.RefreshToken,
			"garbage":                          "not-a-token",
		}
		for name, forged := range forgeries {
			status, h, m := e.userinfo(forged)
			if status != 401 || m["error"] != "invalid_token" || !strings.Contains(h.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("userinfo with %s: %d %v", name, status, m)
			}
			if forged == tok.RefreshToken {
				continue // a refresh token is active at introspection, rightly
			}
			if in := e.introspect(forged); in["active"] != false || len(in) != 1 {
				t.Errorf("introspection of %s: %v", name, in)
			}
		}
		// The genuine token still works (the forgeries did not revoke it).
		if status, _, _ := e.userinfo(tok.AccessToken); status != 200 {
			t.Fatal("genuine token refused")
		}
		// Userinfo without credentials, with a query-string token, and with
		// the wrong scheme.
		if status, h, _ := e.do(mustRequest(http.MethodGet, e.in.URL+"/oauth2/userinfo")); status != 401 || h.Get("WWW-Authenticate") == "" {
			t.Errorf("userinfo without a token: %d", status)
		}
		if status, _, _ := e.do(mustRequest(http.MethodGet, e.in.URL+"/oauth2/userinfo?access_token="+tok.AccessToken)); status != 401 {
			t.Errorf("userinfo with the token in the query string: %d", status)
		}
		req := mustRequest(http.MethodGet, e.in.URL+"/oauth2/userinfo")
		req.Header.Set("Authorization", "Basic "+tok.AccessToken)
		if status, _, _ := e.do(req); status != 401 {
			t.Errorf("userinfo with Basic: %d", status)
		}
	})
}

// TestIntrospectionAuth: RFC 7662 §2.1 requires client authentication.
func TestIntrospectionAuth(t *testing.T) {
	e := start(t, providerConfig, nil)
	cases := []struct {
		name       string
		form       url.Values
		user, pass string
		status     int
		want       string
	}{
		{"no credentials", url.Values{"token": {"x"}}, "", "", 401, "invalid_client"},
		{"wrong secret", url.Values{"token": {"x"}}, "service", "nope", 401, "invalid_client"},
		{"unknown client", url.Values{"token": {"x"}}, "nobody", serviceSecret, 401, "invalid_client"},
		{"public client", url.Values{"token": {"x"}, "client_id": {"spa"}}, "", "", 401, "invalid_client"},
		{"client assertion", url.Values{"token": {"x"}, "client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {"e30.e30."}}, "", "", 401, "invalid_client"},
		{"missing token", url.Values{"token_type_hint": {"access_token"}}, "service", serviceSecret, 400, "invalid_request"},
	}
	for _, c := range cases {
		status, h, m := e.post("/oauth2/introspect", c.form, c.user, c.pass)
		if status != c.status || m["error"] != c.want || h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: %d %v, want %d %s", c.name, status, m, c.status, c.want)
		}
	}
	// A bearer token is not client authentication.
	req, _ := http.NewRequest(http.MethodPost, e.in.URL+"/oauth2/introspect", strings.NewReader("token=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer whatever")
	if status, _, m := e.do(req); status != 401 || m["error"] != "invalid_client" {
		t.Errorf("bearer instead of client credentials: %d %v", status, m)
	}
}

// TestRefusedTokenRequestsStoreNothing: token requests refused for their
// client, grant or body leave the store as it was (the code stays usable
// by its rightful client).
func TestRefusedTokenRequestsStoreNothing(t *testing.T) {
	st := memory.New()
	e := start(t, providerConfig, st)
	f := newFlow(e.web())
	res := e.login(e.browser(), f, "alice")
	code := res.Query.Get("code")
	before := st.Len()
	refused := []struct {
		form       url.Values
		user, pass string
	}{
		{url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webRedirect}, "code_verifier": {f.verifier}}, "web", "wrong-secret"},
		{url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webRedirect}, "code_verifier": {f.verifier}}, "nobody", webSecret},
		{url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webRedirect}, "code_verifier": {f.verifier}, "client_id": {"third"}, "client_secret": {thirdSecret}}, "", ""},
		{url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webRedirect + "x"}, "code_verifier": {f.verifier}}, "web", webSecret},
		{url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"x"}}, "web", webSecret},
		{url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"forged.token"}}, "web", webSecret},
		{url.Values{"grant_type": {"client_credentials"}, "scope": {"admin"}}, "service", serviceSecret},
	}
	for i, c := range refused {
		if status, _, m := e.post("/oauth2/token", c.form, c.user, c.pass); status < 400 || m["error"] == nil {
			t.Fatalf("request %d accepted: %d %v", i, status, m)
		}
	}
	if after := st.Len(); after != before {
		t.Fatalf("refused token requests changed the store: %d entries before, %d after", before, after)
	}
	if _, err := e.exchange(f, res); err != nil {
		t.Fatalf("the code's own client, after the refusals: %v", err)
	}
}
