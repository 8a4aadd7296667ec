package server

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/proxy"
	"github.com/aero2/aero2/session"
)

// buildProxy builds the identity-aware proxy when any application has
// routes. Each application's proxy is a client of that application's
// provider (config `proxy:`); its default client secret is derived from
// the cookie keys, so that the provider can register the same first-party
// client without another secret to configure (ProxyClientSecret).
func (s *Server) buildProxy(opts Options) error {
	var apps []proxy.App
	var cookies []string
	for i, a := range s.cfg.Apps() {
		// The names without their prefix (the proxy strips every prefix):
		// the application's base path is part of them.
		_, base, _ := config.IssuerHostPath(a.Issuer)
		cookies = append(cookies, session.CookieName(a.Session.CookieName, false, base), session.CookieName(a.Session.CookieName+"_login", false, base))
		if len(a.ProxyRoutes()) == 0 {
			continue
		}
		path := ""
		if len(s.cfg.Applications) > 0 {
			path = fmt.Sprintf("applications[%d].", i)
		}
		pa := proxy.App{Config: a, Path: path, ClientSecret: ProxyClientSecret(s.cfg, a.Name)}
		if opts.ProviderSessions != nil {
			pa.Sessions = opts.ProviderSessions(a.Name)
		} else if app := s.app(a.Name); app != nil && a.Proxy.Provider == a.Issuer {
			// The proxy's sessions live as long as the provider session
			// they came from (the ID token's sid): a sign-out at the
			// provider, or on the account page, reaches every route.
			pa.Sessions = app.sessions
		}
		switch {
		case opts.AssertionSigner != nil:
			pa.Signer = opts.AssertionSigner(a.Name)
		case s.app(a.Name) != nil:
			// Assertions are signed with the application's own keys, so
			// upstreams verify them against its JWKS.
			pa.Signer = s.app(a.Name).provider
		}
		apps = append(apps, pa)
	}
	if len(apps) == 0 {
		return nil
	}
	h, err := proxy.New(proxy.Options{
		Config: s.cfg, Apps: apps, Store: s.store,
		TrustedProxy: s.trusted.contains, StripCookies: cookies,
		CSRFKey:    deriveKeys(s.cfg.Secrets.CookieKeys, "aero2 proxy csrf")[0],
		HTTPClient: s.localClient(),
		Limits:     s.limits,
		Audit:      s.audit, WrapTransport: s.wrapUpstream(),
		Logger: s.log.With("part", "proxy"), Now: opts.Now,
	})
	if err != nil {
		return err
	}
	s.proxy = h
	return nil
}

// withProxyClient is the application's clients with the proxy's: derived
// (proxyClient), or the one the configuration defines with the proxy's
// client_id. Either way the proxy client is named, at introspection, by
// the audiences the proxy accepts bearer tokens for (proxy.audiences,
// default its client ID): it checks, as a resource server, tokens issued
// to other clients for those audiences, and may introspect no others.
func withProxyClient(cfg *config.Config, a config.Application) []config.Client {
	clients := slices.Clone(a.Clients)
	if pc, ok := proxyClient(cfg, a); ok {
		clients = append(clients, pc)
	}
	if len(a.ProxyRoutes()) == 0 || a.Proxy.Provider != a.Issuer {
		return clients
	}
	for i := range clients {
		if clients[i].ID == a.Proxy.ClientID {
			clients[i].ResourceNames = slices.Clone(a.Proxy.Audiences)
		}
	}
	return clients
}

// proxyClient is the client the proxy signs in with at its application's
// own provider: first-party (no consent page), confidential, with the one
// exact callback and post-logout URIs the proxy uses whatever host a route
// is on (both on the issuer's origin). It is not registered when the proxy
// signs in elsewhere (proxy.provider), or when the configuration defines a
// client with the proxy's client_id itself.
func proxyClient(cfg *config.Config, a config.Application) (config.Client, bool) {
	if len(a.ProxyRoutes()) == 0 || a.Proxy.Provider != a.Issuer {
		return config.Client{}, false
	}
	for _, c := range a.Clients {
		if c.ID == a.Proxy.ClientID {
			return config.Client{}, false
		}
	}
	u, err := url.Parse(a.Issuer)
	if err != nil {
		return config.Client{}, false
	}
	origin := u.Scheme + "://" + u.Host
	secret := a.Proxy.ClientSecret
	if secret == "" {
		secret = ProxyClientSecret(cfg, a.Name)
	}
	grants := []string{config.GrantAuthorizationCode}
	if a.ProxyRefreshes() {
		grants = append(grants, config.GrantRefreshToken)
	}
	return config.Client{
		ID: a.Proxy.ClientID, Name: "Aero2 proxy", Secret: secret,
		TokenEndpointAuthMethod: config.AuthClientSecretBasic,
		RedirectURIs:            []string{origin + "/.aero2/callback"},
		PostLogoutRedirectURIs:  []string{origin + "/.aero2/signed_out"},
		// The proxy is told when a provider session ends, and ends its
		// own sessions from it (proxy/backchannel.go).
		BackchannelLogoutURI:             origin + "/.aero2/backchannel-logout",
		BackchannelLogoutSessionRequired: true,
		Scopes:                           slices.Clone(a.Proxy.Scopes),
		// refresh_token only where the proxy redeems refresh tokens: the
		// provider issues one to every client with the grant.
		GrantTypes: grants,
		FirstParty: true,
	}, true
}

// app returns the named application.
func (s *Server) app(name string) *application {
	for _, a := range s.apps {
		if a.name == name {
			return a
		}
	}
	return nil
}

// localClient calls this server's own applications in process, and
// anything else over the network, with a timeout.
func (s *Server) localClient() *http.Client {
	var issuers []string
	for _, a := range s.cfg.Apps() {
		issuers = append(issuers, a.Issuer)
	}
	next := http.DefaultTransport.(*http.Transport).Clone()
	return &http.Client{Timeout: 10 * time.Second, Transport: newLocalTransport(issuers, func() http.Handler { return s.handler }, next)}
}

// ProxyClientSecret is the default secret of an application's proxy at its
// own provider: derived from the first cookie key (HKDF), so both sides
// compute it and nobody has to configure it.
func ProxyClientSecret(cfg *config.Config, app string) string {
	return base64.RawURLEncoding.EncodeToString(deriveKeys(cfg.Secrets.CookieKeys[:1], "aero2 proxy client "+app)[0])
}
