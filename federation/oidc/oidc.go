// Package oidc is the `oidc` identity provider type: any OpenID Connect
// issuer, found through discovery, with the ID token verified by
// github.com/coreos/go-oidc/v3 (signature against the issuer's published
// keys, iss, aud, exp) and by this package (azp, nonce, at_hash). The
// `google`, `gitlab` and `microsoft` types are presets of it, in this
// package too.
//
// Open never calls the network, so that `aero2 check` works offline:
// discovery happens on the first sign-in and is kept once it succeeds.
package oidc

import (
	"cmp"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/federation"
)

// Config is the `config:` of a `type: oidc` identity provider.
type Config struct {
	// Issuer is the provider's issuer URL; its discovery document is at
	// <issuer>/.well-known/openid-configuration and must name the same
	// issuer.
	Issuer       string `yaml:"issuer"`
	ClientID     string `yaml:"client_id"`
	ClientSecret string `yaml:"client_secret"`
	// Scopes to request. Default: openid profile email. "openid" is always
	// added.
	Scopes []string `yaml:"scopes"`
	// GetUserInfo also fetches the userinfo endpoint and lets its claims
	// complete the ID token's (providers that put little in the ID token).
	GetUserInfo bool `yaml:"get_userinfo"`
	// UsernameClaim names the claim that holds the username. Default
	// preferred_username.
	UsernameClaim string `yaml:"username_claim"`
	// GroupsClaim names the claim that holds the groups (a list of strings
	// or one string). Default groups.
	GroupsClaim string `yaml:"groups_claim"`
	// AuthParams are extra parameters for the authorization request
	// (prompt, login_hint, acr_values, …). The ones the flow sets itself
	// (state, nonce, PKCE, redirect_uri, …) cannot be overridden.
	AuthParams map[string]string `yaml:"auth_params"`
	// Timeout bounds each call to the provider. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
}

// reservedParams are the authorization request parameters the flow owns:
// letting config override them would undo state, nonce or PKCE.
var reservedParams = []string{"client_id", "redirect_uri", "response_type", "response_mode", "scope", "state", "nonce", "code_challenge", "code_challenge_method", "request", "request_uri"}

// Open validates the config. It does not call the network.
func (c *Config) Open(_ context.Context, env federation.Env) (federation.Connector, error) {
	conn, ps := c.build(env, "issuer")
	if len(ps) > 0 {
		return nil, ps
	}
	return conn, nil
}

// build validates the generic settings and returns the connector, which
// presets then adjust. issuerKey names the setting the issuer came from.
func (c *Config) build(env federation.Env, issuerKey string) (*connector, config.Problems) {
	var ps config.Problems
	if p := env.CheckURL(issuerKey, c.Issuer); p != nil {
		ps = append(ps, *p)
	}
	if c.ClientID == "" {
		ps = append(ps, env.Problem("client_id", "required: the client ID the provider gave when the application was registered"))
	}
	if c.ClientSecret == "" {
		ps = append(ps, env.Problem("client_secret", "required (give it through the environment: client_secret: \"${…}\")"))
	}
	if c.Timeout < 0 || c.Timeout > 2*time.Minute {
		ps = append(ps, env.Problem("timeout", "expected a positive duration of at most 2m, got %s", c.Timeout))
	}
	for k := range c.AuthParams {
		if slices.Contains(reservedParams, strings.ToLower(k)) {
			ps = append(ps, env.Problem("auth_params."+k, "%q is set by Aero2 itself and cannot be configured", k))
		}
	}
	scopes := c.Scopes
	if len(scopes) == 0 {
		scopes = []string{"profile", "email"}
	}
	if !slices.Contains(scopes, gooidc.ScopeOpenID) {
		scopes = append([]string{gooidc.ScopeOpenID}, scopes...)
	}
	conn := &connector{
		id: env.ID,
		// Exactly as configured: the discovery document's issuer must
		// equal it, character for character (OIDC Discovery §4.3).
		issuer:        c.Issuer,
		clientID:      c.ClientID,
		clientSecret:  c.ClientSecret,
		scopes:        scopes,
		userinfo:      c.GetUserInfo,
		usernameClaim: cmp.Or(c.UsernameClaim, "preferred_username"),
		groupsClaim:   cmp.Or(c.GroupsClaim, "groups"),
		authParams:    c.AuthParams,
		client:        env.Client(c.Timeout),
		log:           env.Logger,
	}
	if conn.log == nil {
		conn.log = slog.Default()
	}
	return conn, ps
}

