// Package server is Aero2's wiring: it builds every part from a
// config.Config and routes requests to them. cmd/aero2 parses flags and
// calls it; end-to-end tests build the same server in-process.
package server

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/aero2/aero2/audit"
	"github.com/aero2/aero2/authz"
	"github.com/aero2/aero2/authz/keys"
	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/federation"
	"github.com/aero2/aero2/federation/dev"
	"github.com/aero2/aero2/federation/github"
	"github.com/aero2/aero2/federation/oidc"
	"github.com/aero2/aero2/metrics"
	"github.com/aero2/aero2/proxy"
	"github.com/aero2/aero2/ratelimit"
	"github.com/aero2/aero2/session"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/combined"
	"github.com/aero2/aero2/store/memory"
	"github.com/aero2/aero2/store/postgres"
	"github.com/aero2/aero2/store/redis"
	"github.com/aero2/aero2/tracing"
	"github.com/aero2/aero2/web"
)

// Connectors is the registry of identity provider types. Test doubles do
// not belong here: tests point real connector types at fakes.
func Connectors() federation.Registry {
	return federation.Registry{
		"dev":       func() federation.ConnectorConfig { return new(dev.Config) },
		"oidc":      func() federation.ConnectorConfig { return new(oidc.Config) },
		"google":    func() federation.ConnectorConfig { return new(oidc.GoogleConfig) },
		"gitlab":    func() federation.ConnectorConfig { return new(oidc.GitLabConfig) },
		"microsoft": func() federation.ConnectorConfig { return new(oidc.MicrosoftConfig) },
		"github":    func() federation.ConnectorConfig { return new(github.Config) },
	}
}

// Options adjust a Server beyond its config.
type Options struct {
	Logger *slog.Logger
	// Store replaces the store the config names (tests).
	Store store.Store
	// Connectors replaces Connectors().
	Connectors federation.Registry
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// AssertionSigner returns the signer of an application's identity
	// assertions (the provider's key); nil, or a nil signer, means routes
	// of that application cannot send assertions.
	AssertionSigner func(app string) proxy.AssertionSigner
	// ProviderSessions returns what checks the liveness of an
	// application's provider sessions for its proxy; nil means the
	// application's own session manager when the proxy signs in at the
	// application's own provider, and no check otherwise.
	ProviderSessions func(app string) proxy.ProviderSessions
	// Metrics, when set, are filled by the server (Run sets them when
	// server.metrics_listen is); nil records none.
	Metrics *metrics.Metrics
	// Audit receives the audit events (Run sets it from log.audit); nil
	// records none.
	Audit audit.Logger
	// TracerProvider, when set, makes a span of every request, store
	// call, upstream call, identity provider call and signature, and
	// sends traceparent to upstreams and identity providers (Run sets it
	// from the OTEL_* environment); nil traces nothing.
	TracerProvider trace.TracerProvider
}

// Server is a running Aero2: the store and one handler per application.
type Server struct {
	cfg     *config.Config
	store   store.Store
	log     *slog.Logger
	apps    []*application
	handler http.Handler
	trusted *trustedProxies
	limits  *ratelimit.Limiter // nil with server.rate_limits.disabled
	proxy   *proxy.Handler     // nil without routes
	// metrics are nil when off; audit is the audit log and the metrics
	// that count its events together (nil when both are off).
	metrics *metrics.Metrics
	audit   audit.Logger
	ids     *requestIDs
	tracer  trace.Tracer // nil: traces off
	// stop ends background work (scheduled key rotation).
	stop context.CancelFunc
}

// New builds the server. Configuration problems come back as
// config.Problems (every one of them), an unreachable store as an error
// naming its address.
func New(ctx context.Context, cfg *config.Config, opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Connectors == nil {
		opts.Connectors = Connectors()
	}
	if err := web.Check(); err != nil {
		return nil, err
	}
	st := opts.Store
	if st == nil {
		var err error
		if st, err = OpenStore(ctx, cfg); err != nil {
			return nil, err
		}
	}
	s, err := build(ctx, cfg, st, opts)
	if err == nil {
		err = s.start(ctx)
	}
	if err != nil {
		if opts.Store == nil {
			st.Close()
		}
		return nil, err
	}
	return s, nil
}

