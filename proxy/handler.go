package proxy

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/ratelimit"
	"github.com/aero2/aero2/store"
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
	// StripCookies are further cookie names never sent upstream (the
	// provider's session and sign-in cookies).
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
}

// Handler is the proxy for every application of a configuration. Build it
// with New; it is safe for concurrent use.
type Handler struct {
	table       *table
	apps        map[string]*appProxy
	order       []*appProxy
	strip       stripSet
	cookies     []string
	trusted     func(netip.Addr) bool
	insecureDev bool
	csrfKey     []byte
	cop         *http.CrossOriginProtection
	limits      *ratelimit.Limiter
	log         *slog.Logger
	now         func() time.Time
}

// appProxy is one application's sign-in and sessions.
type appProxy struct {
	name        string
	issuer      string
	provider    Provider
	sessions    *sessions
	cookie      string // base name
	loginCookie string // base name of the sign-in binding cookie
	// callbackURL and signedOutURL are on the application's own origin,
	// whatever host a route is on: the provider knows one exact redirect
	// URI per application, and wildcard-host routes can sign in too.
	callbackURL  string
	signedOutURL string
	signer       AssertionSigner
}

// Route is a compiled route.
type Route struct {
	app                 *appProxy
	name                string // the config path, for logs
	pathField           string // the config path of its path, for problems
	host, port          string
	prefix              string   // "" for "/", else without trailing slash
	segments, folded    []string // the path's segments, and as case-insensitive readers fold them
	stripPrefix         bool
	rewriteHost         bool
	allowEncodedSlashes bool
	policy              *Policy
	headers             headerPlan
	upstream            *url.URL // nil: forward-auth only
	rp                  *httputil.ReverseProxy
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
		apps: map[string]*appProxy{}, trusted: opts.TrustedProxy, insecureDev: opts.Config.InsecureDev,
		csrfKey: opts.CSRFKey, cop: http.NewCrossOriginProtection(), limits: opts.Limits, log: opts.Logger, now: opts.Now,
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
				Issuer: p.Provider, ClientID: p.ClientID, ClientSecret: secret, Scopes: p.Scopes,
				Audiences: p.Audiences, HTTPClient: opts.HTTPClient, TokenCache: p.TokenCache, Now: opts.Now,
			})
		}
		alive := a.Sessions
		home, err := originOf(ac.Issuer)
		if err != nil {
			problems = append(problems, opts.Config.Problem(a.Path+"issuer", "%v", err))
			continue
		}
		ap := &appProxy{
			name: ac.Name, issuer: p.Provider, provider: provider, signer: a.Signer,
			callbackURL: home + callbackPath, signedOutURL: home + signedOutPath,
			cookie: p.CookieName, loginCookie: p.CookieName + "_login",
			sessions: &sessions{
				app: ac.Name, records: opts.Store, alive: alive, provider: provider,
				ttl: p.SessionCache, lifetime: ac.Session.AbsoluteTimeout, now: opts.Now, cache: map[string]*live{},
			},
		}
		h.apps[ap.name] = ap
		h.order = append(h.order, ap)
		for _, base := range []string{ap.cookie, ap.loginCookie} {
			h.cookies = append(h.cookies, base, "__Host-"+base)
		}
		for i, rc := range ac.ProxyRoutes() {
			path := ac.RoutePath(a.Path, i)
			r, ps := h.compileRoute(opts.Config, ap, rc, path)
			problems = append(problems, ps...)
			if r != nil {
				routes = append(routes, r)
				plans = append(plans, r.headers)
			}
		}
	}
	problems = append(problems, foldedDuplicates(opts.Config, routes)...)
	for _, c := range opts.StripCookies {
		h.cookies = append(h.cookies, c, "__Host-"+c, "__Secure-"+c)
	}
	if len(problems) > 0 {
		return nil, problems
	}
	h.table = newTable(routes)
	h.strip = newStripSet(plans)
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
		key := r.host + " " + r.port + " " + strings.Join(r.folded, "/")
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
	r.host = rc.Host
	if r.host != "" {
		if strings.HasPrefix(r.host, "*.") {
			if name, port, err := net.SplitHostPort(r.host); err == nil {
				r.host, r.port = name, port
			}
		} else {
			r.host = config.NormalizeHost(r.host)
		}
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
		r.rp = h.reverseProxy(t)
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

// secure says whether cookies are Secure: always, except plain http under
// insecure_dev.
func (h *Handler) secure(r *http.Request) bool {
	return h.scheme(r) == "https" || !h.insecureDev
}

// Serve serves r when it is the proxy's — a reserved /.aero2/ path, or a
// host and path that a route covers — and reports whether it did. When it
// reports false it has written nothing, and the server answers instead.
// The route is looked up once per request.
func (h *Handler) Serve(w http.ResponseWriter, r *http.Request) bool {
	if strings.HasPrefix(r.URL.Path, config.ReservedPrefix) {
		h.serveReserved(w, r)
		return true
	}
	host := config.NormalizeHost(r.Host)
	d := h.table.choose(host, r.URL.EscapedPath())
	if d.verdict == pathOK && d.route == nil && len(h.table.any) == 0 || d.verdict != pathOK && !h.table.serves(host) {
		return false
	}
	// With a route for every host, even a path no route covers is the
	// proxy's to refuse.
	switch d.verdict {
	case pathBad:
		h.log.Info("path refused", "path", r.URL.EscapedPath(), "reason", d.reason)
		msg := "This address is not valid."
		if d.encodedSlash {
			msg = "Encoded slashes are not allowed in this address."
		}
		h.page(w, r, http.StatusBadRequest, "Bad request", msg)
		return true
	case pathRedirect:
		if d.encodedSlash || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			h.page(w, r, http.StatusBadRequest, "Bad request", "This address is not valid.")
			return true
		}
		// The clean path is read and matched again from the start.
		loc := d.clean
		if r.URL.RawQuery != "" {
			loc += "?" + r.URL.RawQuery
		}
		w.Header().Set("Location", loc)
		w.WriteHeader(http.StatusPermanentRedirect)
		return true
	}
	rt := d.route
	if rt == nil || rt.upstream == nil {
		h.page(w, r, http.StatusNotFound, "Not found", "Nothing is served at this address.")
		return true
	}
	if res, ok := h.authorize(w, r, rt, r.URL.RequestURI(), false); ok {
		h.forward(w, r, rt, res)
	}
	return true
}

// ServeHTTP is Serve as an http.Handler: what is not the proxy's is 404.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.Serve(w, r) {
		h.page(w, r, http.StatusNotFound, "Not found", "Nothing is served at this address.")
	}
}
