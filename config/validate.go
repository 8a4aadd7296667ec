package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5/pgconn"
)

// Defaults, in one place. docs/config.md repeats them for readers.
const (
	DefaultListen            = ":8080"
	DefaultShutdownTimeout   = 15 * time.Second
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultReadBodyTimeout   = 10 * time.Second
	DefaultProxyBodyIdle     = 60 * time.Second
	DefaultSessionIdle       = 12 * time.Hour
	DefaultSessionAbsolute   = 7 * 24 * time.Hour
	DefaultRedisKeyPrefix    = "aero2"
	DefaultRedisDialTimeout  = 5 * time.Second
	DefaultRedisIOTimeout    = 3 * time.Second
	// A Cluster command is tried up to 1+DefaultRedisMaxRedirects times
	// during a slot migration, pausing 8 ms, 16 ms ... 512 ms between
	// TRYAGAIN answers: about 5 s in all, longer than MIGRATE takes for
	// the keys of a slot, and shorter than a client's patience.
	DefaultRedisMaxRedirects    = 16
	DefaultRedisMinRetryBackoff = 8 * time.Millisecond
	DefaultRedisMaxRetryBackoff = 512 * time.Millisecond
	// PostgreSQL: a call fails (503) within QueryTimeout when the
	// database stops answering, rather than when TCP gives up.
	DefaultPostgresConnectTimeout = 5 * time.Second
	DefaultPostgresQueryTimeout   = 3 * time.Second
	DefaultPostgresSweepInterval  = time.Minute
	DefaultCookieName             = "aero2_session"
	// MinSecretLength is the shortest accepted key: 32 bytes carry 256 bits
	// only if they are random; shorter cannot.
	MinSecretLength = 32
)

// generateHint says how to make a secret, in every problem about a
// missing or weak one.
const generateHint = "generate one with `aero2 secret` or `openssl rand -base64 32`"

// DefaultTrustedProxies is loopback: only a proxy on the same machine may
// tell Aero2 who the client is.
var DefaultTrustedProxies = []string{"127.0.0.0/8", "::1/128"}

func (c *Config) applyDefaults() {
	s := &c.Server
	if s.Listen == "" {
		s.Listen = DefaultListen
	}
	if s.TrustedProxies == nil {
		s.TrustedProxies = slices.Clone(DefaultTrustedProxies)
	}
	setDuration(&s.ShutdownTimeout, DefaultShutdownTimeout)
	setDuration(&s.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	setDuration(&s.IdleTimeout, DefaultIdleTimeout)
	setDuration(&s.ReadBodyTimeout, DefaultReadBodyTimeout)
	setDuration(&s.ProxyBodyIdleTimeout, DefaultProxyBodyIdle)
	s.RateLimits.applyDefaults()
	s.PublicURL = strings.TrimSuffix(s.PublicURL, "/")
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "auto"
	}
	if c.Store.Type == "" {
		c.Store.Type = "memory"
	}
	r := &c.Store.Redis
	if r.KeyPrefix == "" {
		r.KeyPrefix = DefaultRedisKeyPrefix
	}
	setDuration(&r.DialTimeout, DefaultRedisDialTimeout)
	setDuration(&r.ReadTimeout, DefaultRedisIOTimeout)
	setDuration(&r.WriteTimeout, DefaultRedisIOTimeout)
	if r.KeyLayout == "" {
		r.KeyLayout = RedisLayoutAuto
	}
	if r.MaxRedirects == 0 {
		r.MaxRedirects = DefaultRedisMaxRedirects
	}
	setDuration(&r.MinRetryBackoff, DefaultRedisMinRetryBackoff)
	setDuration(&r.MaxRetryBackoff, DefaultRedisMaxRetryBackoff)
	pg := &c.Store.Postgres
	setDuration(&pg.ConnectTimeout, DefaultPostgresConnectTimeout)
	setDuration(&pg.QueryTimeout, DefaultPostgresQueryTimeout)
	setDuration(&pg.SweepInterval, DefaultPostgresSweepInterval)

	if len(c.Applications) == 0 {
		if c.Application.Name == "" {
			c.Application.Name = DefaultApplication
		}
		if c.Application.Issuer == "" {
			c.Application.Issuer = s.PublicURL
		}
		c.Application.applyDefaults()
		c.applySessionCache(&c.Application, "")
	}
	for i := range c.Applications {
		c.Applications[i].applyDefaults()
		c.applySessionCache(&c.Applications[i], fmt.Sprintf("applications[%d].", i))
	}
}

