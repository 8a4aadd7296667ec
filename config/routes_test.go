package config

import (
	"slices"
	"testing"
	"time"
)

func TestRoutesDefaultsAndShorthand(t *testing.T) {
	cfg, err := Parse("aero2.yaml", []byte(validBase+"upstream: http://127.0.0.1:3000\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Apps()[0]
	rs := a.ProxyRoutes()
	if len(rs) != 1 || rs[0].Path != "/" || rs[0].Host != "" || rs[0].Upstream != "http://127.0.0.1:3000" {
		t.Errorf("shorthand routes = %+v", rs)
	}
	p := a.Proxy
	if p.Provider != "https://auth.example.com" || p.ClientID != DefaultProxyClientID || p.CookieName != "aero2_proxy" ||
		p.SessionCache != 2*time.Second || p.TokenCache != 10*time.Second || len(p.Audiences) != 1 || p.Audiences[0] != DefaultProxyClientID {
		t.Errorf("proxy defaults = %+v", p)
	}
}

// TestSessionCacheZeroMeansNone: proxy.session_cache: 0 in the file turns
// the cache off; only an absent key gets the default.
func TestSessionCacheZeroMeansNone(t *testing.T) {
	cfg, err := Parse("aero2.yaml", []byte(validBase+"upstream: http://127.0.0.1:3000\nproxy: {session_cache: 0s}\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c := cfg.Apps()[0].Proxy.SessionCache; c != 0 {
		t.Errorf("session_cache: 0 became %s", c)
	}
}

func TestRouteProblems(t *testing.T) {
	src := validBase + `
upstream: http://127.0.0.1:9
proxy:
  session_cache: 5m
  scopes: [profile]
  cookie_name: aero2_session
routes:
  - {host: App.Example.COM., path: /a, upstream: "ftp://x"}
  - {host: "*.*.example.com", path: "/.aero2/x", upstream: "http://u:p@h"}
  - {host: "a.example.com", path: "/b/../c", upstream: "http://h", tls: {ca_file: ca.pem}}
  - {host: "app.example.com", path: "/A/", upstream: "http://h"}
  - {path: "/x", upstream: "http://h", policy: {public: true, allowed_emails: [a@example.com]}}
  - {path: "/y", upstream: "http://h", headers: {user: [Cookie], email: ["bad name"], access_token: [Authorization], assertion: Host}}
  - {path: "/z%2f", upstream: "http://h", timeouts: {dial: -1s}, policy: {allowed_claims: {dept: []}}}
`
	got := parseProblems(t, src, noEnv)
	for _, want := range []string{
		"upstream: `upstream` is the shorthand",
		"proxy.session_cache: must be between 0 and 30s",
		"proxy.scopes: must include openid",
		"proxy.cookie_name: must differ from session.cookie_name",
		`routes[0].upstream: expected an http or https URL`,
		`routes[1].host: expected a host name`,
		`routes[1].path: /.aero2/ is reserved`,
		`routes[1].upstream: must not have user info`,
		`routes[2].path: must not contain '//', '.' or '..' segments`,
		`routes[2].tls: tls settings need an https upstream`,
		`routes[3].path: host "app.example.com" and path "/A/" are already routed by routes[0]`,
		`routes[4].policy.public: a public route admits everyone`,
		`routes[5].headers.user[0]: header Cookie cannot carry identity`,
		`routes[5].headers.email[0]: invalid header name "bad name"`,
		`routes[5].headers.assertion: header Host cannot carry identity`,
		`routes[6].path: must be a plain path`,
		`routes[6].timeouts.dial: must not be negative`,
		`routes[6].policy.allowed_claims.dept: claim "dept" needs at least one accepted value`,
	} {
		wantProblem(t, got, want)
	}
	for _, g := range got {
		if contains(g, "access_token") {
			t.Errorf("Authorization is allowed for the access token: %s", g)
		}
	}
}

// TestEmptyAllowListsAreRefused: an allow-list that is written but empty
// would admit every signed-in user (the lists are any-of, and none at all
// means anyone): each kind is refused where it stands.
func TestEmptyAllowListsAreRefused(t *testing.T) {
	src := validBase + `
routes:
  - {path: /a, upstream: "http://h", policy: {allowed_emails: []}}
  - path: /b
    upstream: "http://h"
    policy:
      allowed_domains:
  - {path: /c, upstream: "http://h", policy: {allowed_groups: [], allowed_emails: [a@example.com]}}
  - {path: /d, upstream: "http://h", policy: {allowed_claims: {}}}
  - {path: /e, upstream: "http://h", policy: {allowed_claims: {dept: [], team: [x]}}}
  - {path: /f, upstream: "http://h", policy: {public: true, allow_client_credentials: true}}
`
	got := parseProblems(t, src, noEnv)
	for _, want := range []string{
		`aero2.yaml:12:47: routes[0].policy.allowed_emails: an empty list admits nobody`,
		`aero2.yaml:16:7: routes[1].policy.allowed_domains: an empty list admits nobody`,
		`aero2.yaml:17:47: routes[2].policy.allowed_groups: an empty list admits nobody`,
		`aero2.yaml:18:47: routes[3].policy.allowed_claims: an empty list admits nobody`,
		`aero2.yaml:19:64: routes[4].policy.allowed_claims.dept: claim "dept" needs at least one accepted value`,
		`aero2.yaml:20:47: routes[5].policy.public: a public route admits everyone`,
	} {
		wantProblem(t, got, want)
	}
	if len(got) != 6 {
		t.Errorf("got %d problems, want 6:\n%s", len(got), got)
	}
}

func TestRoutesConflictAcrossApplications(t *testing.T) {
	src := `
secrets:
  cookie_keys: ["0123456789abcdef0123456789abcdef"]
  storage_key: "fedcba9876543210fedcba9876543210"
applications:
  - name: a
    issuer: https://a.example.com
    identity_providers: [{id: x, type: oidc}]
    routes: [{host: app.example.com, upstream: "http://h"}]
  - name: b
    issuer: https://b.example.com
    identity_providers: [{id: x, type: oidc}]
    routes: [{host: app.example.com, path: /, upstream: "http://h2"}]
`
	wantProblem(t, parseProblems(t, src, noEnv), `applications[1].routes[0].path: host "app.example.com" and path "/" are already routed by applications[0].routes[0]`)
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// TestAssertionAudienceIsReserved: no access token may carry an audience
// in the identity assertions' namespace, so neither clients nor the
// proxy's accepted audiences may name one.
func TestAssertionAudienceIsReserved(t *testing.T) {
	src := validBase + `
proxy: {audiences: [aero2-proxy, "URN:Aero2:Assertion:https://app.example.com"]}
clients:
  - id: svc
    secret: "0123456789abcdef0123456789abcdef-svc"
    grant_types: [client_credentials]
    audience: [api, "urn:aero2:assertion:https://app.example.com/admin"]
routes:
  - {path: /, upstream: "http://h"}
`
	got := parseProblems(t, src, noEnv)
	wantProblem(t, got, `proxy.audiences[1]: urn:aero2:assertion:… is the audience of identity assertions`)
	wantProblem(t, got, `clients[0].audience[1]: urn:aero2:assertion:… is the audience of the proxy's identity assertions`)
	if len(got) != 2 {
		t.Errorf("got %d problems, want 2:\n%s", len(got), got)
	}
}

// TestProxyAsksForOfflineAccessOnlyWhereItRefreshes: the default scopes
// lose offline_access, and the proxy's client the refresh_token grant
// (ProxyRefreshes), only at the application's own provider with no route
// that sends the access token; proxy.scopes written in the file, or
// another provider, keep both.
func TestProxyAsksForOfflineAccessOnlyWhereItRefreshes(t *testing.T) {
	const headersOnly = "routes:\n  - {path: /a, upstream: http://127.0.0.1:3000}\n"
	const token = "routes:\n  - {path: /a, upstream: http://127.0.0.1:3000}\n  - {path: /b, upstream: http://127.0.0.1:3000, headers: {access_token: [X-Token]}}\n"
	for _, tc := range []struct {
		name, src string
		refreshes bool
	}{
		{"own provider, identity headers", headersOnly, false},
		{"own provider, shorthand", "upstream: http://127.0.0.1:3000\n", false},
		{"own provider, a route sends the token", token, true},
		{"scopes written", headersOnly + "proxy: {scopes: [openid, email, offline_access]}\n", true},
		{"scopes written as the default", headersOnly + "proxy: {scopes: [openid, profile, email, groups, offline_access]}\n", true},
		{"another provider", headersOnly + "proxy: {provider: \"https://id.example.com\", client_secret: s}\n", true},
	} {
		cfg, err := Parse("aero2.yaml", []byte(validBase+tc.src), noEnv)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		a := cfg.Apps()[0]
		got := a.ProxyRequestScopes()
		asks := slices.Contains(got, "offline_access")
		if a.ProxyRefreshes() != tc.refreshes || asks != (tc.refreshes && slices.Contains(a.Proxy.Scopes, "offline_access")) {
			t.Errorf("%s: refreshes %t, asks for %v; want refreshes %t", tc.name, a.ProxyRefreshes(), got, tc.refreshes)
		}
		if !slices.Contains(got, "openid") || !slices.Contains(a.Proxy.Scopes, "openid") {
			t.Errorf("%s: scopes %v, asked for %v", tc.name, a.Proxy.Scopes, got)
		}
	}
	// The default list itself is left whole: it is what the proxy's
	// client may be granted.
	cfg, err := Parse("aero2.yaml", []byte(validBase+headersOnly), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.Apps()[0].Proxy.Scopes; !slices.Equal(s, DefaultProxyScopes) {
		t.Errorf("proxy.scopes defaulted to %v", s)
	}
}
