package proxy

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// Provider is the OIDC provider the proxy signs in at. It is an interface
// so that the proxy's own logic is tested apart from any one provider;
// OIDCProvider speaks the standard protocols to a real one.
type Provider interface {
	// AuthCodeURL is where a browser goes to sign in (authorization code
	// flow with PKCE S256).
	AuthCodeURL(ctx context.Context, a AuthRequest) (string, error)
	// Exchange redeems a code and verifies the ID token (signature,
	// issuer, audience, expiry, nonce), then reads userinfo.
	Exchange(ctx context.Context, a AuthRequest, code string) (*Tokens, error)
	// Refresh trades a refresh token for new tokens.
	Refresh(ctx context.Context, refreshToken string) (*Tokens, error)
	// VerifyAccessToken checks a bearer token: signature against the
	// provider's JWKS, issuer, audience, expiry, and that the provider
	// still considers it active (RFC 7662 introspection, cached briefly).
	VerifyAccessToken(ctx context.Context, token string) (*Identity, error)
	// LogoutURL is the provider's RP-initiated logout URL, or "" when the
	// provider has none.
	LogoutURL(ctx context.Context, idTokenHint, postLogoutRedirectURI string) (string, error)
}

// AuthRequest is one sign-in attempt.
type AuthRequest struct {
	RedirectURI string
	State       string
	Nonce       string
	Verifier    string // PKCE code verifier (RFC 7636)
}

// Tokens is what a sign-in or refresh returns.
type Tokens struct {
	Identity     Identity
	IDToken      string
	AccessToken  string
	RefreshToken string
	AccessExpiry time.Time
	// AccessLifetime is the access token's whole lifetime (expires_in),
	// or 0 when the provider did not say.
	AccessLifetime time.Duration
}

// ErrInvalidToken: a bearer token that is malformed, not signed by the
// provider, for another audience, expired, or no longer active.
var ErrInvalidToken = errors.New("proxy: invalid access token")

// OIDCConfig configures an OIDCProvider.
type OIDCConfig struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	Scopes       []string
	// Audiences accepted in bearer access tokens.
	Audiences []string
	// HTTPClient makes every call to the provider; it must have a timeout.
	HTTPClient *http.Client
	// TokenCache is how long an introspection answer is reused.
	TokenCache time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// OIDCProvider is a Provider that speaks OpenID Connect: discovery, the
// code flow with PKCE, JWKS, userinfo, introspection and RP-initiated
// logout. Discovery happens on first use, not at start-up: the provider
// may be this very process, not yet listening, and `aero2 check` must
// work offline. A failed discovery is retried on the next use.
type OIDCProvider struct {
	cfg OIDCConfig

	mu   sync.Mutex
	disc *discovered

	cacheMu sync.Mutex
	cache   map[[32]byte]introspected
}

type discovered struct {
	provider      *oidc.Provider
	oauth         oauth2.Config
	idVerifier    *oidc.IDTokenVerifier
	atVerifier    *oidc.IDTokenVerifier
	endSession    string
	introspection string
	// par is the provider's PAR endpoint (RFC 9126), if it has one.
	par string
}

type introspected struct {
	id      *Identity
	err     error
	expires time.Time
}

// maxIntrospectionCache bounds the cache; past it, the cache is emptied.
const maxIntrospectionCache = 10000

// NewOIDCProvider returns a provider client. It does not touch the
// network.
func NewOIDCProvider(cfg OIDCConfig) *OIDCProvider {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	return &OIDCProvider{cfg: cfg, cache: map[[32]byte]introspected{}}
}

func (p *OIDCProvider) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, p.cfg.HTTPClient)
}

