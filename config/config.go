// Package config is Aero2's configuration schema: the YAML file as Go types,
// strict loading (unknown keys are errors), ${ENV} expansion, defaults and
// validation that reports every problem at once with its line:col.
//
// The package imports nothing of Aero2's own: every other package reads its
// settings from these types.
package config

import (
	"time"

	"gopkg.in/yaml.v3"
)

// DefaultApplication is the name of the application built from the top-level
// keys of a file that has no `applications` section.
const DefaultApplication = "default"

// Config is the whole file.
type Config struct {
	Server  Server  `yaml:"server"`
	Log     Log     `yaml:"log"`
	Store   Store   `yaml:"store"`
	Secrets Secrets `yaml:"secrets"`

	// InsecureDev allows what must never run in production: the `dev`
	// identity provider and plain-http public URLs on loopback. Aero2 logs
	// a warning at start-up when it is set.
	InsecureDev bool `yaml:"insecure_dev"`

	// The default application, for files without `applications`.
	Application `yaml:",inline"`

	// Applications are isolated from one another: each has its own issuer,
	// keys, clients, identity providers, users and sessions.
	Applications []Application `yaml:"applications"`

	// File is the path the configuration was read from ("" when parsed
	// from memory). Not part of the YAML.
	File string `yaml:"-"`

	// Notices are what validation found valid but worth saying, each at
	// its line (a route without upstream answers forward-auth only):
	// `aero2 check` prints them. Not part of the YAML.
	Notices Problems `yaml:"-"`

	positions map[string]Pos
}

// Server is the HTTP listener.
type Server struct {
	// Listen is the address to bind, host:port. Default ":8080".
	Listen string `yaml:"listen"`
	// PublicURL is the URL browsers and clients use to reach Aero2, and the
	// issuer of the default application.
	PublicURL string `yaml:"public_url"`
	// TrustedProxies are the CIDRs (or single addresses) whose
	// X-Forwarded-* headers are believed. Default: loopback only.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// ShutdownTimeout bounds how long in-flight requests may take to finish
	// after SIGINT/SIGTERM. Default 15s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// ReadHeaderTimeout bounds how long a client may take to send request
	// headers (slowloris). Default 10s.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// IdleTimeout closes idle keep-alive connections. Default 120s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// ReadBodyTimeout bounds how long a request to Aero2's own endpoints
	// (token, introspection, revocation, forms) may take to send its
	// body. Default 10s.
	ReadBodyTimeout time.Duration `yaml:"read_body_timeout"`
	// ProxyBodyIdleTimeout bounds how long a proxied request's body may
	// send nothing; it may stream for as long as it keeps sending.
	// Default 60s.
	ProxyBodyIdleTimeout time.Duration `yaml:"proxy_body_idle_timeout"`
	// RateLimits limit requests per client address and per account or
	// client.
	RateLimits RateLimits `yaml:"rate_limits"`
	// TLS serves HTTPS directly when both files are set.
	TLS TLSFiles `yaml:"tls"`
	// WatchConfig reloads the configuration when its file changes, as
	// SIGHUP does (docs/operations.md). Default false.
	WatchConfig bool `yaml:"watch_config"`
	// MetricsListen is the address (host:port) of a second, plain-HTTP
	// listener serving Prometheus metrics at /metrics and Go's profiler at
	// /debug/pprof/. Empty (the default) turns both off. It must not be
	// the public port: neither page is for clients.
	MetricsListen string `yaml:"metrics_listen"`
}

// TLSFiles names a certificate and its key.
type TLSFiles struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Log configures structured logging.
type Log struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// Format is auto (text on a terminal, JSON otherwise), text or json.
	Format string `yaml:"format"`
	// Audit is where the audit log goes, as JSON lines: stdout, stderr,
	// or a file path (appended to). Empty (the default) turns it off.
	Audit string `yaml:"audit"`
}

// Store selects where state lives.
type Store struct {
	// Type is memory (default; one instance only), redis or postgres.
	Type     string   `yaml:"type"`
	Redis    Redis    `yaml:"redis"`
	Postgres Postgres `yaml:"postgres"`
}