// start loads (on first start: generates) every application's signing
// keys and starts their scheduled rotation. Check does not call it: it
// must not write keys into a store.
func (s *Server) start(ctx context.Context) error {
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.stop = cancel
	for _, a := range s.apps {
		if err := a.keys.Load(ctx); err != nil {
			cancel()
			return fmt.Errorf("application %s: signing keys: %w", a.name, err)
		}
		a.keys.Schedule(bg, a.keyRotation)
		a.provider.RunBackchannel(bg)
	}
	if s.proxy != nil {
		s.proxy.Run(bg) // broadcasts of ended sessions, for its cache
	}
	return nil
}

// Check builds everything a server would (connectors included) against a
// throwaway memory store, without listening or touching the network: the
// `aero2 check` command.
func Check(ctx context.Context, cfg *config.Config, connectors federation.Registry) error {
	if connectors == nil {
		connectors = Connectors()
	}
	st := memory.New()
	defer st.Close()
	_, err := build(ctx, cfg, st, Options{Logger: slog.New(slog.DiscardHandler), Connectors: connectors})
	return err
}

// OpenStore opens the store the config names. A PostgreSQL schema older
// than this build needs is refused (postgres.ErrSchemaOutdated, whose
// message says to run `aero2 migrate`), unless migrate_on_start is set.
func OpenStore(ctx context.Context, cfg *config.Config) (store.Store, error) {
	st, err := openStore(ctx, cfg)
	if err != nil {
		return nil, &StoreError{err}
	}
	return st, nil
}

// StoreError is OpenStore's failure: the configured store could not be
// reached, refused the connection, or (PostgreSQL) has an older schema.
// Its message is the store's own.
type StoreError struct{ Err error }

func (e *StoreError) Error() string { return e.Err.Error() }
func (e *StoreError) Unwrap() error { return e.Err }

func openStore(ctx context.Context, cfg *config.Config) (store.Store, error) {
	switch cfg.Store.Type {
	case "redis":
		return redis.Open(ctx, cfg.Store.Redis)
	case "postgres":
		return postgres.Open(ctx, cfg.Store.Postgres)
	case "combined":
		pg, err := postgres.Open(ctx, cfg.Store.Postgres)
		if err != nil {
			return nil, err
		}
		rd, err := redis.Open(ctx, cfg.Store.Redis)
		if err != nil {
			pg.Close()
			return nil, err
		}
		return combined.New(pg, rd), nil
	default:
		return memory.New(), nil
	}
}

func build(ctx context.Context, cfg *config.Config, st store.Store, opts Options) (*Server, error) {
	s := &Server{cfg: cfg, store: st, log: opts.Logger, metrics: opts.Metrics, ids: newRequestIDs(), tracer: tracing.Tracer(opts.TracerProvider)}
	if s.tracer != nil {
		// Lines logged with a request's context carry its trace ID.
		s.log = slog.New(tracing.LogHandler(s.log.Handler()))
		opts.Logger = s.log
	}
	var counted audit.Logger
	if ms, ok := st.(*measuredStore); ok {
		// A reload builds on the running server's store: measure it once.
		st = ms.next
		s.store = st
	}
	if s.metrics != nil {
		counted = s.metrics
	}
	if s.metrics != nil || s.tracer != nil {
		// Every part's store calls go through one measured store.
		s.store = &measuredStore{next: st, m: s.metrics, tr: s.tracer}
	}
	s.audit = audit.Tee(opts.Audit, counted)
	s.limits = ratelimit.New(s.store, cfg.Server.RateLimits, opts.Logger.With("part", "ratelimit"))
	s.limits.ReportTo(s.audit)
	var err error
	if s.trusted, err = newTrustedProxies(cfg.Server.TrustedProxies); err != nil {
		return nil, err
	}
	var problems config.Problems
	for _, a := range cfg.Apps() {
		app, ps := s.buildApp(ctx, a, opts)
		problems = append(problems, ps...)
		if app != nil {
			s.apps = append(s.apps, app)
		}
	}
	if len(problems) > 0 {
		return nil, problems
	}
	if err := s.buildProxy(opts); err != nil {
		return nil, err
	}
	// Longest base path first, so /apps/blog wins over / on one host.
	sort.SliceStable(s.apps, func(i, j int) bool { return len(s.apps[i].basePath) > len(s.apps[j].basePath) })
	if cfg.InsecureDev {
		s.log.Warn("INSECURE: insecure_dev is set; this configuration is for development only")
	}
	s.handler = s.middleware(http.HandlerFunc(s.route))
	return s, nil
}

// application is one application's handler and where it is served.
type application struct {
	name     string
	host     string // lower-case host[:port] of the issuer
	basePath string // "" or "/path" of the issuer
	handler  http.Handler
	mux      *http.ServeMux
	// provider is the application's OpenID Connect provider, keys its
	// signing keys, rotated every keyRotation (0: only on command).
	// sessions are the application's browser sessions; provider its
	// OpenID Connect provider.
	sessions    *session.Manager
	provider    *authz.Provider
	keys        *keys.Manager
	keyRotation time.Duration
}

