package proxy

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aero2/aero2/audit"
	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/dpop"
	"github.com/aero2/aero2/ratelimit"
	"github.com/aero2/aero2/reqlog"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/web"
)

// App is one application's part of the proxy: its routes and settings,
// and the provider-facing pieces the server wires in.
type App struct {
	// Config is the application's configuration (routes, proxy settings,
	// session lifetimes).
	Config config.Application
	// Path prefixes the application's keys in problems: "" for the
	// default application, "applications[i]." otherwise.
	Path string
	// Provider signs browsers in and checks bearer tokens; nil means an
	// OIDCProvider built from Config.Proxy with ClientSecret.
	Provider Provider
	// ClientSecret is the proxy's secret at the provider when
	// Config.Proxy.ClientSecret is empty (the server derives one).
	ClientSecret string
	// Sessions checks the liveness of provider sessions (the ID token's
	// sid). The server sets it, to the application's session manager, when
	// the proxy signs in at the application's own provider. nil means no
	// check: another provider's sessions are not Aero2's to look up, and a
	// sign-out there reaches the proxy only through its own sign-out.
	Sessions ProviderSessions
	// Signer signs identity assertions; routes that ask for an assertion
	// need one.
	Signer AssertionSigner
}

// Options configure a Handler.
type Options struct {
	Config *config.Config
	Apps   []App
	// Store keeps proxy sessions and sign-in state.
	Store store.Store
	// TrustedProxy reports whether a peer may set X-Forwarded-* (the
	// server's trusted_proxies); nil trusts loopback only.
	TrustedProxy func(netip.Addr) bool
	// StripCookies are the base names (without __Host- or __Secure-) of
	// further cookies of Aero2's (the provider's session and sign-in
	// cookies): never sent upstream, and never set by an upstream.
	StripCookies []string
	// CSRFKey authenticates the sign-out form; replicas need the same key.
	// nil means 32 random bytes of this process.
	CSRFKey []byte
	// HTTPClient calls the provider; nil means a client with a 10s
	// timeout.
	HTTPClient *http.Client
	Logger     *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Limits are the rate limits (server.rate_limits); nil limits nothing.
	Limits *ratelimit.Limiter
	// Audit records policy denials; nil records nothing.
	Audit audit.Logger
	// WrapTransport, when set, wraps each route's connection pool to its
	// upstream (route is the route's config path): upstream metrics and
	// spans. nil uses the pools as they are.
	WrapTransport func(route string, t http.RoundTripper) http.RoundTripper
}

// Handler is the proxy for every application of a configuration. Build it
// with New; it is safe for concurrent use.
type Handler struct {
	table   *table
	apps    map[string]*appProxy
	order   []*appProxy
	strip   stripSet
	cookies ownCookies
	// family is what forward-auth's 200 always carries
	// (forwardAuthFamily).
	family  []string
	trusted func(netip.Addr) bool
	csrfKey []byte
	cop     *http.CrossOriginProtection
	limits  *ratelimit.Limiter
	audit   audit.Logger
	wrap    func(route string, t http.RoundTripper) http.RoundTripper
	log     *slog.Logger
	now     func() time.Time
	// inv and broadcasts: ended sessions broadcast by every replica
	// (invalidate.go).
	inv        *invalidations
	broadcasts store.Broadcasts
}

// appProxy is one application's sign-in and sessions.
type appProxy struct {
	name     string
	issuer   string
	provider Provider
	sessions *sessions
	// scheme is the application's issuer's: every origin the application
	// serves has it, whatever scheme a request arrived with or a peer
	// claims, and its cookies are Secure (and __Host-) exactly when it is
	// https.
	scheme string
	secure bool
	// issuerHost is where the callback is served; hostless are the hosts
	// its routes without `host` serve (the issuer's and config `hosts`).
	issuerHost  string
	hostless    []hostRule
	routes      []*Route
	cookie      string // base name
	loginCookie string // base name of the sign-in binding cookie
	// callbackURL and signedOutURL are on the application's own origin,
	// whatever host a route is on: the provider knows one exact redirect
	// URI per application, and wildcard-host routes can sign in too.
	callbackURL  string
	signedOutURL string
	signer       AssertionSigner
	// dpop checks DPoP proofs of bound tokens, jti in the store.
	dpop *dpop.Verifier
}