var _ federation.IssuerConnector = (*connector)(nil)

// connector signs users in with one OpenID Connect provider.
type connector struct {
	id            string
	issuer        string
	clientID      string
	clientSecret  string
	scopes        []string
	userinfo      bool
	usernameClaim string
	groupsClaim   string
	authParams    map[string]string
	client        *http.Client
	log           *slog.Logger

	// Set by presets.
	//
	// discoveryIssuer, when set, is the issuer the discovery document
	// names instead of Issuer: Microsoft's multi-tenant endpoints publish
	// "…/{tenantid}/v2.0", a template. checkIssuer must then check every
	// ID token's iss itself.
	discoveryIssuer string
	checkIssuer     func(iss string, c claims) error
	// check admits or refuses the verified claims (Google's hosted
	// domain); an error wrapping federation.ErrDenied refuses.
	check func(c claims) error
	// emailVerified overrides how email_verified is read (Microsoft).
	emailVerified func(c claims) bool

	mu   sync.Mutex
	disc *discovered
}

// discovered is what discovery found, kept for the process's life. Keys
// are refetched by go-oidc when a token names an unknown key ID.
type discovered struct {
	provider    *gooidc.Provider
	endpoint    oauth2.Endpoint
	verifier    *gooidc.IDTokenVerifier
	issRequired bool
}

// ctx gives go-oidc and x/oauth2 the connector's HTTP client; both take it
// only through a context key.
func (c *connector) ctx(ctx context.Context) context.Context {
	return context.WithValue(gooidc.ClientContext(ctx, c.client), oauth2.HTTPClient, c.client)
}

// discover fetches the discovery document once. A failure is not kept:
// the next sign-in tries again.
func (c *connector) discover(ctx context.Context) (*discovered, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.disc != nil {
		return c.disc, nil
	}
	dctx := c.ctx(ctx)
	if c.discoveryIssuer != "" {
		dctx = gooidc.InsecureIssuerURLContext(dctx, c.discoveryIssuer)
	}
	p, err := gooidc.NewProvider(dctx, c.issuer)
	if err != nil {
		return nil, fmt.Errorf("oidc %s: discovery: %w", c.id, err)
	}
	var meta struct {
		IssParam    bool     `json:"authorization_response_iss_parameter_supported"`
		AuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	}
	_ = p.Claims(&meta)
	// Authenticate the way the provider says it accepts: x/oauth2's
	// auto-detection would otherwise try a second time on any failure,
	// doubling the wait on a provider that does not answer.
	style := oauth2.AuthStyleInHeader // client_secret_basic, the default of OIDC Discovery §3
	if len(meta.AuthMethods) > 0 && !slices.Contains(meta.AuthMethods, "client_secret_basic") && slices.Contains(meta.AuthMethods, "client_secret_post") {
		style = oauth2.AuthStyleInParams
	}
	// The key set lives as long as the connector: its fetches use the
	// connector's client (with its timeout), not a request's context.
	v := p.VerifierContext(gooidc.ClientContext(context.Background(), c.client), &gooidc.Config{
		ClientID:        c.clientID,
		SkipIssuerCheck: c.checkIssuer != nil,
	})
	endpoint := p.Endpoint()
	endpoint.AuthStyle = style
	c.disc = &discovered{provider: p, endpoint: endpoint, verifier: v, issRequired: meta.IssParam}
	return c.disc, nil
}

func (c *connector) oauth2(d *discovered, callback string) *oauth2.Config {
	return &oauth2.Config{
		ClientID: c.clientID, ClientSecret: c.clientSecret,
		Endpoint: d.endpoint, RedirectURL: callback, Scopes: c.scopes,
	}
}

// ResponseIssuer implements federation.IssuerConnector.
func (c *connector) ResponseIssuer(ctx context.Context) (string, bool, error) {
	if c.checkIssuer != nil {
		return "", false, nil // a template: the ID token's iss is checked instead
	}
	d, err := c.discover(ctx)
	if err != nil {
		return "", false, err
	}
	return c.issuer, d.issRequired, nil
}

