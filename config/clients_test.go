package config

import (
	"slices"
	"testing"
	"time"
)

const clientSecret = "s3cr3t-0123456789abcdef-0123456789"

func TestClientDefaults(t *testing.T) {
	src := validBase + `
clients:
  - id: web
    secret: "` + clientSecret + `"
    redirect_uris: [https://app.example.com/callback]
  - id: spa
    redirect_uris: [http://127.0.0.1:3000/cb, com.example.app:/oauth]
    tokens: {access_token: 5m}
`
	cfg, err := Parse("x", []byte(src), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	app := cfg.Apps()[0]
	web, spa := app.Clients[0], app.Clients[1]
	if web.TokenEndpointAuthMethod != AuthClientSecretBasic || web.IsPublic() {
		t.Errorf("client with a secret: method %q", web.TokenEndpointAuthMethod)
	}
	if spa.TokenEndpointAuthMethod != AuthNone || !spa.IsPublic() {
		t.Errorf("client without a secret: method %q", spa.TokenEndpointAuthMethod)
	}
	if !slices.Equal(web.Scopes, DefaultClientScopes) || !slices.Equal(web.GrantTypes, DefaultGrantTypes) {
		t.Errorf("defaults: scopes %v grants %v", web.Scopes, web.GrantTypes)
	}
	lt := app.Lifetimes(&spa)
	if lt.AccessToken != 5*time.Minute || lt.RefreshToken != DefaultRefreshTokenLifetime || lt.AuthorizationCode != DefaultAuthorizationCodeLifetime {
		t.Errorf("lifetimes %+v", lt)
	}
}

func TestClientProblems(t *testing.T) {
	src := validBase + `
tokens: {authorization_code: 1h}
signing_keys: {rotation_period: 1m}
clients:
  - id: "bad id"
    secret: short
    grant_types: [implicit, password, client_credentials, device]
  - id: pub
    grant_types: [client_credentials, refresh_token]
    introspector: true
  - id: web
    secret: "` + clientSecret + `"
    token_endpoint_auth_method: client_secret_jwt
    redirect_uris:
      - http://app.example.com/cb
      - https://app.example.com/cb#frag
      - https://*.example.com/cb
      - myapp:/cb
      - relative/cb
    post_logout_redirect_uris: [http://evil.example/]
    scopes: ["a b", "ok"]
    tokens: {access_token: -1s, authorization_code: 1m}
  - id: web
    secret: "` + clientSecret + `"
  - id: spa
    secret: ""
    token_endpoint_auth_method: client_secret_post
    grant_types: [authorization_code]
`
	got := parseProblems(t, src, noEnv)
	for _, w := range []string{
		`tokens.authorization_code: at most 10m0s`,
		`signing_keys.rotation_period: at least 1h0m0s`,
		`clients[0].id: expected letters`,
		`clients[0].secret: too short`,
		`clients[0].grant_types[0]: the implicit grant is not supported`,
		`clients[0].grant_types[1]: the password grant is not supported`,
		`clients[0].grant_types[3]: expected authorization_code, refresh_token, client_credentials or urn:ietf:params:oauth:grant-type:device_code, got "device"`,
		`clients[1].grant_types[0]: client_credentials needs a confidential client`,
		`clients[1].grant_types: refresh_token needs authorization_code`,
		`clients[1].introspector: a public client cannot authenticate at the introspection endpoint`,
		`clients[2].token_endpoint_auth_method: expected client_secret_basic, client_secret_post, private_key_jwt or none, got "client_secret_jwt"`,
		`clients[2].redirect_uris[0]: plain http is allowed only on a loopback host`,
		`clients[2].redirect_uris[1]: must not have a fragment`,
		`clients[2].redirect_uris[2]: redirect URIs match exactly; wildcards are not supported`,
		`clients[2].redirect_uris[3]: expected https`,
		`clients[2].redirect_uris[4]: expected an absolute URL`,
		`clients[2].post_logout_redirect_uris[0]: plain http is allowed only on a loopback host`,
		`clients[2].scopes[0]: expected a scope token`,
		`clients[2].tokens.access_token: must not be negative`,
		`clients[2].tokens.authorization_code: the code lifetime is set per application`,
		`clients[3].id: client "web" is defined twice`,
		`clients[3].redirect_uris: required for the authorization_code grant`,
		`clients[4].secret: required for client_secret_post`,
	} {
		wantProblem(t, got, w)
	}
}
