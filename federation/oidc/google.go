package oidc

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aero2/aero2/federation"
)

// GoogleIssuer is Google's OpenID Connect issuer.
const GoogleIssuer = "https://accounts.google.com"

// GoogleConfig is the `config:` of a `type: google` identity provider.
type GoogleConfig struct {
	ClientID     string `yaml:"client_id"`
	ClientSecret string `yaml:"client_secret"`
	// HostedDomains, when set, admits only Google Workspace accounts of
	// these domains. The check is on the ID token's `hd` claim: the `hd`
	// authorization parameter Aero2 also sends only preselects an account
	// in Google's chooser, and a user can remove it from the URL.
	HostedDomains []string `yaml:"hosted_domains"`
	// Scopes default to openid profile email.
	Scopes     []string          `yaml:"scopes"`
	AuthParams map[string]string `yaml:"auth_params"`
	Timeout    time.Duration     `yaml:"timeout"`
	// Issuer defaults to https://accounts.google.com. Change it only to
	// test against a stand-in for Google.
	Issuer string `yaml:"issuer"`
}

// Open validates the config. It does not call the network.
func (g *GoogleConfig) Open(_ context.Context, env federation.Env) (federation.Connector, error) {
	params := map[string]string{}
	for k, v := range g.AuthParams {
		params[k] = v
	}
	var domains []string
	for _, d := range g.HostedDomains {
		domains = append(domains, strings.ToLower(strings.TrimSpace(d)))
	}
	switch len(domains) {
	case 0:
	case 1:
		params["hd"] = domains[0]
	default:
		params["hd"] = "*" // any Workspace account; the claim check narrows it
	}
	base := Config{
		Issuer: g.Issuer, ClientID: g.ClientID, ClientSecret: g.ClientSecret,
		Scopes: g.Scopes, AuthParams: params, Timeout: g.Timeout,
		// Google has no preferred_username: the email is what users know.
		UsernameClaim: "email",
	}
	if base.Issuer == "" {
		base.Issuer = GoogleIssuer
	}
	conn, ps := base.build(env, "issuer")
	for i, d := range domains {
		if d == "" || strings.ContainsAny(d, "@/ ") || !strings.Contains(d, ".") {
			ps = append(ps, env.Problem(fmt.Sprintf("hosted_domains[%d]", i), "expected a domain such as example.com, got %q", g.HostedDomains[i]))
		}
	}
	if len(ps) > 0 {
		return nil, ps
	}
	if len(domains) > 0 {
		conn.check = func(c claims) error { return checkHostedDomain(c, domains) }
	}
	return conn, nil
}

// checkHostedDomain admits an account whose `hd` claim is one of domains.
// A personal Gmail account has no `hd` at all; an account of another
// Workspace has another one.
func checkHostedDomain(c claims, domains []string) error {
	hd := strings.ToLower(c.string("hd"))
	if hd == "" || !slices.Contains(domains, hd) {
		return fmt.Errorf("google account of hosted domain %q, not one of %v: %w", hd, domains, federation.ErrDenied)
	}
	return nil
}
