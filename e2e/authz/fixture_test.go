package authz_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store"
)

// Client secrets of the test configuration.
const (
	webSecret     = "web-secret-0123456789abcdef-0123456789"
	thirdSecret   = "third-secret-0123456789abcdef-01234567"
	serviceSecret = "service-secret-0123456789abcdef-012345"
	webRedirect   = "http://localhost/callback"
	thirdRedirect = "https://third.example/cb"
	spaRedirect   = "http://localhost/spa"
	webLogout     = "http://localhost/bye"
)

// providerConfig is DevConfig plus the clients the tests use.
const providerConfig = servertest.DevConfig + `
clients:
  - id: web
    name: Web App
    secret: "` + webSecret + `"
    redirect_uris: ["` + webRedirect + `"]
    post_logout_redirect_uris: ["` + webLogout + `"]
    scopes: [openid, profile, email, groups, offline_access]
    first_party: true
  - id: third
    name: Third Party
    secret: "` + thirdSecret + `"
    token_endpoint_auth_method: client_secret_post
    redirect_uris: ["` + thirdRedirect + `"]
  - id: spa
    redirect_uris: ["` + spaRedirect + `"]
    first_party: true
  - id: service
    secret: "` + serviceSecret + `"
    grant_types: [client_credentials]
    scopes: [api:read, api:write]
    audience: [https://api.example]
    tokens: {access_token: 10m}
    introspector: true   # e.introspect asks as service, about every client's tokens
`

// stores runs fn on the memory store and on the real Redis.
func stores(t *testing.T, fn func(t *testing.T, st store.Store)) {
	t.Run("memory", func(t *testing.T) { fn(t, nil) })
	t.Run("redis", func(t *testing.T) { fn(t, servertest.SharedStore(t)) })
}

// env is one running Aero2 seen from its clients.
type env struct {
	t        *testing.T
	in       *servertest.Instance
	provider *oidc.Provider
	ctx      context.Context
}

func start(t *testing.T, tmpl string, st store.Store) *env {
	t.Helper()
	in := servertest.Start(t, tmpl, st)
	ctx := oidc.ClientContext(context.Background(), http.DefaultClient)
	p, err := oidc.NewProvider(ctx, in.URL)
	if err != nil {
		t.Fatalf("discovery with go-oidc: %v", err)
	}
	return &env{t: t, in: in, provider: p, ctx: ctx}
}

func (e *env) oauth(id, secret, redirect string, style oauth2.AuthStyle, scopes ...string) *oauth2.Config {
	ep := e.provider.Endpoint()
	ep.AuthStyle = style
	if len(scopes) == 0 {
		scopes = []string{oidc.ScopeOpenID, "profile", "email"}
	}
	return &oauth2.Config{ClientID: id, ClientSecret: secret, RedirectURL: redirect, Endpoint: ep, Scopes: scopes}
}

func (e *env) web(scopes ...string) *oauth2.Config {
	return e.oauth("web", webSecret, webRedirect, oauth2.AuthStyleInHeader, scopes...)
}

// browser returns a browser that stops when it is sent to a client (any
// redirect leaving Aero2), so the test can read the authorization response.
func (e *env) browser() *servertest.Browser {
	b := servertest.NewBrowser(e.t)
	b.Client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if !strings.HasPrefix(req.URL.String(), e.in.URL) {
			return http.ErrUseLastResponse
		}
		return nil
	}
	return b
}

// authResponse is what the client receives at its redirect URI.
type authResponse struct {
	URL   *url.URL
	Query url.Values
}

func (e *env) response(p *servertest.Page) *authResponse {
	e.t.Helper()
	if p.Status != http.StatusSeeOther {
		e.t.Fatalf("expected a redirect to the client, got %d at %s:\n%s", p.Status, p.URL, p.Body)
	}
	u, err := url.Parse(p.Header.Get("Location"))
	if err != nil {
		e.t.Fatal(err)
	}
	return &authResponse{URL: u, Query: u.Query()}
}

// flow is one authorization code flow in progress.
type flow struct {
	cfg      *oauth2.Config
	verifier string
	state    string
	nonce    string
	authURL  string
}

func newFlow(cfg *oauth2.Config, extra ...oauth2.AuthCodeOption) *flow {
	f := &flow{cfg: cfg, verifier: oauth2.GenerateVerifier(), state: "state-" + oauth2.GenerateVerifier()[:16], nonce: "nonce-" + oauth2.GenerateVerifier()[:16]}
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(f.verifier), oidc.Nonce(f.nonce)}, extra...)
	f.authURL = cfg.AuthCodeURL(f.state, opts...)
	return f
}