// Route is a compiled route.
type Route struct {
	app       *appProxy
	name      string // the config path, for logs
	pathField string // the config path of its path, for problems
	// hosts are the hosts the route serves: its own `host`, or (hostless)
	// its application's hosts for a route without one.
	hosts               []hostRule
	hostless            bool
	prefix              string   // "" for "/", else without trailing slash
	segments, folded    []string // the path's segments, and as case-insensitive readers fold them
	stripPrefix         bool
	rewriteHost         bool
	allowEncodedSlashes bool
	policy              *Policy
	headers             headerPlan
	upstream            *url.URL // nil: forward-auth only
	rp                  *httputil.ReverseProxy
	// cookieWarned is set once the upstream was caught setting one of
	// Aero2's cookies: that is logged once per route, not per response.
	cookieWarned atomic.Bool
}

// New compiles the routes of every application. Problems in the
// configuration (a bad allowed email, an unreadable CA file) come back as
// config.Problems.
func New(opts Options) (*Handler, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.TrustedProxy == nil {
		opts.TrustedProxy = func(a netip.Addr) bool { return a.Unmap().IsLoopback() }
	}
	if len(opts.CSRFKey) == 0 {
		// A key of this process alone, from crypto/rand: a clock-derived key
		// could be guessed from the start time, and forged sign-out forms
		// with it. Forms it signs verify on this replica only, so the server
		// always passes one derived from the configured cookie keys.
		opts.CSRFKey = make([]byte, 32)
		rand.Read(opts.CSRFKey) // never fails (crypto/rand, Go 1.24+)
	}
	h := &Handler{
		apps: map[string]*appProxy{}, cookies: ownCookies{}, trusted: opts.TrustedProxy,
		csrfKey: opts.CSRFKey, cop: http.NewCrossOriginProtection(), limits: opts.Limits, audit: opts.Audit, wrap: opts.WrapTransport, log: opts.Logger, now: opts.Now,
		inv: &invalidations{now: opts.Now},
	}
	if opts.Store != nil {
		h.broadcasts = opts.Store
	}
	var problems config.Problems
	var routes []*Route
	var plans []headerPlan
	for _, a := range opts.Apps {
		ac := a.Config
		p := ac.Proxy
		secret := p.ClientSecret
		if secret == "" {
			secret = a.ClientSecret
		}
		provider := a.Provider
		if provider == nil {
			provider = NewOIDCProvider(OIDCConfig{
				Issuer: p.Provider, ClientID: p.ClientID, ClientSecret: secret, Scopes: ac.ProxyRequestScopes(),
				Audiences: p.Audiences, HTTPClient: opts.HTTPClient, TokenCache: p.TokenCache, Now: opts.Now,
			})
		}
		alive := a.Sessions
		home, err := originOf(ac.Issuer)
		if err != nil {
			problems = append(problems, opts.Config.Problem(a.Path+"issuer", "%v", err))
			continue
		}
		iss, _ := url.Parse(home)
		hostless := []hostRule{newHostRule(iss.Scheme, iss.Host)}
		for _, hn := range ac.Hosts {
			hostless = append(hostless, newHostRule(iss.Scheme, hn))
		}
		st := store.ForApp(opts.Store, ac.Name) // nothing below names another application's records
		ap := &appProxy{
			name: ac.Name, issuer: p.Provider, provider: provider, signer: a.Signer,
			scheme: iss.Scheme, secure: iss.Scheme == "https", issuerHost: config.NormalizeHost(iss.Host), hostless: hostless,
			callbackURL: home + callbackPath, signedOutURL: home + signedOutPath,
			cookie: p.CookieName, loginCookie: p.CookieName + "_login",
			sessions: &sessions{
				app: ac.Name, records: st, sets: st, alive: alive, provider: provider,
				ttl: p.SessionCache, lifetime: ac.Session.AbsoluteTimeout, now: opts.Now, cache: map[string]*live{},
				longTTL: p.SessionCacheInvalidated, inv: h.inv, broadcasts: h.broadcasts,
			},
			dpop: newDPoPVerifier(st, opts.Now),
		}
		h.apps[ap.name] = ap
		h.order = append(h.order, ap)
		h.cookies.add(ap.cookie)
		h.cookies.add(ap.loginCookie)
		for i, rc := range ac.ProxyRoutes() {
			path := ac.RoutePath(a.Path, i)
			r, ps := h.compileRoute(opts.Config, ap, rc, path)
			problems = append(problems, ps...)
			if r != nil {
				routes = append(routes, r)
				ap.routes = append(ap.routes, r)
				plans = append(plans, r.headers)
				ap.sessions.keepTokens = ap.sessions.keepTokens || len(r.headers.accessToken) > 0
			}
		}
	}
	problems = append(problems, foldedDuplicates(opts.Config, routes)...)
	for _, c := range opts.StripCookies {
		h.cookies.add(c)
	}
	if len(problems) > 0 {
		return nil, problems
	}
	h.table = newTable(routes)
	h.strip = newStripSet(plans)
	h.family = forwardAuthFamily(plans)
	return h, nil
}

