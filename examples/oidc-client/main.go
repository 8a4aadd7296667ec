// Command oidc-client is a small web app that signs its users in with
// Aero2 as an OpenID Connect provider, the way any Go app would:
// golang.org/x/oauth2 for the code flow with PKCE, github.com/coreos/go-oidc
// for discovery and ID token verification. It shows the ID token's claims
// and the userinfo answer, refreshes the tokens, and logs out through
// Aero2's end_session_endpoint.
//
// Run Aero2's quickstart, then this (see README.md):
//
//	go run ./cmd/aero2 serve --config examples/quickstart/aero2.yaml
//	go run ./examples/oidc-client
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"log"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

func main() {
	issuer := flag.String("issuer", env("OIDC_ISSUER", "http://localhost:8080"), "Aero2's issuer URL")
	clientID := flag.String("client-id", env("OIDC_CLIENT_ID", "oidc-example"), "client ID")
	secret := flag.String("client-secret", env("OIDC_CLIENT_SECRET", "quickstart-oidc-example-secret-not-for-production"), "client secret ($OIDC_CLIENT_SECRET)")
	listen := flag.String("listen", "127.0.0.1:5555", "address to serve on")
	public := flag.String("url", "http://localhost:5555", "this app's public URL (its redirect URI is <url>/callback)")
	flag.Parse()

	h, err := newApp(context.Background(), *issuer, *clientID, *secret, *public)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("oidc-client: open %s (provider %s)", *public, *issuer)
	log.Fatal(http.ListenAndServe(*listen, h))
}

// newApp discovers the provider and returns the app's handler.
func newApp(ctx context.Context, issuer, clientID, secret, public string) (http.Handler, error) {
	// Discovery: endpoints and the JWKS location come from
	// <issuer>/.well-known/openid-configuration.
	provider, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		return nil, fmt.Errorf("discovery at %s: %w (is Aero2 running?)", issuer, err)
	}
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := provider.Claims(&meta); err != nil {
		return nil, err
	}
	a := &app{
		oauth: &oauth2.Config{
			ClientID: clientID, ClientSecret: secret,
			Endpoint:    provider.Endpoint(),
			RedirectURL: public + "/callback",
			Scopes:      []string{oidc.ScopeOpenID, "profile", "email", "groups", oidc.ScopeOfflineAccess},
		},
		provider:   provider,
		verifier:   provider.Verifier(&oidc.Config{ClientID: clientID}),
		endSession: meta.EndSession,
		issuer:     issuer,
		public:     public,
		sessions:   map[string]*session{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.home)
	mux.HandleFunc("GET /login", a.login)
	mux.HandleFunc("GET /callback", a.callback)
	mux.HandleFunc("POST /refresh", a.refresh)
	mux.HandleFunc("POST /logout", a.logout)
	mux.HandleFunc("GET /logged-out", a.loggedOut)
	return mux, nil
}

func env(k, def string) string {
	if v, ok := os.LookupEnv(k); ok {
		return v
	}
	return def
}

// session is what this app keeps per browser: the sign-in in progress
// (state, nonce, PKCE verifier), then the tokens.
type session struct {
	State, Nonce, Verifier string
	Token                  *oauth2.Token
	IDToken                string
	Claims                 map[string]any
	UserInfo               map[string]any
	Error                  string
}

type app struct {
	oauth      *oauth2.Config
	provider   *oidc.Provider
	verifier   *oidc.IDTokenVerifier
	endSession string
	issuer     string
	public     string

	mu       sync.Mutex
	sessions map[string]*session // by cookie value
}

const cookieName = "oidc_example"

func (a *app) session(w http.ResponseWriter, r *http.Request) *session {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c, err := r.Cookie(cookieName); err == nil {
		if s, ok := a.sessions[c.Value]; ok {
			return s
		}
	}
	id := rand.Text()
	s := &session{}
	a.sessions[id] = s
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	return s
}

// login starts the code flow with PKCE (S256), state and nonce.
func (a *app) login(w http.ResponseWriter, r *http.Request) {
	s := a.session(w, r)
	s.State, s.Nonce, s.Verifier = rand.Text(), rand.Text(), oauth2.GenerateVerifier()
	http.Redirect(w, r, a.oauth.AuthCodeURL(s.State, oauth2.S256ChallengeOption(s.Verifier), oidc.Nonce(s.Nonce)), http.StatusFound)
}