// LoginURL is the provider's authorization endpoint with state, nonce and
// an S256 PKCE challenge (RFC 7636; sent to every provider: one that does
// not know PKCE ignores it, RFC 6749 §3.1).
func (c *connector) LoginURL(ctx context.Context, f federation.Flow) (string, error) {
	d, err := c.discover(ctx)
	if err != nil {
		return "", err
	}
	opts := []oauth2.AuthCodeOption{gooidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.PKCEVerifier)}
	for k, v := range c.authParams {
		opts = append(opts, oauth2.SetAuthURLParam(k, v))
	}
	return c.oauth2(d, f.CallbackURL).AuthCodeURL(f.State, opts...), nil
}

// maxCode bounds the code we pass on to the token endpoint.
const maxCode = 2048

// HandleCallback exchanges the code (with the PKCE verifier), verifies the
// ID token and reads the identity from its claims (and userinfo's).
func (c *connector) HandleCallback(ctx context.Context, f federation.Flow, r *http.Request) (federation.Identity, error) {
	code := r.URL.Query().Get("code")
	if code == "" || len(code) > maxCode {
		return federation.Identity{}, errors.New("oidc: callback without a usable code")
	}
	d, err := c.discover(ctx)
	if err != nil {
		return federation.Identity{}, err
	}
	hctx := c.ctx(ctx)
	tok, err := c.oauth2(d, f.CallbackURL).Exchange(hctx, code, oauth2.VerifierOption(f.PKCEVerifier))
	if err != nil {
		return federation.Identity{}, fmt.Errorf("oidc %s: code exchange: %w", c.id, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return federation.Identity{}, fmt.Errorf("oidc %s: token response without id_token", c.id)
	}
	idt, err := d.verifier.Verify(hctx, raw)
	if err != nil {
		return federation.Identity{}, fmt.Errorf("oidc %s: ID token: %w", c.id, err)
	}
	var cl claims
	if err := idt.Claims(&cl); err != nil {
		return federation.Identity{}, fmt.Errorf("oidc %s: ID token claims: %w", c.id, err)
	}
	if c.checkIssuer != nil {
		if err := c.checkIssuer(idt.Issuer, cl); err != nil {
			return federation.Identity{}, fmt.Errorf("oidc %s: ID token: %w", c.id, err)
		}
	}
	// OIDC Core §3.1.3.7 (4, 5): a token for several audiences must name
	// us as its authorized party, and a named authorized party must be
	// us; otherwise it is someone else's token replayed to us.
	azp, _ := cl["azp"].(string)
	if (len(idt.Audience) > 1 && azp == "") || (azp != "" && azp != c.clientID) {
		return federation.Identity{}, fmt.Errorf("oidc %s: ID token authorized party %q is not this client", c.id, azp)
	}
	// OIDC Core §3.1.3.7 (11): the nonce binds the token to this sign-in
	// attempt, so a token stolen from another one is worthless.
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.Nonce)) != 1 || f.Nonce == "" {
		return federation.Identity{}, fmt.Errorf("oidc %s: ID token nonce does not match this sign-in", c.id)
	}
	// OIDC Core §3.2.2.9: when the token carries at_hash, the access token
	// we got (and may send to userinfo) must be the one it was issued with.
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return federation.Identity{}, fmt.Errorf("oidc %s: %w", c.id, err)
		}
	}
	if c.userinfo {
		ui, err := d.provider.UserInfo(hctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return federation.Identity{}, fmt.Errorf("oidc %s: userinfo: %w", c.id, err)
		}
		// OIDC Core §5.3.4: userinfo about another subject must not be
		// used (token substitution).
		if ui.Subject != idt.Subject {
			return federation.Identity{}, fmt.Errorf("oidc %s: userinfo is about another subject", c.id)
		}
		var more claims
		if err := ui.Claims(&more); err != nil {
			return federation.Identity{}, fmt.Errorf("oidc %s: userinfo claims: %w", c.id, err)
		}
		cl.merge(more)
	}
	if c.check != nil {
		if err := c.check(cl); err != nil {
			return federation.Identity{}, fmt.Errorf("oidc %s: %w", c.id, err)
		}
	}
	verified := cl.bool("email_verified")
	if c.emailVerified != nil {
		verified = c.emailVerified(cl)
	}
	return federation.Identity{
		Subject:           idt.Subject,
		PreferredUsername: cl.string(c.usernameClaim),
		Name:              cl.string("name"),
		Email:             cl.string("email"),
		EmailVerified:     verified,
		Groups:            cl.strings(c.groupsClaim),
		Picture:           cl.string("picture"),
	}, nil
}
