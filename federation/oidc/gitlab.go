package oidc

import (
	"context"
	"strings"
	"time"

	"github.com/aero2/aero2/federation"
)

// GitLabURL is gitlab.com, the default GitLab instance.
const GitLabURL = "https://gitlab.com"

// GitLabConfig is the `config:` of a `type: gitlab` identity provider:
// gitlab.com or a self-managed instance, through GitLab's OpenID Connect
// provider.
type GitLabConfig struct {
	// BaseURL is the instance, default https://gitlab.com. It is also the
	// issuer.
	BaseURL      string `yaml:"base_url"`
	ClientID     string `yaml:"client_id"`
	ClientSecret string `yaml:"client_secret"`
	// Scopes default to openid profile email.
	Scopes     []string          `yaml:"scopes"`
	AuthParams map[string]string `yaml:"auth_params"`
	Timeout    time.Duration     `yaml:"timeout"`
}

// Open validates the config. It does not call the network.
func (g *GitLabConfig) Open(_ context.Context, env federation.Env) (federation.Connector, error) {
	base := Config{
		Issuer: strings.TrimSuffix(g.BaseURL, "/"), ClientID: g.ClientID, ClientSecret: g.ClientSecret,
		Scopes: g.Scopes, AuthParams: g.AuthParams, Timeout: g.Timeout,
		// GitLab's ID token carries the username as `nickname`, and the
		// full paths of the user's groups in userinfo's `groups`.
		UsernameClaim: "nickname", GroupsClaim: "groups", GetUserInfo: true,
	}
	if base.Issuer == "" {
		base.Issuer = GitLabURL
	}
	conn, ps := base.build(env, "base_url")
	if len(ps) > 0 {
		return nil, ps
	}
	return conn, nil
}