// login runs the flow from the authorization URL through the sign-in page
// as the dev user, and returns the client's authorization response.
func (e *env) login(b *servertest.Browser, f *flow, user string) *authResponse {
	e.t.Helper()
	res := e.response(b.SignInDev(f.authURL, user))
	e.checkAuthResponse(f, res)
	return res
}

// checkAuthResponse checks a successful response: code, state, and the
// issuer (RFC 9207).
func (e *env) checkAuthResponse(f *flow, res *authResponse) {
	e.t.Helper()
	if res.Query.Get("code") == "" || res.Query.Get("state") != f.state || res.Query.Get("iss") != e.in.URL {
		e.t.Fatalf("authorization response %s: want code, state %q and iss %q", res.URL, f.state, e.in.URL)
	}
	if !strings.HasPrefix(res.URL.String(), f.cfg.RedirectURL+"?") {
		e.t.Fatalf("response sent to %s, want %s", res.URL, f.cfg.RedirectURL)
	}
}

func (e *env) exchange(f *flow, res *authResponse) (*oauth2.Token, error) {
	return f.cfg.Exchange(e.ctx, res.Query.Get("code"), oauth2.VerifierOption(f.verifier))
}

// verifyIDToken verifies the token's ID token with go-oidc, against
// discovery and the JWKS, and checks the nonce.
func (e *env) verifyIDToken(f *flow, tok *oauth2.Token) *oidc.IDToken {
	e.t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		e.t.Fatal("no id_token in the token response")
	}
	idt, err := e.provider.Verifier(&oidc.Config{ClientID: f.cfg.ClientID}).Verify(e.ctx, raw)
	if err != nil {
		e.t.Fatalf("go-oidc refused the ID token: %v", err)
	}
	if idt.Nonce != f.nonce {
		e.t.Fatalf("nonce %q, want %q", idt.Nonce, f.nonce)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		e.t.Fatalf("at_hash: %v", err)
	}
	return idt
}

// post sends a form to an Aero2 endpoint, with basic auth when user is set.
func (e *env) post(path string, form url.Values, user, pass string) (int, http.Header, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.in.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	return e.do(req)
}

func (e *env) do(req *http.Request) (int, http.Header, map[string]any) {
	e.t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var m map[string]any
	if len(body) > 0 && strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(body, &m); err != nil {
			e.t.Fatalf("%s %s: invalid JSON %q", req.Method, req.URL.Path, body)
		}
	}
	return res.StatusCode, res.Header, m
}

func (e *env) introspect(token string) map[string]any {
	e.t.Helper()
	status, _, m := e.post("/oauth2/introspect", url.Values{"token": {token}}, "service", serviceSecret)
	if status != http.StatusOK {
		e.t.Fatalf("introspection: %d %v", status, m)
	}
	return m
}

// userinfo calls the userinfo endpoint with a bearer token.
func (e *env) userinfo(token string) (int, http.Header, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.in.URL+"/oauth2/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	return e.do(req)
}

// oauthError returns the "error" of a failed x/oauth2 call.
func oauthError(t *testing.T, err error) string {
	t.Helper()
	re, ok := err.(*oauth2.RetrieveError)
	if !ok {
		t.Fatalf("want an OAuth error response, got %v", err)
	}
	return re.ErrorCode
}

// fetchJWKS returns the published kids.
func fetchJWKS(t *testing.T, e *env) map[string]bool {
	t.Helper()
	res, err := http.Get(e.in.URL + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
			Alg string `json:"alg"`
			Use string `json:"use"`
			D   string `json:"d"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(res.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, k := range set.Keys {
		if k.D != "" || k.Alg != "RS256" || k.Use != "sig" {
			t.Fatalf("JWKS key %+v: want a public RS256 signing key", k)
		}
		out[k.Kid] = true
	}
	return out
}

func decodeSegment(t *testing.T, seg string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func oidcProvider(e *env) (*oidc.Provider, error) {
	e.ctx = oidc.ClientContext(e.ctx, http.DefaultClient)
	return oidc.NewProvider(e.ctx, e.in.URL)
}

func oidcConfig(clientID string) *oidc.Config { return &oidc.Config{ClientID: clientID} }