func (p *OIDCProvider) discover(context.Context) (*discovered, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.disc != nil {
		return p.disc, nil
	}
	// go-oidc keeps the context of NewProvider for later key set fetches,
	// so it gets one that never ends; the HTTP client's timeout bounds
	// each call.
	op, err := oidc.NewProvider(oidc.ClientContext(context.Background(), p.cfg.HTTPClient), p.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("provider discovery at %s: %w", p.cfg.Issuer, err)
	}
	var extra struct {
		Issuer        string   `json:"issuer"`
		JWKS          string   `json:"jwks_uri"`
		Algs          []string `json:"id_token_signing_alg_values_supported"`
		EndSession    string   `json:"end_session_endpoint"`
		Introspection string   `json:"introspection_endpoint"`
		PAR           string   `json:"pushed_authorization_request_endpoint"`
	}
	if err := op.Claims(&extra); err != nil {
		return nil, fmt.Errorf("provider discovery at %s: %w", p.cfg.Issuer, err)
	}
	if extra.JWKS == "" {
		return nil, fmt.Errorf("provider discovery at %s: no jwks_uri", p.cfg.Issuer)
	}
	// One key set for both verifiers, fetched at most once per
	// keySetMinRefresh for unknown keys (see keySet), not go-oidc's
	// RemoteKeySet, which fetches for every token it cannot verify.
	keys := newKeySet(extra.JWKS, p.cfg.HTTPClient, p.cfg.Now)
	var algs []string
	for _, a := range extra.Algs {
		if slices.Contains(keySetAlgs, jose.SignatureAlgorithm(a)) {
			algs = append(algs, a)
		}
	}
	d := &discovered{
		provider: op,
		oauth: oauth2.Config{
			ClientID: p.cfg.ClientID, ClientSecret: p.cfg.ClientSecret,
			Endpoint: op.Endpoint(), Scopes: p.cfg.Scopes,
		},
		idVerifier:    oidc.NewVerifier(extra.Issuer, keys, &oidc.Config{ClientID: p.cfg.ClientID, SupportedSigningAlgs: algs, Now: p.cfg.Now}),
		atVerifier:    oidc.NewVerifier(extra.Issuer, keys, &oidc.Config{SkipClientIDCheck: true, SupportedSigningAlgs: algs, Now: p.cfg.Now}),
		endSession:    extra.EndSession,
		introspection: extra.Introspection,
		par:           extra.PAR,
	}
	p.disc = d
	return d, nil
}

// AuthCodeURL implements Provider.
func (p *OIDCProvider) AuthCodeURL(ctx context.Context, a AuthRequest) (string, error) {
	d, err := p.discover(ctx)
	if err != nil {
		return "", err
	}
	c := d.oauth
	c.RedirectURL = a.RedirectURI
	target := c.AuthCodeURL(a.State, oidc.Nonce(a.Nonce), oauth2.S256ChallengeOption(a.Verifier))
	if d.par == "" {
		return target, nil
	}
	// The provider takes pushed requests: the same parameters go there.
	u, err := url.Parse(target)
	if err != nil {
		return "", err
	}
	return p.pushAuthorization(p.ctx(ctx), d, u.Query())
}

// Exchange implements Provider.
func (p *OIDCProvider) Exchange(ctx context.Context, a AuthRequest, code string) (*Tokens, error) {
	d, err := p.discover(ctx)
	if err != nil {
		return nil, err
	}
	c := d.oauth
	c.RedirectURL = a.RedirectURI
	tok, err := c.Exchange(p.ctx(ctx), code, oauth2.VerifierOption(a.Verifier))
	if err != nil {
		return nil, fmt.Errorf("code exchange: %w", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, errors.New("code exchange: no id_token in the token response")
	}
	idt, err := d.idVerifier.Verify(p.ctx(ctx), raw)
	if err != nil {
		return nil, fmt.Errorf("id token: %w", err)
	}
	// The nonce ties the ID token to this sign-in (OIDC Core §3.1.3.7).
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(a.Nonce)) != 1 {
		return nil, errors.New("id token: nonce does not match the sign-in")
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return nil, fmt.Errorf("id token: %w", err)
		}
	}
	claims, err := p.claims(ctx, d, idt, tok)
	if err != nil {
		return nil, err
	}
	return &Tokens{Identity: identityFromClaims(claims), IDToken: raw, AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, AccessExpiry: tok.Expiry, AccessLifetime: lifetime(tok)}, nil
}

// protocolClaims are never taken from userinfo: they belong to the
// signed ID token.
var protocolClaims = []string{"iss", "sub", "aud", "exp", "iat", "nbf", "nonce", "sid", "auth_time", "azp", "at_hash", "c_hash", "acr", "amr", "jti"}