// Postgres configures store/postgres.
type Postgres struct {
	// DSN is a libpq connection string or postgres:// URL; give its
	// password through the environment: dsn: "${AERO2_DATABASE_URL}".
	DSN string `yaml:"dsn"`
	// MaxConns bounds the connection pool (0: pgx's default, at least 4).
	MaxConns int `yaml:"max_conns"`
	// ConnectTimeout bounds one connection attempt.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// QueryTimeout bounds one store call (a statement or one batch).
	QueryTimeout time.Duration `yaml:"query_timeout"`
	// SweepInterval is how often expired rows are deleted (they are
	// invisible from the moment they expire either way).
	SweepInterval time.Duration `yaml:"sweep_interval"`
	// MigrateOnStart lets serve apply pending schema migrations itself;
	// otherwise it refuses to start on an older schema (aero2 migrate).
	MigrateOnStart bool `yaml:"migrate_on_start"`
}

// Redis configures store/redis. One address is a single node; several
// addresses (or Cluster: true) are a Cluster; MasterName selects Sentinel
// (Addrs are then the sentinels).
type Redis struct {
	Addrs            []string      `yaml:"addrs"`
	Cluster          bool          `yaml:"cluster"`
	MasterName       string        `yaml:"master_name"`
	Username         string        `yaml:"username"`
	Password         string        `yaml:"password"`
	SentinelUsername string        `yaml:"sentinel_username"`
	SentinelPassword string        `yaml:"sentinel_password"`
	DB               int           `yaml:"db"`
	KeyPrefix        string        `yaml:"key_prefix"`
	DialTimeout      time.Duration `yaml:"dial_timeout"`
	ReadTimeout      time.Duration `yaml:"read_timeout"`
	WriteTimeout     time.Duration `yaml:"write_timeout"`
	PoolSize         int           `yaml:"pool_size"`
	TLS              RedisTLS      `yaml:"tls"`
	// KeyLayout is how keys are named: "spread" tags each key by its
	// user, session or record, so an application's keys use every shard
	// of a Cluster; "application" is the layout of earlier versions, every
	// key of an application in one hash slot, for a deployment not yet
	// copied (docs/config.md); "auto" (the default) keeps the layout the
	// store is in, and spreads a new one.
	KeyLayout string `yaml:"key_layout"`
	// MaxRedirects is how many times a Cluster command follows MOVED or
	// ASK, or backs off after TRYAGAIN or CLUSTERDOWN, during a slot
	// migration or a failover, before the call fails (503).
	MaxRedirects int `yaml:"max_redirects"`
	// MinRetryBackoff and MaxRetryBackoff bound the pause before each of
	// those attempts (doubling from min, at most max).
	MinRetryBackoff time.Duration `yaml:"min_retry_backoff"`
	MaxRetryBackoff time.Duration `yaml:"max_retry_backoff"`
}

// The values of Redis.KeyLayout.
const (
	RedisLayoutAuto        = "auto"
	RedisLayoutSpread      = "spread"
	RedisLayoutApplication = "application"
)

// RedisTLS turns on TLS to Redis.
type RedisTLS struct {
	Enabled    bool   `yaml:"enabled"`
	CAFile     string `yaml:"ca_file"`
	ServerName string `yaml:"server_name"`
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
}

// Secrets are the server's own keys. Give them through the environment:
// `cookie_keys: ["${AERO2_COOKIE_KEY}"]`.
type Secrets struct {
	// CookieKeys authenticate what Aero2 signs for browsers (CSRF tokens,
	// state binding). The first signs; all verify, so a key can be rotated
	// by putting the new one first. Each at least 32 bytes.
	CookieKeys []string `yaml:"cookie_keys"`
	// StorageKey encrypts secrets at rest in the store (signing keys).
	// At least 32 bytes.
	StorageKey string `yaml:"storage_key"`
}