// foldedDuplicates reports routes whose paths a case-insensitive server
// takes for one ("/Straße" and "/strasse"; the configuration already
// refuses paths equal ignoring ASCII case): requests for one of them
// would always be read as both, and refused.
func foldedDuplicates(cfg *config.Config, routes []*Route) config.Problems {
	var ps config.Problems
	seen := map[string]*Route{}
	for _, r := range routes {
		if r.folded == nil {
			continue // its path has a problem of its own
		}
		host := "" // routes without `host`, as the configuration keys them
		if !r.hostless {
			hr := r.hosts[0]
			host = fmt.Sprintf("%t %s %s", hr.wild, hr.name, hr.port)
		}
		key := host + " " + strings.Join(r.folded, "/")
		if prev, dup := seen[key]; dup {
			ps = append(ps, cfg.Problem(r.pathField, "a case-insensitive server reads it as the path of %s (%q)", prev.name, "/"+strings.Join(prev.segments, "/")))
			continue
		}
		seen[key] = r
	}
	return ps
}

func (h *Handler) compileRoute(cfg *config.Config, ap *appProxy, rc config.Route, path string) (*Route, config.Problems) {
	field := func(name string) string {
		if strings.HasSuffix(path, "upstream") {
			return path
		}
		return path + "." + name
	}
	r := &Route{
		app: ap, name: path, stripPrefix: rc.StripPrefix, rewriteHost: rc.RewriteHost,
		allowEncodedSlashes: rc.AllowEncodedSlashes, headers: newHeaderPlan(rc.Headers),
		prefix: strings.TrimSuffix(rc.Path, "/"),
	}
	r.hosts, r.hostless = ap.hostless, rc.Host == ""
	if rc.Host != "" {
		r.hosts = []hostRule{newHostRule(ap.scheme, rc.Host)}
	}
	pol, ps := compilePolicy(cfg, rc.Policy, field("policy"))
	r.policy = pol
	var err error
	r.pathField = field("path")
	if r.segments, r.folded, err = compilePath(rc.Path); err != nil {
		ps = append(ps, cfg.Problem(r.pathField, "%q cannot be matched safely: %v", rc.Path, err))
	}
	if r.headers.assertion != "" && ap.signer == nil {
		ps = append(ps, cfg.Problem(field("headers.assertion"), "no assertion signer is configured for this application"))
	}
	if rc.Upstream != "" {
		u, err := url.Parse(rc.Upstream)
		if err != nil {
			return nil, append(ps, cfg.Problem(field("upstream"), "%v", err))
		}
		r.upstream = u
		t, err := newTransport(rc)
		if err != nil {
			return nil, append(ps, cfg.Problem(field("tls.ca_file"), "%v", err))
		}
		var rt http.RoundTripper = t
		if h.wrap != nil {
			rt = h.wrap(path, t)
		}
		r.rp = h.reverseProxy(rt)
	}
	return r, ps
}

