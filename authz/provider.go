// Package authz is Aero2's OpenID Connect provider: one fosite provider per
// application, with its own issuer, signing keys, clients and tokens.
//
// Endpoints (relative to the application's issuer):
//
//	GET      /.well-known/openid-configuration   discovery (OIDC Discovery 1.0)
//	GET      /.well-known/jwks.json              signing keys (next, current, previous)
//	GET|POST /oauth2/authorize                   code flow, PKCE S256 required, iss in every response (RFC 9207)
//	POST     /oauth2/par                         pushed authorization requests (RFC 9126)
//	POST     /oauth2/device_authorization        device authorization (RFC 8628)
//	GET|POST /oauth2/device                      the device flow's user code page
//	POST     /oauth2/consent                     the consent page's form
//	POST     /oauth2/token                       authorization_code, refresh_token, client_credentials, device_code
//	GET|POST /oauth2/userinfo                    bearer access token
//	POST     /oauth2/introspect                  RFC 7662, client-authenticated
//	POST     /oauth2/revoke                      RFC 7009
//	GET|POST /oauth2/logout                      RP-initiated logout
//
// authz does not import the federation package: the sign-in page is reached
// through Options.LoginURL, which the server wires.
package authz

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"
	"github.com/ory/fosite/token/hmac"

	"github.com/aero2/aero2/audit"
	"github.com/aero2/aero2/authz/keys"
	"github.com/aero2/aero2/authz/oauthstore"
	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/dpop"
	"github.com/aero2/aero2/ratelimit"
	"github.com/aero2/aero2/reqlog"
	"github.com/aero2/aero2/session"
	"github.com/aero2/aero2/store"
)