func (s *Server) buildApp(ctx context.Context, a config.Application, opts Options) (*application, config.Problems) {
	iss, err := url.Parse(a.Issuer)
	if err != nil {
		return nil, config.Problems{{File: s.cfg.File, Msg: fmt.Sprintf("application %s: issuer: %v", a.Name, err)}}
	}
	basePath := strings.TrimSuffix(iss.EscapedPath(), "/")
	cookiePath := basePath
	if cookiePath == "" {
		cookiePath = "/"
	}
	secure := iss.Scheme == "https"
	// Connectors log through a logger that names the application; the
	// provider, federation and the key manager add "app" themselves, so
	// they get s.log (a second "app" would repeat it on every line).
	connLog := s.log.With("app", a.Name)

	var problems config.Problems
	var providers []federation.Provider
	// Calls to identity providers (and to what clients publish) are
	// client spans that send traceparent, when traces are on.
	httpClient := &http.Client{Timeout: 10 * time.Second, Transport: tracing.Transport(s.tracer, "identity provider", nil)}
	// Each part of the application gets the store bound to it: nothing
	// it does can name another application's records.
	appStore := store.ForApp(s.store, a.Name)
	for _, idp := range a.IdentityProviders {
		newCfg, ok := opts.Connectors[idp.Type]
		if !ok {
			problems = append(problems, s.cfg.Problem(idp.Path+".type", "unknown identity provider type %q (known: %s)", idp.Type, strings.Join(registryTypes(opts.Connectors), ", ")))
			continue
		}
		cc := newCfg()
		if err := s.cfg.Decode(&idp.Config, idp.Path+".config", cc); err != nil {
			problems = append(problems, asProblems(s.cfg, idp.Path+".config", err)...)
			continue
		}
		conn, err := cc.Open(ctx, federation.Env{
			ID: idp.ID, DisplayName: a.DisplayName, Issuer: a.Issuer, CallbackURL: a.Issuer + "/rp/callback/" + idp.ID,
			InsecureDev: s.cfg.InsecureDev, Records: appStore, HTTPClient: httpClient,
			Logger: connLog.With("idp", idp.ID), Config: s.cfg, Path: idp.Path,
		})
		if err != nil {
			problems = append(problems, asProblems(s.cfg, idp.Path, err)...)
			continue
		}
		providers = append(providers, federation.Provider{ID: idp.ID, Name: idp.Name, Type: idp.Type, Connector: conn, LinkByEmail: idp.LinkByEmail, PrefixGroups: idp.PrefixGroups})
	}
	if len(problems) > 0 {
		return nil, problems
	}

	sessions := session.New(appStore, session.Config{
		CookieName: a.Session.CookieName, Secure: secure, Path: cookiePath,
		IdleTimeout: a.Session.IdleTimeout, AbsoluteTimeout: a.Session.AbsoluteTimeout,
		Keys: deriveKeys(s.cfg.Secrets.CookieKeys, "aero2 csrf "+a.Name), Now: opts.Now,
		Audit: s.audit,
	})
	consents := &consents{}
	fed := federation.New(federation.Options{
		DisplayName: a.DisplayName, AutoRedirect: a.AutoRedirect,
		Issuer: a.Issuer, Store: appStore, Sessions: sessions, Providers: providers, GroupsMaxAge: a.Session.AbsoluteTimeout,
		Redirects:   federation.NewRedirects(a.Issuer, a.RedirectAllowList),
		StateCookie: a.Session.CookieName + "_login", Secure: secure, CookiePath: cookiePath,
		Consents: consents,
		Limits:   s.limits, Audit: s.audit, Logger: s.log, Now: opts.Now, // federation adds "app" itself
	})
	km, err := authz.NewKeys(&a, s.store, appKey(s.cfg, "aero2 signing keys", a.Name), s.log, opts.Now) // keys adds "app" itself
	if err != nil {
		return nil, config.Problems{{File: s.cfg.File, Msg: fmt.Sprintf("application %s: %v", a.Name, err)}}
	}
	a.Clients = withProxyClient(s.cfg, a)
	prov, err := authz.New(authz.Options{
		DisplayName: a.DisplayName, Issuer: a.Issuer, Config: &a, Store: appStore, Sessions: sessions, Keys: km,
		LoginURL:        fed.LoginURL,
		TokenSecret:     appKey(s.cfg, "aero2 token hmac", a.Name),
		ClientSecretKey: appKey(s.cfg, "aero2 client secrets", a.Name),
		PairwiseKey:     appKey(s.cfg, "aero2 pairwise subjects", a.Name),
		HTTPClient:      httpClient,
		Limits:          s.limits,
		Audit:           s.audit,
		ObserveSigning:  s.signingObserver(a.Name),
		Logger:          s.log, Now: opts.Now, // authz adds "app" itself
	})
	if err != nil {
		return nil, config.Problems{{File: s.cfg.File, Msg: fmt.Sprintf("application %s: %v", a.Name, err)}}
	}
	// However a session ends (sign-out, logout, the account page, a new
	// sign-in, the proxy's sign-out), the manager ends it, and this hook
	// revokes what the provider issued in it.
	sessions.OnEnd(prov.RevokeSessions)
	// … and this one queues a logout token for each client (the proxy
	// among them) that registered a back-channel logout URI.
	sessions.OnEnd(prov.BackchannelLogout)
	consents.p = prov
	mux := http.NewServeMux()
	fed.Register(mux)
	prov.Register(mux)

	var h http.Handler = mux
	if basePath != "" {
		h = http.StripPrefix(basePath, mux)
	}
	return &application{
		name: a.Name, host: config.NormalizeHost(iss.Host), basePath: basePath, handler: h, mux: mux,
		sessions: sessions, provider: prov, keys: km, keyRotation: a.SigningKeys.RotationPeriod,
	}, nil
}