// peerKey carries the connection's peer address, as it was before the
// server resolved X-Forwarded-For, to the forward-auth trust check.
type peerKey struct{}

// WithPeer records the connection's peer address in ctx. The server calls
// it before rewriting RemoteAddr to the resolved client address.
func WithPeer(ctx context.Context, peer netip.Addr) context.Context {
	return context.WithValue(ctx, peerKey{}, peer)
}

// peer is the address of whoever opened the connection.
func (h *Handler) peer(r *http.Request) netip.Addr {
	if a, ok := r.Context().Value(peerKey{}).(netip.Addr); ok {
		return a.Unmap()
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// scheme is the scheme the client used: TLS here, or what a trusted proxy
// in front says.
func (h *Handler) scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	if h.trusted(h.peer(r)) {
		switch r.Header.Get("X-Forwarded-Proto") {
		case "https":
			return "https"
		}
	}
	return "http"
}

// Choice is what the proxy makes of a path on a host it serves: the route
// every reading of the path maps to (or none), or the path's refusal.
// Choose makes it; ServeRoute answers it.
type Choice struct{ d pathDecision }

// Choose reads escapedPath (the request's path as the upstream will
// receive it) for a normalised host. The route it chooses serves the host
// (see ServesHost).
func (h *Handler) Choose(host, escapedPath string) Choice {
	return Choice{h.table.choose(host, escapedPath)}
}

// Route is the chosen route; nil when no route covers the path, or the
// path is refused or not in its clean form.
func (c Choice) Route() *Route {
	if c.d.verdict != pathOK {
		return nil
	}
	return c.d.route
}

// ServesHost reports whether any route serves the normalised host. A
// route without `host` serves its application's hosts only; no route
// serves a host the configuration does not name.
func (h *Handler) ServesHost(host string) bool {
	return h.table.serves(host)
}

// ServeRoute serves r, on a host the proxy serves, as c says: a bad path
// is refused, a path not in its clean form redirected to it, a path no
// route covers is 404, and a route's request is authorised and forwarded.
func (h *Handler) ServeRoute(w http.ResponseWriter, r *http.Request, c Choice) {
	reqlog.SetKind(r.Context(), "proxy", "") // refined below once a route is known
	d := c.d
	switch d.verdict {
	case pathBad:
		h.log.Info("path refused", "path", r.URL.EscapedPath(), "reason", d.reason)
		msg := "This address is not valid."
		if d.encodedSlash {
			msg = "Encoded slashes are not allowed in this address."
		}
		h.problem(w, r, errBadRequest.With(msg))
		return
	case pathRedirect:
		if d.encodedSlash || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			h.problem(w, r, errBadRequest)
			return
		}
		// The clean path is read and matched again from the start.
		loc := d.clean
		if r.URL.RawQuery != "" {
			loc += "?" + r.URL.RawQuery
		}
		w.Header().Set("Location", loc)
		w.WriteHeader(http.StatusPermanentRedirect)
		return
	}
	rt := d.route
	if rt == nil || rt.upstream == nil {
		h.problem(w, r, web.NotFound)
		return
	}
	reqlog.SetKind(r.Context(), "proxy", rt.name)
	h.answerProxy(w, r, rt, h.authenticate(r, rt))
}

// ServeHTTP serves the proxy on its own, without an application's pages
// beside it (the server decides itself who answers, in server.owner): the
// reserved /.aero2/ endpoints, the routes on the hosts they serve, and 421
// for every other host.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host := config.NormalizeHost(r.Host)
	switch {
	case IsForwardAuth(r.URL.Path):
		h.ServeReserved(w, r)
	case !h.ServesHost(host):
		Misdirected(w, r)
	case strings.HasPrefix(r.URL.Path, config.ReservedPrefix):
		h.ServeReserved(w, r)
	default:
		h.ServeRoute(w, r, h.Choose(host, r.URL.EscapedPath()))
	}
}