// Application is one isolated tenant: its issuer, sessions, identity
// providers, OAuth clients and proxy routes.
type Application struct {
	// Name identifies the application in the store and in logs:
	// lower-case letters, digits and '-'. Required in `applications`.
	Name string `yaml:"name"`
	// DisplayName is the application's name on Aero2's pages (sign-in,
	// consent, sign-out, errors). Default: Name, or for the default
	// application the host of its issuer ("auth.example.com"), never the
	// internal "default".
	DisplayName string `yaml:"display_name"`
	// AutoRedirect skips the sign-in page's chooser: the browser goes
	// straight to the one identity provider (like oauth2-proxy's
	// --skip-provider-button). Only with exactly one identity provider;
	// after a sign-out the page is still shown, so that signing out does
	// not sign the user straight back in.
	AutoRedirect bool `yaml:"auto_redirect"`
	// Issuer is the application's base URL (host or path). Defaults to
	// server.public_url for the default application.
	Issuer string `yaml:"issuer"`
	// Session sets the browser session's cookie and lifetimes.
	Session Session `yaml:"session"`
	// IdentityProviders are the ways users sign in. At least one.
	IdentityProviders []IdentityProvider `yaml:"identity_providers"`
	// RedirectAllowList lists absolute URLs (scheme://host[:port]) that a
	// post-login redirect may go to besides same-origin relative paths.
	RedirectAllowList []string `yaml:"redirect_allow_list"`
	// Clients are the OAuth 2.0 / OIDC clients of this application's
	// provider.
	Clients []Client `yaml:"clients"`
	// Tokens sets default token lifetimes; clients may override them.
	Tokens TokenLifetimes `yaml:"tokens"`
	// SigningKeys configures the rotation of the provider's signing keys.
	SigningKeys SigningKeys `yaml:"signing_keys"`
	// Upstream is the sidecar shorthand: one route for "/" without a
	// host.
	Upstream string `yaml:"upstream"`
	// Hosts are further hosts ("app.example.com", optionally with
	// ":port", or "*.example.com") that the application's routes without
	// `host` serve, besides its issuer's host. A route without `host`
	// serves those hosts only, never whatever Host a client sends.
	Hosts []string `yaml:"hosts"`
	// Routes map hosts and paths to upstreams, each with a policy.
	Routes []Route `yaml:"routes"`
	// Proxy configures how the proxy signs browsers in.
	Proxy Proxy `yaml:"proxy"`
	// RequirePushedAuthorizationRequests makes every client of the
	// application use the PAR endpoint (RFC 9126 §5).
	RequirePushedAuthorizationRequests bool `yaml:"require_pushed_authorization_requests"`
	// DeviceAuthorization sets the device flow's codes (RFC 8628).
	DeviceAuthorization DeviceAuthorization `yaml:"device_authorization"`
	// RequireDPoPNonce makes DPoP proofs at the provider carry a nonce it
	// gave (RFC 9449 §8): proofs cannot be made in advance.
	RequireDPoPNonce bool `yaml:"require_dpop_nonce"`
}

// Session configures browser sessions.
type Session struct {
	// CookieName defaults to "aero2_session" (plus "_<app>" for other than
	// the default application). A __Host- or __Secure- prefix is added
	// when the cookie is Secure.
	CookieName string `yaml:"cookie_name"`
	// IdleTimeout ends a session not used for this long. Default 12h.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// AbsoluteTimeout ends a session this long after sign-in, used or not.
	// Default 168h (7 days).
	AbsoluteTimeout time.Duration `yaml:"absolute_timeout"`
}