// Options configure one application's provider.
type Options struct {
	// Issuer is the application's base URL (the iss of every token, and
	// the base of every endpoint).
	Issuer string
	// DisplayName is the application's name on pages (its display_name);
	// empty means the application's name.
	DisplayName string
	// Config is the application's configuration: clients, token
	// lifetimes, signing key rotation.
	Config *config.Application
	// Store is the application's store handle (store.ForApp); its Name
	// is the application's name.
	Store *store.App
	// Sessions reads the application's browser sessions, and ends them
	// (logout): the server registers RevokeSessions as its end hook.
	Sessions *session.Manager
	// Keys are the application's signing keys.
	Keys *keys.Manager
	// LoginURL returns the sign-in page that sends the browser back to
	// returnTo (an absolute URL under Issuer) once the user has signed in.
	LoginURL func(returnTo string) string
	// TokenSecret (32 bytes or more) signs opaque tokens (refresh tokens,
	// codes); ClientSecretKey keys the client secret hashes. Both must be
	// the application's own.
	TokenSecret     []byte
	ClientSecretKey []byte
	Logger          *slog.Logger
	// PairwiseKey (32 bytes or more) computes pairwise subjects (OIDC
	// Core §8.1); the application's own, and stable across restarts and
	// replicas. Required when a client has subject_type: pairwise.
	PairwiseKey []byte
	// HTTPClient fetches what clients publish (jwks_uri,
	// sector_identifier_uri); nil means one with a 5-second timeout.
	HTTPClient *http.Client
	// Limits are the rate limits (server.rate_limits); nil limits nothing.
	Limits *ratelimit.Limiter
	// Audit records the provider's security decisions (tokens issued,
	// refused, revoked; reuse detected; consent); nil records nothing.
	Audit audit.Logger
	// ObserveSigning, when set, is called as each JWT signature starts,
	// and the function it returns once it is done (metrics, traces); the
	// context it returns is the signature's.
	ObserveSigning func(ctx context.Context) (context.Context, func(error))
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Provider is one application's OpenID Connect provider.
type Provider struct {
	opts Options
	// st is the store bound to the application (opts.Store); app its
	// name.
	st      *store.App
	app     string
	issuer  string
	oauth   *fosite.Fosite
	fcfg    *fosite.Config
	clients *clientRegistry
	tokens  *oauthstore.Store
	signer  *keys.JWTSigner
	// strategy issues and names the tokens.
	strategy *tokenStrategy
	csrf     *http.CrossOriginProtection
	log      *slog.Logger
	// corsOrigins may call the back-channel endpoints from browsers.
	corsOrigins map[string]bool
	// assertionAudiences name this provider in a client assertion's aud.
	assertionAudiences []string
	// dpop checks DPoP proofs; dpopNonces makes the nonces it requires
	// when the application says so.
	dpop       *dpop.Verifier
	dpopNonces *dpop.Nonces
	// bcl delivers back-channel logouts.
	bcl *backchannel
}

// New composes the application's fosite provider.
func New(opts Options) (*Provider, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.DisplayName == "" {
		opts.DisplayName = opts.Store.Name()
	}
	if len(opts.TokenSecret) < 32 {
		return nil, errors.New("authz: token secret must be at least 32 bytes")
	}
	if len(opts.ClientSecretKey) < 32 {
		return nil, errors.New("authz: client secret key must be at least 32 bytes")
	}
	if opts.LoginURL == nil {
		return nil, errors.New("authz: LoginURL is required")
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: jwksTimeout}
	}
	app := opts.Config
	for i := range app.Clients {
		if app.Clients[i].SubjectType == config.SubjectPairwise && len(opts.PairwiseKey) < 32 {
			return nil, errors.New("authz: a pairwise client needs a pairwise key of at least 32 bytes")
		}
	}
	hasher := secretHasher{key: opts.ClientSecretKey}
	clients, err := newClientRegistry(app, hasher, opts)
	if err != nil {
		return nil, err
	}
	grantTTL, codeTTL := app.Tokens.RefreshToken, app.Tokens.AuthorizationCode
	for i := range app.Clients {
		lt := app.Lifetimes(&app.Clients[i])
		grantTTL = max(grantTTL, lt.RefreshToken, lt.AccessToken)
		codeTTL = max(codeTTL, lt.AuthorizationCode)
	}

	p := &Provider{
		opts:    opts,
		st:      opts.Store,
		app:     opts.Store.Name(),
		issuer:  opts.Issuer,
		clients: clients,
		signer:  &keys.JWTSigner{Keys: opts.Keys, Observe: opts.ObserveSigning},
		csrf:    http.NewCrossOriginProtection(),
		log:     opts.Logger.With("app", opts.Store.Name()),

		corsOrigins: corsOrigins(clients),
		// RFC 7523 §3: the issuer or the token endpoint; RFC 9126 §2: also
		// the PAR endpoint.
		assertionAudiences: []string{opts.Issuer, opts.Issuer + "/oauth2/token", opts.Issuer + parPath},
	}
	p.newDPoP()
	p.newBackchannel()
	p.tokens = oauthstore.New(oauthstore.Options{
		Backend: p.st, Clients: clients,
		GrantTTL: grantTTL, CodeTTL: codeTTL, Now: opts.Now,
	})
	p.fcfg = &fosite.Config{
		AccessTokenLifespan:   app.Tokens.AccessToken,
		RefreshTokenLifespan:  app.Tokens.RefreshToken,
		AuthorizeCodeLifespan: app.Tokens.AuthorizationCode,
		IDTokenLifespan:       app.Tokens.IDToken,
		IDTokenIssuer:         opts.Issuer,
		AccessTokenIssuer:     opts.Issuer,
		TokenURL:              opts.Issuer + "/oauth2/token",
		// Scopes and audiences match exactly: "read" does not grant
		// "read.all" as fosite's default wildcard strategy would.
		ScopeStrategy:            fosite.ExactScopeStrategy,
		AudienceMatchingStrategy: fosite.ExactAudienceMatchingStrategy,
		// PKCE with S256 for every client, confidential ones too
		// (RFC 9700 §2.1.1): plain and missing challenges are refused.
		EnforcePKCE:                    true,
		EnforcePKCEForPublicClients:    true,
		EnablePKCEPlainChallengeMethod: false,
		// Refresh tokens go to every client allowed the refresh_token
		// grant, offline_access or not (DESIGN: code flow → access, ID and
		// refresh token).
		RefreshTokenScopes:  []string{},
		AllowedPromptValues: []string{"none", "login", "consent", "select_account"},
		GlobalSecret:        opts.TokenSecret,
		ClientSecretsHasher: hasher,
		// Error responses carry the description, never fosite's debug
		// text (which can name internals).
		SendDebugMessagesToClients: false,
	}
	names, err := newNameCipher(opts.TokenSecret)
	if err != nil {
		return nil, err
	}
	codeNames, err := newCodeNameCipher(opts.TokenSecret)
	if err != nil {
		return nil, err
	}
	strategy := &tokenStrategy{
		opaque:    oauth2.NewHMACSHAStrategyUnPrefixed(&hmac.HMACStrategy{Config: p.fcfg}, p.fcfg),
		signer:    p.signer,
		issuer:    opts.Issuer,
		now:       opts.Now,
		names:     names,
		codeNames: codeNames,
	}
	p.strategy = strategy
	p.compose(strategy)
	p.oauth = fosite.NewOAuth2Provider(p.tokens, p.fcfg)
	p.fcfg.ClientAuthenticationStrategy = p.authenticateClientOnce
	return p, nil
}

