package config

import (
	"strings"
	"testing"
)

func TestIssuerOwns(t *testing.T) {
	for p, want := range map[string]bool{
		"/login": true, "/LOGIN": true, "/logout": true, "/account": true, "/account/sessions/end": true,
		"/rp/authorize": true, "/rp/": true, "/oauth2/token": true, "/OAuth2/Token": true, "/.well-known/jwks.json": true,
		"/": false, "/login/": false, "/loginx": false, "/rp": false, "/oauth2": false, "/app": false, "/.aero2/login": false,
	} {
		if got := IssuerOwns(p); got != want {
			t.Errorf("IssuerOwns(%q) = %v, want %v", p, got, want)
		}
	}
	for _, tc := range []struct {
		p, base string
		want    bool
	}{
		{"/shop", "/shop", true}, {"/shop/", "/shop", true}, {"/SHOP/login", "/shop", true},
		{"/shopping", "/shop", false}, {"/", "/shop", false}, {"/.aero2/login", "/.aero2", true},
	} {
		if got := UnderPath(tc.p, tc.base); got != tc.want {
			t.Errorf("UnderPath(%q, %q) = %v", tc.p, tc.base, got)
		}
	}
}

// TestHostProblems: `check` says, at the line, which hosts a configuration
// would serve wrongly: an unusable `hosts` entry, a plain-http application
// on a host that is not this machine, an issuer path that cannot name
// cookies or sits in the reserved prefix, and routes Aero2's own paths
// shadow.
func TestHostProblems(t *testing.T) {
	got := parseProblems(t, validBase+`
hosts: ["*.*.example.com", "auth.example.com", "a.example.com", "A.example.com.", "https://app.example.com"]
routes:
  - {host: a.example.com, path: /, upstream: "http://h"}
  - {path: /account, upstream: "http://h"}
  - {path: /oauth2, upstream: "http://h"}
  - {path: /app, upstream: "http://h"}
`, noEnv)
	for _, want := range []string{
		`aero2.yaml:11:9: hosts[0]: expected a host name`,
		`hosts[1]: host "auth.example.com" is listed twice (the issuer's host is always served)`,
		`hosts[3]: host "a.example.com" is listed twice`,
		`hosts[4]: expected a host, not a URL: write app.example.com`,
		`routes[1].path: Aero2 answers /account on auth.example.com itself`,
		`routes[2].path: Aero2 answers /oauth2 on auth.example.com itself`,
	} {
		wantProblem(t, got, want)
	}
	for _, g := range got {
		if strings.Contains(g, "routes[3]") || strings.Contains(g, "routes[0]") || strings.Contains(g, "hosts[2]") {
			t.Errorf("unexpected problem: %s", g)
		}
	}

	got = parseProblems(t, `
insecure_dev: true
secrets:
  cookie_keys: ["0123456789abcdef0123456789abcdef"]
  storage_key: "fedcba9876543210fedcba9876543210"
applications:
  - name: a
    issuer: http://localhost:8080
    identity_providers: [{id: x, type: oidc}]
    hosts: [app.localhost:8080, app.example.com]
    routes:
      - {host: app.example.com, upstream: "http://h"}
      - {host: "*.localhost", upstream: "http://h"}
      - {upstream: "http://h"}
  - name: b
    issuer: https://auth.example.com/.aero2/x
    identity_providers: [{id: x, type: oidc}]
  - name: c
    issuer: https://auth.example.com/a%20b
    identity_providers: [{id: x, type: oidc}]
  - name: d
    issuer: https://auth.example.com/shop
    identity_providers: [{id: x, type: oidc}]
    hosts: [other.example.com]
    routes:
      - {host: auth.example.com, path: /shop/x, upstream: "http://h"}
`, noEnv)
	for _, want := range []string{
		`applications[0].hosts[1]: the application's issuer is plain http`,
		`applications[0].routes[0].host: the application's issuer is plain http`,
		`applications[1].issuer: an issuer under /.aero2/ must be exactly /.aero2`,
		`applications[2].issuer: the issuer's path may hold only letters`,
		`applications[3].hosts: lists the hosts that routes without ` + "`host`" + ` serve, but this application has no such route`,
		`applications[3].routes[0].path: Aero2 answers /shop/x on auth.example.com itself`,
	} {
		wantProblem(t, got, want)
	}
	for _, g := range got {
		if strings.Contains(g, "routes[1]") || strings.Contains(g, "routes[2]") || strings.Contains(g, "hosts[0]") {
			t.Errorf("unexpected problem: %s", g)
		}
	}
}

// TestSidecarIssuerAtReservedPrefix: an issuer at exactly /.aero2 is
// accepted, and then a route for "/" shadows none of Aero2's paths.
func TestSidecarIssuerAtReservedPrefix(t *testing.T) {
	src := strings.Replace(validBase, "https://auth.example.com", "https://legacy.example.com/.aero2", 1) + "upstream: http://127.0.0.1:3000\n"
	if _, err := Parse("aero2.yaml", []byte(src), noEnv); err != nil {
		t.Fatal(err)
	}
}