// IdentityProvider is one upstream identity provider (a connector).
type IdentityProvider struct {
	// ID appears in URLs (/rp/callback/<id>) and in users' linked
	// identities: lower-case letters, digits, '-' and '_'.
	ID string `yaml:"id"`
	// Type selects the connector: dev, oidc, github, google, …
	Type string `yaml:"type"`
	// Name is shown on the login page. Defaults to ID.
	Name string `yaml:"name"`
	// LinkByEmail lets an account at this provider join an existing user
	// whose email is the same. Both emails must be verified, and the
	// existing user's must have been vouched for by a provider that also
	// has LinkByEmail: a provider that hands out unverified or
	// self-asserted emails must never have it, or anyone could take over
	// an account by claiming its address. Default false.
	LinkByEmail bool `yaml:"link_by_email"`
	// PrefixGroups names this provider's groups "<id>:<group>" in users'
	// groups (and so in policies and the groups claim): for a provider
	// where users make their own groups, whose "admins" must never be
	// taken for another provider's. Default false.
	PrefixGroups bool `yaml:"prefix_groups"`
	// Config is the connector's own settings, decoded strictly by the
	// connector type (see Decode).
	Config yaml.Node `yaml:"config"`
	// Path is this provider's location in the file, for problems found
	// while opening its Config. Not part of the YAML.
	Path string `yaml:"-"`
}

// Client is an OAuth 2.0 client of an application's provider.
type Client struct {
	ID string `yaml:"id"`
	// Secret is the client secret (give it through the environment). It is
	// hashed at start-up and the plain text is not kept. Empty for public
	// clients.
	Secret string `yaml:"secret"`
	// TokenEndpointAuthMethod is client_secret_basic (default for clients
	// with a secret), client_secret_post or none (public clients).
	TokenEndpointAuthMethod string   `yaml:"token_endpoint_auth_method"`
	Name                    string   `yaml:"name"`
	RedirectURIs            []string `yaml:"redirect_uris"`
	PostLogoutRedirectURIs  []string `yaml:"post_logout_redirect_uris"`
	// Scopes the client may ask for. Default: openid profile email
	// offline_access.
	Scopes []string `yaml:"scopes"`
	// GrantTypes: authorization_code, refresh_token, client_credentials.
	// Default: authorization_code and refresh_token.
	GrantTypes []string `yaml:"grant_types"`
	// Audience the client may request for client-credentials tokens.
	Audience []string `yaml:"audience"`
	// FirstParty clients skip the consent page.
	FirstParty bool           `yaml:"first_party"`
	Tokens     TokenLifetimes `yaml:"tokens"`
	// Introspector clients may introspect every token of the application
	// (an API gateway, a resource server for many audiences). Others learn
	// that a token is active only if it was issued to them, or if it is an
	// access token whose audience names them (RFC 7662 §4). Confidential
	// clients only.
	Introspector bool `yaml:"introspector"`
	// ResourceNames are audience values that name the client at
	// introspection besides its ID. Not configurable: the server sets it
	// for the proxy client it derives, to proxy.audiences.
	ResourceNames []string `yaml:"-"`

	// JWKS (inline) or JWKSURI (fetched, https) are the public keys a
	// private_key_jwt client signs its assertions with; one of them, and
	// only for that method. TokenEndpointAuthSigningAlg, when set, is the
	// only alg its assertions may use (docs/config-clients.md).
	JWKS                        *JWKS  `yaml:"jwks"`
	JWKSURI                     string `yaml:"jwks_uri"`
	TokenEndpointAuthSigningAlg string `yaml:"token_endpoint_auth_signing_alg"`
	// RequirePushedAuthorizationRequests: the client's authorization
	// requests must come through the PAR endpoint (RFC 9126 §6).
	RequirePushedAuthorizationRequests bool `yaml:"require_pushed_authorization_requests"`
	// SubjectType is public (default) or pairwise (OIDC Core §8): a
	// pairwise client sees each user under a subject of its own sector,
	// the host of its redirect URIs or of SectorIdentifierURI.
	SubjectType         string `yaml:"subject_type"`
	SectorIdentifierURI string `yaml:"sector_identifier_uri"`
	// RequireDPoP: every token request of the client carries a DPoP
	// proof, so all its tokens are sender-constrained (RFC 9449 §5.2,
	// dpop_bound_access_tokens).
	RequireDPoP bool `yaml:"require_dpop"`
	// BackchannelLogoutURI is where the client is sent a logout token
	// when a browser session it got tokens in ends (OIDC Back-Channel
	// Logout 1.0 §2.2); https, or http on loopback with insecure_dev.
	// BackchannelLogoutSessionRequired: the token must carry sid (Aero2's
	// always do).
	BackchannelLogoutURI             string `yaml:"backchannel_logout_uri"`
	BackchannelLogoutSessionRequired bool   `yaml:"backchannel_logout_session_required"`
}