// compose installs fosite's handlers in the order they must run. Order is
// behaviour: fosite runs every handler of a list for each request, in
// order.
func (p *Provider) compose(strategy *tokenStrategy) {
	idHelper := &openid.IDTokenHandleHelper{IDTokenStrategy: &openid.DefaultStrategy{Signer: p.signer, Config: p.fcfg}}
	// 1. The code flow. It issues the code the next two need.
	code := &oauth2.AuthorizeExplicitGrantHandler{
		AccessTokenStrategy: strategy, RefreshTokenStrategy: strategy, AuthorizeCodeStrategy: strategy,
		CoreStorage: p.tokens, TokenRevocationStorage: p.tokens, Config: p.fcfg,
	}
	// 2. PKCE: after the code handler, whose code it binds the challenge
	// to (fosite/handler/pkce: "must be loaded after").
	pk := &pkce.Handler{AuthorizeCodeStrategy: strategy, Storage: p.tokens, Config: p.fcfg}
	// 3. OpenID Connect on the code flow: stores the nonce and validates
	// prompt/max_age at authorize; issues the ID token after the access
	// token exists (its at_hash needs it).
	oidcCode := &openid.OpenIDConnectExplicitHandler{
		OpenIDConnectRequestStorage:   hashAlgStorage{p.tokens, p.signer},
		OpenIDConnectRequestValidator: openid.NewOpenIDConnectRequestValidator(p.signer, p.fcfg),
		IDTokenHandleHelper:           idHelper,
		Config:                        p.fcfg,
	}
	// 4. Refresh with rotation and reuse detection, then 5. a new ID token
	// for it (after, for at_hash).
	refresh := &oauth2.RefreshTokenGrantHandler{
		AccessTokenStrategy: strategy, RefreshTokenStrategy: strategy,
		TokenRevocationStorage: p.tokens, Config: p.fcfg,
	}
	oidcRefresh := &openid.OpenIDConnectRefreshHandler{IDTokenHandleHelper: idHelper, Config: p.fcfg}
	// 6. Client credentials, for service clients.
	cc := &oauth2.ClientCredentialsGrantHandler{
		HandleHelper: &oauth2.HandleHelper{AccessTokenStrategy: strategy, AccessTokenStorage: p.tokens, Config: p.fcfg},
		Config:       p.fcfg,
	}
	// 7. The device code grant (RFC 8628): issues what the code flow
	// does, with the same strategies and storage.
	device := &deviceGrant{
		p:        p,
		tokens:   &oauth2.HandleHelper{AccessTokenStrategy: strategy, AccessTokenStorage: p.tokens, Config: p.fcfg},
		refresh:  strategy,
		idTokens: idHelper,
	}
	// No implicit, hybrid or password handler: those grants do not exist
	// here (RFC 9700 §2.1.2, §2.4).
	p.fcfg.AuthorizeEndpointHandlers = fosite.AuthorizeEndpointHandlers{code, pk, oidcCode}
	// hashAlg after the refresh grant restores the session, before the
	// ID token handler hashes the access token into it (the code flow's
	// session is read again by oidcCode: hashAlgStorage).
	p.fcfg.TokenEndpointHandlers = fosite.TokenEndpointHandlers{
		quiet{code}, quiet{pk}, quiet{refresh}, hashAlg{p.signer}, quiet{oidcCode}, quiet{oidcRefresh}, quiet{cc}, quiet{device},
	}
	// 8. Introspection (and userinfo): the token must exist in the store
	// and verify. 9. Revocation of a grant's tokens.
	p.fcfg.TokenIntrospectionHandlers = fosite.TokenIntrospectionHandlers{
		&oauth2.CoreValidator{CoreStrategy: strategy, CoreStorage: p.tokens, Config: p.fcfg},
	}
	p.fcfg.RevocationHandlers = fosite.RevocationHandlers{
		&oauth2.TokenRevocationHandler{TokenRevocationStorage: p.tokens, AccessTokenStrategy: strategy, RefreshTokenStrategy: strategy},
	}
}