// applySessionCache defaults proxy.session_cache when the file does not
// set it: a 0 written there means no cache (every request reads the store),
// not the default.
func (c *Config) applySessionCache(a *Application, prefix string) {
	if !c.inFile(prefix + "proxy.session_cache") {
		setDuration(&a.Proxy.SessionCache, DefaultProxySessionCache)
	}
}

func (a *Application) applyDefaults() {
	a.Issuer = strings.TrimSuffix(a.Issuer, "/")
	if a.Session.CookieName == "" {
		a.Session.CookieName = DefaultCookieName
		if a.Name != DefaultApplication {
			a.Session.CookieName += "_" + strings.ReplaceAll(a.Name, "-", "_")
		}
	}
	if a.DisplayName == "" {
		a.DisplayName = a.Name
		if u, err := url.Parse(a.Issuer); a.Name == DefaultApplication && err == nil && u.Host != "" {
			a.DisplayName = u.Host
		}
	}
	setDuration(&a.Session.IdleTimeout, DefaultSessionIdle)
	setDuration(&a.Session.AbsoluteTimeout, DefaultSessionAbsolute)
	a.applyProxyDefaults()
	for i := range a.IdentityProviders {
		if a.IdentityProviders[i].Name == "" {
			a.IdentityProviders[i].Name = a.IdentityProviders[i].ID
		}
	}
	a.applyClientDefaults()
}

func setDuration(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

var (
	appNameRE = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$`)
	idpIDRE   = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$`)
	cookieRE  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
)

func (c *Config) validate(ps *problems) {
	s := c.Server
	if _, _, err := net.SplitHostPort(s.Listen); err != nil {
		ps.at("server.listen", "expected host:port (such as :8080 or 127.0.0.1:8080): %v", err)
	}
	if s.MetricsListen != "" {
		_, mport, err := net.SplitHostPort(s.MetricsListen)
		if err != nil {
			ps.at("server.metrics_listen", "expected host:port (such as 127.0.0.1:9090): %v", err)
		} else if _, port, err := net.SplitHostPort(s.Listen); err == nil && port == mport && port != "0" {
			// Metrics and pprof say how the server is doing and what it
			// runs: never for the clients on the public port.
			ps.at("server.metrics_listen", "must not be the public port (server.listen is %s)", s.Listen)
		}
	}
	for i, p := range s.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err := netip.ParseAddr(p); err != nil {
				ps.at(indexPath("server.trusted_proxies", i), "expected an IP address or CIDR, got %q", p)
			}
		}
	}
	if (s.TLS.CertFile == "") != (s.TLS.KeyFile == "") {
		ps.at("server.tls", "cert_file and key_file go together")
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"read_header_timeout", s.ReadHeaderTimeout}, {"idle_timeout", s.IdleTimeout}, {"read_body_timeout", s.ReadBodyTimeout}, {"proxy_body_idle_timeout", s.ProxyBodyIdleTimeout}} {
		if d.v < 0 {
			ps.at("server."+d.key, "must not be negative")
		}
	}
	s.RateLimits.validate(ps, "server.rate_limits.")
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		ps.at("log.level", "expected debug, info, warn or error, got %q", c.Log.Level)
	}
	if !slices.Contains([]string{"auto", "text", "json"}, c.Log.Format) {
		ps.at("log.format", "expected auto, text or json, got %q", c.Log.Format)
	}
	c.validateStore(ps)
	c.validateSecrets(ps)
	routes := map[string]string{}

	if len(c.Applications) > 0 {
		if !reflect.ValueOf(c.Application).IsZero() {
			ps.at("applications", "top-level application keys (issuer, identity_providers, clients, routes, …) cannot be combined with `applications`: move them into an application")
		}
		names, issuers := map[string]bool{}, map[string]bool{}
		for i := range c.Applications {
			a := &c.Applications[i]
			path := indexPath("applications", i)
			if a.Name == "" {
				ps.at(path+".name", "required")
			} else if names[a.Name] {
				ps.at(path+".name", "application %q is defined twice", a.Name)
			}
			names[a.Name] = true
			if a.Issuer == "" {
				ps.at(path+".issuer", "required")
			} else if issuers[a.Issuer] {
				ps.at(path+".issuer", "issuer %q is used by two applications", a.Issuer)
			}
			issuers[a.Issuer] = true
			c.validateApp(ps, a, path+".")
			c.validateRoutes(ps, a, path+".", routes)
		}
	} else {
		if s.PublicURL == "" {
			ps.at("server.public_url", "required: the URL browsers use to reach Aero2, such as https://auth.example.com")
		}
		c.validateApp(ps, &c.Application, "")
		c.validateRoutes(ps, &c.Application, "", routes)
	}
	c.validateOwnership(ps)
	c.validateFiles(ps)
}

