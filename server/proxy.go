package server

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"time"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/proxy"
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
		cookies = append(cookies, a.Session.CookieName, a.Session.CookieName+"_login")
		if len(a.ProxyRoutes()) == 0 {
			continue
		}
		path := ""
		if len(s.cfg.Applications) > 0 {
			path = fmt.Sprintf("applications[%d].", i)
		}
		pa := proxy.App{Config: a, Path: path, ClientSecret: ProxyClientSecret(s.cfg, a.Name)}
		if opts.AssertionSigner != nil {
			pa.Signer = opts.AssertionSigner(a.Name)
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
		Logger:     s.log.With("part", "proxy"), Now: opts.Now,
	})
	if err != nil {
		return err
	}
	s.proxy = h
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