// quiet answers fosite's "not mine" for a token request a handler does not
// handle without running it. fosite's own handlers answer it with
// errorsx.WithStack, which walks the stack on every request for every
// handler: about 1% of a token request's CPU, for an error that is
// discarded.
type quiet struct{ fosite.TokenEndpointHandler }

func (q quiet) PopulateTokenEndpointResponse(ctx context.Context, r fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !q.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	return q.TokenEndpointHandler.PopulateTokenEndpointResponse(ctx, r, resp)
}

// hashAlg tells fosite's ID token handlers which hash at_hash takes: the
// current key's (SHA-512 for EdDSA, OIDC Core §3.1.3.6), which fosite
// reads from the session's ID token header (see keys.JWTSigner.HashHint).
type hashAlg struct{ signer *keys.JWTSigner }

// HandleTokenEndpointRequest handles nothing: a grant only hashAlg
// "handled" would pass for a supported one.
func (hashAlg) HandleTokenEndpointRequest(context.Context, fosite.AccessRequester) error {
	return fosite.ErrUnknownRequest
}

func (h hashAlg) PopulateTokenEndpointResponse(ctx context.Context, r fosite.AccessRequester, _ fosite.AccessResponder) error {
	if sess, ok := r.GetSession().(*oauthstore.Session); ok {
		sess.IDTokenHeaders().Add("alg", h.signer.HashHint(ctx))
	}
	return fosite.ErrUnknownRequest
}

// hashAlgStorage is the code flow's OpenID Connect session storage for
// oidcCode, which reads the session (over the request's) just before it
// hashes the access token: the hint goes in after the read.
type hashAlgStorage struct {
	*oauthstore.Store
	signer *keys.JWTSigner
}

func (h hashAlgStorage) GetOpenIDConnectSession(ctx context.Context, code string, req fosite.Requester) (fosite.Requester, error) {
	r, err := h.Store.GetOpenIDConnectSession(ctx, code, req)
	for _, q := range []fosite.Requester{r, req} {
		if q == nil {
			continue
		}
		if sess, ok := q.GetSession().(*oauthstore.Session); ok {
			sess.IDTokenHeaders().Add("alg", h.signer.HashHint(ctx))
		}
	}
	return r, err
}

func (hashAlg) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool { return false }

func (hashAlg) CanHandleTokenEndpointRequest(context.Context, fosite.AccessRequester) bool {
	return true
}