func (c *Config) validateStore(ps *problems) {
	switch c.Store.Type {
	case "memory":
	case "redis":
		c.validateRedis(ps)
	case "postgres":
		c.validatePostgres(ps)
	case "combined":
		// PostgreSQL keeps the data of record, Redis the short-lived
		// state (sessions, tokens, login state, rate limits).
		c.validatePostgres(ps)
		c.validateRedis(ps)
	default:
		ps.at("store.type", "expected memory, redis, postgres or combined, got %q", c.Store.Type)
	}
}

func (c *Config) validateRedis(ps *problems) {
	r := c.Store.Redis
	if len(r.Addrs) == 0 {
		ps.at("store.redis.addrs", "required for store type %s: one host:port, several for a Cluster, or the sentinels with master_name", c.Store.Type)
	}
	for i, a := range r.Addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			ps.at(indexPath("store.redis.addrs", i), "expected host:port, got %q", a)
		}
	}
	if r.DB != 0 && len(r.Addrs) > 1 && r.MasterName == "" {
		ps.at("store.redis.db", "Redis Cluster has only database 0")
	}
	if r.PoolSize < 0 {
		ps.at("store.redis.pool_size", "must not be negative")
	}
	if r.KeyLayout != RedisLayoutAuto && r.KeyLayout != RedisLayoutSpread && r.KeyLayout != RedisLayoutApplication {
		ps.at("store.redis.key_layout", "must be %q, %q or %q, got %q", RedisLayoutAuto, RedisLayoutSpread, RedisLayoutApplication, r.KeyLayout)
	}
	if r.MaxRedirects < 0 {
		ps.at("store.redis.max_redirects", "must not be negative")
	}
	if r.MinRetryBackoff < 0 || r.MaxRetryBackoff < r.MinRetryBackoff {
		ps.at("store.redis.max_retry_backoff", "must be at least min_retry_backoff, and neither negative")
	}
	if strings.ContainsAny(r.KeyPrefix, "{} ") {
		ps.at("store.redis.key_prefix", "must not contain braces or spaces (Aero2 adds its own hash tags)")
	}
	if (r.TLS.CertFile == "") != (r.TLS.KeyFile == "") {
		ps.at("store.redis.tls", "cert_file and key_file go together")
	}
}

// validatePostgres checks store.postgres. No message repeats the DSN or
// any part of it: it holds the database password.
func (c *Config) validatePostgres(ps *problems) {
	pg := c.Store.Postgres
	switch {
	case pg.DSN == "":
		ps.at("store.postgres.dsn", "required for store type %s: a postgres:// URL or key=value pairs, from the environment: dsn: \"${AERO2_DATABASE_URL}\"", c.Store.Type)
	default:
		if _, err := pgconn.ParseConfig(pg.DSN); err != nil {
			ps.at("store.postgres.dsn", "not a PostgreSQL connection string (expected postgres://USER@HOST:5432/DATABASE or host=HOST dbname=DATABASE …)")
		}
	}
	if pg.MaxConns < 0 {
		ps.at("store.postgres.max_conns", "must not be negative")
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"connect_timeout", pg.ConnectTimeout}, {"query_timeout", pg.QueryTimeout}, {"sweep_interval", pg.SweepInterval}} {
		if d.v < 0 {
			ps.at("store.postgres."+d.key, "must not be negative")
		}
	}
}

func (c *Config) validateSecrets(ps *problems) {
	if len(c.Secrets.CookieKeys) == 0 {
		ps.at("secrets.cookie_keys", "required: at least one random key of %d bytes or more, from the environment: cookie_keys: [\"${AERO2_COOKIE_KEY}\"] (%s)", MinSecretLength, generateHint)
	}
	for i, k := range c.Secrets.CookieKeys {
		if len(k) < MinSecretLength {
			ps.at(indexPath("secrets.cookie_keys", i), "too short: %d bytes, need at least %d (%s)", len(k), MinSecretLength, generateHint)
		}
	}
	switch k := c.Secrets.StorageKey; {
	case k == "":
		ps.at("secrets.storage_key", "required: a random key of %d bytes or more, from the environment: storage_key: \"${AERO2_STORAGE_KEY}\" (%s)", MinSecretLength, generateHint)
	case len(k) < MinSecretLength:
		ps.at("secrets.storage_key", "too short: %d bytes, need at least %d (%s)", len(k), MinSecretLength, generateHint)
	}
}