// callback checks state and the iss parameter (RFC 9207: the response
// comes from the provider we asked), exchanges the code with the PKCE
// verifier, verifies the ID token (signature via JWKS, iss, aud, exp) and
// its nonce, and fetches userinfo.
func (a *app) callback(w http.ResponseWriter, r *http.Request) {
	s := a.session(w, r)
	q := r.URL.Query()
	defer http.Redirect(w, r, "/", http.StatusFound)
	switch {
	case s.State == "" || q.Get("state") != s.State:
		s.Error = "state mismatch: this response does not belong to a sign-in started here"
		return
	case q.Get("iss") != a.issuer:
		s.Error = "missing or wrong iss in the authorization response"
		return
	case q.Get("error") != "":
		s.Error = q.Get("error") + ": " + q.Get("error_description")
		return
	}
	tok, err := a.oauth.Exchange(r.Context(), q.Get("code"), oauth2.VerifierOption(s.Verifier))
	s.State = ""
	if err != nil {
		s.Error = "code exchange: " + err.Error()
		return
	}
	if err := a.adopt(r.Context(), s, tok, true); err != nil {
		s.Error = err.Error()
	}
}

// adopt verifies the token response's ID token and stores the tokens.
func (a *app) adopt(ctx context.Context, s *session, tok *oauth2.Token, checkNonce bool) error {
	raw, ok := tok.Extra("id_token").(string)
	if !ok {
		return errors.New("no id_token in the token response")
	}
	idt, err := a.verifier.Verify(ctx, raw)
	if err != nil {
		return errors.New("ID token: " + err.Error())
	}
	if checkNonce && idt.Nonce != s.Nonce {
		return errors.New("ID token nonce mismatch")
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		return errors.New("at_hash: " + err.Error())
	}
	claims := map[string]any{}
	idt.Claims(&claims)
	s.Token, s.IDToken, s.Claims, s.Error = tok, raw, claims, ""
	ui, err := a.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		return errors.New("userinfo: " + err.Error())
	}
	s.UserInfo = map[string]any{}
	ui.Claims(&s.UserInfo)
	return nil
}

// refresh uses the refresh token; Aero2 rotates it, so the new one
// replaces the old (which is now spent: using it again would revoke the
// whole family).
func (a *app) refresh(w http.ResponseWriter, r *http.Request) {
	s := a.session(w, r)
	defer http.Redirect(w, r, "/", http.StatusSeeOther)
	if s.Token == nil || s.Token.RefreshToken == "" {
		s.Error = "no refresh token"
		return
	}
	expired := *s.Token
	expired.Expiry = time.Now().Add(-time.Minute) // force the refresh
	tok, err := a.oauth.TokenSource(r.Context(), &expired).Token()
	if err != nil {
		s.Error = "refresh: " + err.Error()
		return
	}
	if err := a.adopt(r.Context(), s, tok, false); err != nil {
		s.Error = err.Error()
	}
}

// logout forgets the tokens and sends the browser to Aero2's
// end_session_endpoint (RP-Initiated Logout) with the ID token as hint.
func (a *app) logout(w http.ResponseWriter, r *http.Request) {
	s := a.session(w, r)
	hint := s.IDToken
	*s = session{}
	s.State = rand.Text()
	v := url.Values{"post_logout_redirect_uri": {a.public + "/logged-out"}, "state": {s.State}, "client_id": {a.oauth.ClientID}}
	if hint != "" {
		v.Set("id_token_hint", hint)
	}
	http.Redirect(w, r, a.endSession+"?"+v.Encode(), http.StatusSeeOther)
}

func (a *app) loggedOut(w http.ResponseWriter, r *http.Request) {
	s := a.session(w, r)
	if r.URL.Query().Get("state") != s.State {
		s.Error = "logout state mismatch"
	}
	s.State = ""
	http.Redirect(w, r, "/", http.StatusFound)
}

var page = template.Must(template.New("home").Funcs(template.FuncMap{
	"json": func(v any) string { b, _ := json.MarshalIndent(v, "", "  "); return string(b) },
}).Parse(`<!doctype html><meta charset="utf-8"><title>Aero2 OIDC example</title>
<style>body{font:15px system-ui;max-width:46rem;margin:2rem auto;padding:0 1rem}pre{background:#f4f4f4;padding:1rem;overflow:auto}form{display:inline}</style>
<h1>Aero2 OIDC example client</h1>
{{with .Error}}<p style="color:#b00">{{.}}</p>{{end}}
{{if .Token}}
<p>Signed in. Access token expires {{.Token.Expiry.Format "15:04:05"}}.
<form method="post" action="/refresh"><button>Refresh tokens</button></form>
<form method="post" action="/logout"><button>Log out</button></form></p>
<h2>ID token claims</h2><pre>{{json .Claims}}</pre>
<h2>Userinfo</h2><pre>{{json .UserInfo}}</pre>
{{else}}
<p><a href="/login">Sign in with Aero2</a></p>
{{end}}`))

func (a *app) home(w http.ResponseWriter, r *http.Request) {
	s := a.session(w, r)
	w.Header().Set("Cache-Control", "no-store")
	page.Execute(w, s)
}