// Register adds the provider's routes to mux (paths relative to the
// issuer).
func (p *Provider) Register(mux *http.ServeMux) {
	// Each endpoint names its kind for the request metrics (reqlog).
	handle := func(pattern, kind string, h http.Handler) { mux.Handle(pattern, reqlog.Endpoint(kind, h)) }
	handle("GET /.well-known/openid-configuration", "discovery", http.HandlerFunc(p.discovery))
	handle("GET /.well-known/jwks.json", "jwks", http.HandlerFunc(p.jwks))
	authorize := p.limitAuthorize(http.HandlerFunc(p.authorize))
	handle("GET /oauth2/authorize", "authorize", authorize)
	handle("POST /oauth2/authorize", "authorize", authorize)
	handle("POST /oauth2/consent", "consent", p.csrf.Handler(http.HandlerFunc(p.consent)))
	// PAR is the first half of an authorization request: it spends from
	// the authorize limit, per address.
	handle(parPath, "par", p.api(http.MethodPost, p.limitClientAuth(ratelimit.Authorize, p.par)))
	handle(devicePath, "device_authorization", p.api(http.MethodPost, p.limitClientAuth(ratelimit.DeviceAuthorization, p.deviceAuthorization)))
	// The device page is where users type codes: limited like authorize.
	handle("GET "+deviceVerifyPath, "device", p.limitAuthorize(http.HandlerFunc(p.devicePage)))
	handle("POST "+deviceVerifyPath, "device", p.limitAuthorize(p.csrf.Handler(http.HandlerFunc(p.devicePage))))
	handle("/oauth2/token", "token", p.api(http.MethodPost, p.limitClientAuth(ratelimit.Token, p.token)))
	handle("/oauth2/userinfo", "userinfo", p.api("GET, POST", p.userinfo))
	handle("/oauth2/introspect", "introspect", p.api(http.MethodPost, p.limitClientAuth(ratelimit.Introspect, p.introspect)))
	handle("/oauth2/revoke", "revoke", p.api(http.MethodPost, p.limitClientAuth(ratelimit.Revoke, p.revoke)))
	// Not behind CrossOriginProtection: RPs may POST logout from their
	// own origin (OIDC RP-Initiated Logout §2). The confirmation form
	// carries a CSRF token instead.
	handle("GET /oauth2/logout", "logout", http.HandlerFunc(p.logout))
	handle("POST /oauth2/logout", "logout", http.HandlerFunc(p.logout))
}

// RevokeSessions revokes every token issued in the browser sessions
// sids. It is the session manager's end hook (session.Manager.OnEnd),
// which the server registers: however a session ends, its tokens end too.
func (p *Provider) RevokeSessions(ctx context.Context, sids ...string) error {
	for _, sid := range sids {
		if err := p.tokens.RevokeSession(ctx, sid); err != nil {
			return err
		}
	}
	return nil
}

// Issuer is the provider's issuer URL.
func (p *Provider) Issuer() string { return p.issuer }

func (p *Provider) url(path string) string { return p.issuer + path }

// KeyRetention is how long a retired signing key must stay published for
// app: the longest lifetime of an access or ID token it may have signed,
// plus leeway for clock skew. (Expired ID tokens are still accepted as
// logout hints, but only while their key is published.)
func KeyRetention(app *config.Application) time.Duration {
	d := max(app.Tokens.AccessToken, app.Tokens.IDToken)
	for i := range app.Clients {
		lt := app.Lifetimes(&app.Clients[i])
		d = max(d, lt.AccessToken, lt.IDToken)
	}
	return d + 5*time.Minute
}

// NewKeys returns the signing key manager for app. encryptionKey (32
// bytes) encrypts the keys at rest.
func NewKeys(app *config.Application, st store.Store, encryptionKey []byte, log *slog.Logger, now func() time.Time) (*keys.Manager, error) {
	return keys.NewManager(keys.Options{
		Store: store.ForApp(st, app.Name), EncryptionKey: encryptionKey,
		Algorithm: jose.SignatureAlgorithm(app.SigningKeys.Algorithm),
		Retention: KeyRetention(app), Logger: log, Now: now,
	})
}