// TokenLifetimes of the provider's tokens. Zero means "inherit".
type TokenLifetimes struct {
	AccessToken       time.Duration `yaml:"access_token"`
	IDToken           time.Duration `yaml:"id_token"`
	RefreshToken      time.Duration `yaml:"refresh_token"`
	AuthorizationCode time.Duration `yaml:"authorization_code"`
}

// Route maps a host and path prefix to an upstream with a policy. The
// reference is docs/config-routes.md; validation is in routes.go.
type Route struct {
	// Host is an exact host ("app.example.com", optionally with ":port";
	// without one, the default port) or a wildcard of one or more labels
	// ("*.example.com"). Empty means the application's hosts: its
	// issuer's host and Application.Hosts.
	Host string `yaml:"host"`
	// Path is a path prefix, matched on whole segments and ignoring case.
	// Default "/".
	Path string `yaml:"path"`
	// Upstream is the http(s) URL requests are sent to. A route without
	// one only answers forward-auth (another proxy sends the traffic).
	Upstream string `yaml:"upstream"`
	// StripPrefix removes Path from the request path before proxying.
	StripPrefix bool `yaml:"strip_prefix"`
	// RewriteHost sends the upstream's host in the Host header instead of
	// the one the client asked for (X-Forwarded-Host carries that).
	RewriteHost bool `yaml:"rewrite_host"`
	// AllowEncodedSlashes lets %2F and %5C through in paths. Off by
	// default: an upstream that decodes them again could see another
	// path than the one the route was chosen for.
	AllowEncodedSlashes bool `yaml:"allow_encoded_slashes"`
	// TLS configures https upstreams.
	TLS UpstreamTLS `yaml:"tls"`
	// Timeouts of the upstream connection.
	Timeouts UpstreamTimeouts `yaml:"timeouts"`
	// Policy says who may pass.
	Policy Policy `yaml:"policy"`
	// Headers names the identity headers sent upstream.
	Headers IdentityHeaders `yaml:"headers"`
}

// UpstreamTLS configures the TLS client of an https upstream.
type UpstreamTLS struct {
	// CAFile is a PEM bundle of the CAs trusted for the upstream (instead
	// of the system's).
	CAFile string `yaml:"ca_file"`
	// ServerName is the name checked in the upstream's certificate (and
	// sent as SNI). Default: the upstream URL's host.
	ServerName string `yaml:"server_name"`
}

// UpstreamTimeouts bound the upstream connection. Zero means the default.
type UpstreamTimeouts struct {
	// Dial bounds connecting (TCP and TLS). Default 10s.
	Dial time.Duration `yaml:"dial"`
	// ResponseHeader bounds the wait for the upstream's response headers
	// once the request is sent. Default 60s. Streaming responses (SSE,
	// WebSockets) are not bounded once headers have arrived.
	ResponseHeader time.Duration `yaml:"response_header"`
	// Idle closes pooled keep-alive connections unused this long.
	// Default 90s.
	Idle time.Duration `yaml:"idle"`
}

// Policy decides who may use a route.
type Policy struct {
	// Public routes need no sign-in.
	Public bool `yaml:"public"`
	// AllowedEmails, AllowedDomains, AllowedGroups, AllowedClaims: a
	// signed-in user passes when any entry of any list matches (any-of
	// within and across lists). All absent means any signed-in user; a
	// list that is written must not be empty. Emails and domains match
	// only a verified email.
	AllowedEmails  []string `yaml:"allowed_emails"`
	AllowedDomains []string `yaml:"allowed_domains"`
	AllowedGroups  []string `yaml:"allowed_groups"`
	// AllowedClaims maps a claim name to accepted values; a claim that is
	// a list matches when any of its members is accepted.
	AllowedClaims map[string][]string `yaml:"allowed_claims"`
	// AllowClientCredentials admits bearer tokens that a client obtained
	// for itself (client credentials grant: no user behind them, RFC 9068
	// §2.2 — sub is the client_id), still subject to the allow-lists.
	// Default false: routes are for people.
	AllowClientCredentials bool `yaml:"allow_client_credentials"`
}

