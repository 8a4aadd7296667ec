package oidc_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/server"
	"github.com/aero2/aero2/server/servertest"
)

func check(t *testing.T, idps string) error {
	t.Helper()
	src := `
server:
  public_url: https://auth.example.com
secrets:
  cookie_keys: ["` + servertest.CookieKey + `"]
  storage_key: "` + servertest.StorageKey + `"
identity_providers:
` + idps
	cfg, err := config.Parse("aero2.yaml", []byte(src), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return server.Check(context.Background(), cfg, nil)
}

func TestConfigIsCheckedOffline(t *testing.T) {
	// Hosts that do not resolve: Open must not touch the network.
	err := check(t, `
  - {id: a, type: oidc, config: {issuer: "https://sso.invalid/realms/x", client_id: c, client_secret: s}}
  - {id: b, type: google, config: {client_id: c, client_secret: s, hosted_domains: [example.com]}}
  - {id: c, type: gitlab, config: {client_id: c, client_secret: s, base_url: "https://gitlab.invalid"}}
  - {id: d, type: microsoft, config: {tenant: organizations, allowed_tenants: [72f988bf-86f1-41af-91ab-2d7cd011db47], client_id: c, client_secret: s}}
  - {id: e, type: github, config: {client_id: c, client_secret: s, base_url: "https://github.invalid"}}
`)
	if err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
}

func TestConfigProblems(t *testing.T) {
	err := check(t, `
  - id: a
    type: oidc
    config:
      issuer: "http://sso.example.com"
      auth_params: {state: x, prompt: login}
      unknown_key: 1
  - id: b
    type: oidc
    config: {issuer: "https://sso.example.com", client_id: c, client_secret: s, auth_params: {Nonce: x, code_challenge: y}}
  - id: c
    type: google
    config: {client_id: c, client_secret: s, hosted_domains: ["@example.com"]}
  - id: d
    type: microsoft
    config: {tenant: contoso.onmicrosoft.com, allowed_tenants: [nope], client_id: c, client_secret: s}
  - id: e
    type: microsoft
    config: {tenant: 72f988bf-86f1-41af-91ab-2d7cd011db47, allowed_tenants: [72f988bf-86f1-41af-91ab-2d7cd011db47], client_id: c, client_secret: s}
  - id: f
    type: oidc
    config: {issuer: "http://127.0.0.1:5556", client_id: c, client_secret: s}
`)
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{
		`identity_providers[0].config.unknown_key: unknown key`,
		`identity_providers[2].config.hosted_domains[0]: expected a domain`,
		`identity_providers[3].config.tenant: expected the directory (tenant) ID`,
		`identity_providers[3].config.allowed_tenants[0]: expected a tenant ID`,
		`identity_providers[4].config.allowed_tenants: only for tenant organizations or common`,
		`identity_providers[1].config.auth_params.Nonce: "Nonce" is set by Aero2 itself`,
		`identity_providers[1].config.auth_params.code_challenge`,
		// plain http without insecure_dev, even on loopback
		`identity_providers[5].config.issuer: plain http is allowed only for a loopback host with insecure_dev`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("problems lack %q:\n%v", want, err)
		}
	}
	// The decode error of provider 0 hides its other problems; check
	// them without the unknown key.
	err = check(t, `
  - id: a
    type: oidc
    config: {issuer: "http://sso.example.com", auth_params: {state: x}}
`)
	for _, want := range []string{"config.issuer: plain http", "config.client_id: required", "config.client_secret: required", "auth_params.state"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("problems lack %q:\n%v", want, err)
		}
	}
}