func (c *Config) validateApp(ps *problems, a *Application, prefix string) {
	if a.Name != "" && !appNameRE.MatchString(a.Name) {
		ps.at(prefix+"name", "expected lower-case letters, digits and '-', got %q", a.Name)
	}
	if a.Issuer != "" {
		if err := c.checkBaseURL(a.Issuer); err != nil {
			ps.at(c.issuerKey(prefix), "%v", err)
		}
	}
	c.checkCookieName(ps, a, prefix, "session.cookie_name", a.Session.CookieName)
	if a.Session.IdleTimeout > a.Session.AbsoluteTimeout {
		ps.at(prefix+"session.idle_timeout", "longer than absolute_timeout (%s)", a.Session.AbsoluteTimeout)
	}
	if len(a.IdentityProviders) == 0 {
		ps.at(prefix+"identity_providers", "required: at least one identity provider")
	}
	if a.AutoRedirect && len(a.IdentityProviders) > 1 {
		ps.at(prefix+"auto_redirect", "needs exactly one identity provider, and the application has %d: the sign-in page is where users choose between them", len(a.IdentityProviders))
	}
	if len(a.DisplayName) > 100 || strings.IndexFunc(a.DisplayName, unicode.IsControl) >= 0 {
		ps.at(prefix+"display_name", "expected a name of at most 100 characters, without control characters")
	}
	ids := map[string]bool{}
	for i := range a.IdentityProviders {
		p := &a.IdentityProviders[i]
		path := indexPath(prefix+"identity_providers", i)
		p.Path = path
		switch {
		case p.ID == "":
			ps.at(path+".id", "required")
		case !idpIDRE.MatchString(p.ID):
			ps.at(path+".id", "expected lower-case letters, digits, '-' and '_', got %q", p.ID)
		case ids[p.ID]:
			ps.at(path+".id", "identity provider %q is defined twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "" {
			ps.at(path+".type", "required (dev, oidc, github, google, …)")
		}
	}
	for i, u := range a.RedirectAllowList {
		if err := checkOrigin(u); err != nil {
			ps.at(indexPath(prefix+"redirect_allow_list", i), "%v", err)
		}
	}
	c.validateClients(ps, a, prefix)
}

// checkCookieName checks a cookie name. One the file does not give is
// derived from the application's name: when that name is wrong it has
// its own problem, and when it is too long for the cookie, the problem is
// reported at the name, the key that is in the file.
func (c *Config) checkCookieName(ps *problems, a *Application, prefix, key, name string) {
	if cookieRE.MatchString(name) {
		return
	}
	if c.inFile(prefix + key) {
		ps.at(prefix+key, "expected letters, digits, '_' and '-' (at most 64), got %q", name)
	} else if appNameRE.MatchString(a.Name) {
		ps.at(prefix+"name", "too long for the cookie name derived from it (%s %q is over 64 characters): shorten the name or set %s", key, name, key)
	}
}

// inFile reports whether the key at path is written in the file (rather
// than filled in by a default).
func (c *Config) inFile(path string) bool {
	_, ok := c.positions[path]
	return ok
}

// checkBaseURL accepts an absolute https URL without query or fragment, or
// plain http on a loopback host when insecure_dev is set: cookies for any
// other http origin could not be Secure.
func (c *Config) checkBaseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("expected an absolute URL such as https://auth.example.com, got %q", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("must not have a query, fragment or user info: %q", raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !IsLoopbackHost(u.Hostname()) {
			return fmt.Errorf("plain http is accepted only for localhost (and only with insecure_dev: true): %q", raw)
		}
		if !c.InsecureDev {
			return fmt.Errorf("plain http needs insecure_dev: true (development only): %q", raw)
		}
	default:
		return fmt.Errorf("expected an https URL, got %q", raw)
	}
	return nil
}

// checkOrigin accepts scheme://host[:port] with nothing after it.
func checkOrigin(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("expected an origin such as https://app.example.com, got %q", raw)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("expected an origin (scheme://host[:port]) without path, query or user info, got %q", raw)
	}
	return nil
}

// IsLoopbackHost reports whether host names this machine: "localhost", a
// "*.localhost" name (RFC 6761 §6.3) or a loopback address.
func IsLoopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && ip.IsLoopback()
}