// claims merges the ID token's claims with userinfo's (OIDC Core §5.3),
// which must be about the same subject (§5.3.2).
func (p *OIDCProvider) claims(ctx context.Context, d *discovered, idt *oidc.IDToken, tok *oauth2.Token) (map[string]any, error) {
	claims := map[string]any{}
	if err := idt.Claims(&claims); err != nil {
		return nil, fmt.Errorf("id token claims: %w", err)
	}
	if d.provider.UserInfoEndpoint() == "" || tok.AccessToken == "" {
		return claims, nil
	}
	ui, err := d.provider.UserInfo(p.ctx(ctx), oauth2.StaticTokenSource(tok))
	if err != nil {
		return nil, fmt.Errorf("userinfo: %w", err)
	}
	if ui.Subject != idt.Subject {
		return nil, errors.New("userinfo is about another subject than the id token")
	}
	var extra map[string]any
	if err := ui.Claims(&extra); err != nil {
		return nil, fmt.Errorf("userinfo claims: %w", err)
	}
	for k, v := range extra {
		if !slices.Contains(protocolClaims, k) {
			claims[k] = v
		}
	}
	return claims, nil
}

// Refresh implements Provider. A refreshed ID token, when the provider
// sends one, must be about the same subject.
func (p *OIDCProvider) Refresh(ctx context.Context, refreshToken string) (*Tokens, error) {
	d, err := p.discover(ctx)
	if err != nil {
		return nil, err
	}
	tok, err := d.oauth.TokenSource(p.ctx(ctx), &oauth2.Token{RefreshToken: refreshToken, Expiry: time.Unix(1, 0)}).Token()
	if err != nil {
		return nil, fmt.Errorf("refresh: %w", err)
	}
	t := &Tokens{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, AccessExpiry: tok.Expiry, AccessLifetime: lifetime(tok)}
	if raw, _ := tok.Extra("id_token").(string); raw != "" {
		idt, err := d.idVerifier.Verify(p.ctx(ctx), raw)
		if err != nil {
			return nil, fmt.Errorf("refreshed id token: %w", err)
		}
		claims, err := p.claims(ctx, d, idt, tok)
		if err != nil {
			return nil, err
		}
		t.IDToken, t.Identity = raw, identityFromClaims(claims)
	}
	return t, nil
}

// lifetime is the access token's lifetime as the token response gave it
// (expires_in, RFC 6749 §5.1), or 0.
func lifetime(tok *oauth2.Token) time.Duration {
	if tok.ExpiresIn <= 0 {
		return 0
	}
	return time.Duration(tok.ExpiresIn) * time.Second
}

// VerifyAccessToken implements Provider.
func (p *OIDCProvider) VerifyAccessToken(ctx context.Context, token string) (*Identity, error) {
	if strings.Count(token, ".") != 2 || len(token) > 16<<10 {
		return nil, fmt.Errorf("%w: not a JWT", ErrInvalidToken)
	}
	key := sha256.Sum256([]byte(token))
	now := p.cfg.Now()
	p.cacheMu.Lock()
	e, ok := p.cache[key]
	p.cacheMu.Unlock()
	if ok && now.Before(e.expires) {
		return e.id, e.err
	}
	d, err := p.discover(ctx)
	if err != nil {
		return nil, err // not cached: the provider may come back
	}
	id, exp, err := p.verifyAccessToken(ctx, d, token)
	if err != nil && !errors.Is(err, ErrInvalidToken) {
		return nil, err // a failure to ask is not an answer
	}
	until := now.Add(p.cfg.TokenCache)
	if err == nil && exp.Before(until) {
		until = exp
	}
	p.cacheMu.Lock()
	if len(p.cache) >= maxIntrospectionCache {
		clear(p.cache)
	}
	p.cache[key] = introspected{id: id, err: err, expires: until}
	p.cacheMu.Unlock()
	return id, err
}