// IdentityHeaders are the header names a route sends the validated
// identity in. Each list replaces its default; an empty list (`[]`)
// sends nothing for that field.
type IdentityHeaders struct {
	// User defaults to [X-Forwarded-User, X-Auth-Request-User] (the
	// subject).
	User []string `yaml:"user"`
	// Email defaults to [X-Forwarded-Email, X-Auth-Request-Email].
	Email []string `yaml:"email"`
	// PreferredUsername defaults to [X-Forwarded-Preferred-Username,
	// X-Auth-Request-Preferred-Username].
	PreferredUsername []string `yaml:"preferred_username"`
	// Groups defaults to [X-Forwarded-Groups, X-Auth-Request-Groups],
	// comma-separated.
	Groups []string `yaml:"groups"`
	// AccessToken names headers for the user's access token. Default none.
	AccessToken []string `yaml:"access_token"`
	// Assertion names the header for a signed JWT about the user
	// (audience: the route), e.g. X-Aero2-Assertion. Default none.
	Assertion string `yaml:"assertion"`
}

// Proxy is how the identity-aware proxy signs browsers in: as an OIDC
// client (authorization code with PKCE) of a provider, by default the
// application's own.
type Proxy struct {
	// Provider is the issuer URL the proxy signs in at. Default: the
	// application's issuer.
	Provider string `yaml:"provider"`
	// ClientID at the provider. Default "aero2-proxy".
	ClientID string `yaml:"client_id"`
	// ClientSecret at the provider. Default: derived from
	// secrets.cookie_keys, for the application's own provider.
	ClientSecret string `yaml:"client_secret"`
	// Scopes the proxy's client may be granted, and asks for as written
	// when set. Default DefaultProxyScopes (openid profile email groups
	// offline_access), of which the proxy asks for offline_access only
	// where a refresh token serves something (ProxyRequestScopes).
	Scopes []string `yaml:"scopes"`
	// ScopesDefault: Scopes were not in the file, and are the default.
	ScopesDefault bool `yaml:"-"`
	// Audiences accepted in bearer access tokens. Default: [client_id].
	Audiences []string `yaml:"audiences"`
	// CookieName is the proxy session cookie's base name. Default
	// "aero2_proxy" (plus "_<app>" for other than the default
	// application); "__Host-" is added when the cookie is Secure.
	CookieName string `yaml:"cookie_name"`
	// SessionCache is how long a validated session is trusted before the
	// store (and the provider session behind it) is asked again. It is
	// how long a sign-out elsewhere may take to stop admitting. Default
	// 2s (when absent; 0 is no cache); at most 30s.
	SessionCache time.Duration `yaml:"session_cache"`
	// SessionCacheInvalidated is how long a validated session is trusted
	// while this replica hears the store's broadcasts of ended sessions
	// (Redis pub/sub; the memory store's own process), which drop it at
	// once. Without them (lost for 2s, or a store that cannot broadcast)
	// SessionCache applies. 0 (default): off; at most 1h.
	SessionCacheInvalidated time.Duration `yaml:"session_cache_invalidated"`
	// TokenCache is how long an introspected bearer token's answer is
	// kept (revocation takes this long to be seen). Default 10s; at most
	// 60s.
	TokenCache time.Duration `yaml:"token_cache"`
}

// Apps returns the configured applications: the `applications` list, or
// the default application built from the top-level keys.
func (c *Config) Apps() []Application {
	if len(c.Applications) > 0 {
		return c.Applications
	}
	return []Application{c.Application}
}