// consents shows the provider's remembered consents on the account page
// (federation does not import authz). p is set once the provider is
// built, before either serves a request.
type consents struct{ p *authz.Provider }

func (c *consents) Consents(ctx context.Context, userID string) ([]federation.Consent, error) {
	list, err := c.p.Consents(ctx, userID)
	out := make([]federation.Consent, 0, len(list))
	for _, x := range list {
		out = append(out, federation.Consent{ClientID: x.ClientID, Client: x.Client, Scopes: x.Scopes})
	}
	return out, err
}

func (c *consents) RemoveConsent(ctx context.Context, userID, clientID string) error {
	return c.p.RemoveConsent(ctx, userID, clientID)
}

// appKey derives a 32-byte key for one purpose of one application from
// secrets.storage_key, so that no two applications (and no two uses)
// share a key: a token signed for one application is worthless at another.
func appKey(cfg *config.Config, purpose, app string) []byte {
	return deriveKeys([]string{cfg.Secrets.StorageKey}, purpose+" "+app)[0]
}

func registryTypes(r federation.Registry) []string {
	var out []string
	for k := range r {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// asProblems keeps a connector's positioned problems and positions any
// other error at path.
func asProblems(cfg *config.Config, path string, err error) config.Problems {
	var ps config.Problems
	if errors.As(err, &ps) {
		return ps
	}
	return config.Problems{cfg.Problem(path, "%v", err)}
}

// deriveKeys turns each configured secret into a key for one purpose
// (HKDF-SHA256, RFC 5869), so that no two uses share a key.
func deriveKeys(secrets []string, purpose string) [][]byte {
	out := make([][]byte, 0, len(secrets))
	for _, s := range secrets {
		k, err := hkdf.Key(sha256.New, []byte(s), nil, purpose, 32)
		if err != nil {
			panic(err) // only for lengths HKDF cannot produce; 32 always works
		}
		out = append(out, k)
	}
	return out
}

// Handler is the server's root handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Config is the configuration the server was built from.
func (s *Server) Config() *config.Config { return s.cfg }

// Store is the server's store.
func (s *Server) Store() store.Store { return s.store }

// Close stops background work and releases the store.
func (s *Server) Close() error {
	s.stopBackground()
	return s.store.Close()
}

// stopBackground stops scheduled key rotation (start), leaving the store
// open: a reloaded Server replacing this one shares it.
func (s *Server) stopBackground() {
	if s.stop != nil {
		s.stop()
	}
}

// ownBody bounds the body of a request to Aero2's own endpoints.
func (s *Server) ownBody(w http.ResponseWriter, r *http.Request) *deadlineBody {
	return limitBody(w, r, s.cfg.Server.ReadBodyTimeout, 0)
}

// ready answers /readyz: 200 when the store answers, 503 when it does not.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := s.store.Ping(ctx); err != nil {
		s.log.Warn("not ready: store unreachable", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("store unavailable\n"))
		return
	}
	w.Write([]byte("ok\n"))
}