func (p *OIDCProvider) verifyAccessToken(ctx context.Context, d *discovered, token string) (*Identity, time.Time, error) {
	// RFC 9068 §4: a JWT access token says so in its header. Nothing else
	// the provider signs — ID tokens ("JWT"), the identity assertions the
	// proxy sends upstream — can then pass for one, whatever its claims.
	if typ := jwtType(token); !isAccessTokenType(typ) {
		return nil, time.Time{}, fmt.Errorf("%w: typ %q is not an access token's (at+jwt)", ErrInvalidToken, typ)
	}
	at, err := d.atVerifier.Verify(p.ctx(ctx), token)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	ok := false
	for _, a := range at.Audience {
		ok = ok || slices.Contains(p.cfg.Audiences, a)
	}
	if !ok {
		return nil, time.Time{}, fmt.Errorf("%w: audience %v is not accepted here", ErrInvalidToken, at.Audience)
	}
	claims := map[string]any{}
	if err := at.Claims(&claims); err != nil {
		return nil, time.Time{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	// Revocation: only the provider knows. Without an introspection
	// endpoint the proxy cannot tell a revoked token, so it fails closed.
	if d.introspection == "" {
		return nil, time.Time{}, errors.New("the provider publishes no introspection_endpoint: bearer tokens cannot be checked for revocation")
	}
	in, err := p.introspect(ctx, d.introspection, token)
	if err != nil {
		return nil, time.Time{}, err
	}
	if !in.Active {
		return nil, time.Time{}, fmt.Errorf("%w: not active (revoked or unknown to the provider)", ErrInvalidToken)
	}
	if in.Sub != "" && in.Sub != at.Subject {
		return nil, time.Time{}, fmt.Errorf("%w: introspection names another subject", ErrInvalidToken)
	}
	id := identityFromClaims(claims)
	// The provider session the token was issued in: Aero2's JWT access
	// tokens do not carry it (a resource server has no use for it), its
	// introspection answer does. With it the proxy refuses the token as
	// soon as the session ends (authenticate), as it does the browser's,
	// not when token_cache lapses and introspection says revoked.
	if id.SessionID, err = in.sessionOf(id.SessionID); err != nil {
		return nil, time.Time{}, err
	}
	// RFC 9068 §2.2: where no resource owner is involved (the client
	// credentials grant), sub is the client's own identifier.
	if cid, _ := claims["client_id"].(string); cid != "" && cid == at.Subject {
		id.Client = cid
	}
	return &id, at.Expiry, nil
}

// jwtType is the typ of a compact JWT's protected header, or "".
func jwtType(token string) string {
	head, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return ""
	}
	var h struct {
		Typ string `json:"typ"`
	}
	if json.Unmarshal(raw, &h) != nil {
		return ""
	}
	return h.Typ
}

// isAccessTokenType accepts "at+jwt" and "application/at+jwt" (RFC 9068
// §4), in any case: typ is a media type (RFC 7515 §4.1.9).
func isAccessTokenType(typ string) bool {
	typ = strings.ToLower(typ)
	return strings.TrimPrefix(typ, "application/") == "at+jwt"
}

// introspection is what the proxy reads of an introspection answer
// (RFC 7662 §2.2; sid as Aero2 answers it, the session of the grant).
type introspection struct {
	Active bool   `json:"active"`
	Sub    string `json:"sub"`
	// Sid is not a registered name: another provider may answer it as
	// something other than a string, which is then not a session ID
	// (session), rather than an answer that fails to decode.
	Sid any `json:"sid"`
}

// sessionOf is the session of a token whose claims say claimed (often
// none): the answer's, unless the two disagree, which refuses the token
// as the subjects' disagreement does.
func (in introspection) sessionOf(claimed string) (string, error) {
	sid, _ := in.Sid.(string)
	switch {
	case sid == "":
		return claimed, nil
	case claimed != "" && claimed != sid:
		return "", fmt.Errorf("%w: introspection names another session", ErrInvalidToken)
	}
	return sid, nil
}

// introspect asks the provider whether token is active (RFC 7662 §2).
func (p *OIDCProvider) introspect(ctx context.Context, endpoint, token string) (introspection, error) {
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return introspection{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// RFC 6749 §2.3.1: client_secret_basic form-encodes both parts.
	req.SetBasicAuth(url.QueryEscape(p.cfg.ClientID), url.QueryEscape(p.cfg.ClientSecret))
	res, err := p.cfg.HTTPClient.Do(req)
	if err != nil {
		return introspection{}, fmt.Errorf("introspection: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return introspection{}, fmt.Errorf("introspection: provider answered %s", res.Status)
	}
	var body introspection
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&body); err != nil {
		return introspection{}, fmt.Errorf("introspection: %w", err)
	}
	return body, nil
}

// LogoutURL implements Provider (OpenID Connect RP-Initiated Logout 1.0).
func (p *OIDCProvider) LogoutURL(ctx context.Context, idTokenHint, postLogoutRedirectURI string) (string, error) {
	d, err := p.discover(ctx)
	if err != nil {
		return "", err
	}
	if d.endSession == "" {
		return "", nil
	}
	u, err := url.Parse(d.endSession)
	if err != nil {
		return "", fmt.Errorf("end_session_endpoint: %w", err)
	}
	q := u.Query()
	q.Set("client_id", p.cfg.ClientID)
	if idTokenHint != "" {
		q.Set("id_token_hint", idTokenHint)
	}
	if postLogoutRedirectURI != "" {
		q.Set("post_logout_redirect_uri", postLogoutRedirectURI)
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}
