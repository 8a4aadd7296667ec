package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aero2/aero2/config/configtest"
)

// The mistakes a new user makes, each reported once, at its own line, and
// nothing reported that is not a mistake.

// onlyProblems parses src and wants exactly the problems want (each a
// substring of one problem, in order).
func onlyProblems(t *testing.T, src string, want ...string) {
	t.Helper()
	got := parseProblems(t, src, noEnv)
	if len(got) != len(want) {
		t.Fatalf("want %d problem(s), got %d:\n  %s", len(want), len(got), strings.Join(got, "\n  "))
	}
	for i := range want {
		if !strings.Contains(got[i], want[i]) {
			t.Errorf("problem %d is %q, want it to contain %q", i, got[i], want[i])
		}
	}
}

func TestRepeatedKeyIsReportedAloneNotAsMissingKeys(t *testing.T) {
	// The repetition used to make yaml.v3 refuse the whole mapping, so
	// that every other key in it was reported as missing.
	onlyProblems(t, strings.Replace(validBase, "  storage_key:", "  cookie_keys: [\"0123456789abcdef0123456789abcdef\"]\n  storage_key:", 1),
		`aero2.yaml:6:3: secrets.cookie_keys: key repeated (first at line 5)`)
	onlyProblems(t, validBase+"server:\n  listen: \":9090\"\nidentity_providers: []\n",
		`aero2.yaml:10:1: server: key repeated (first at line 2)`,
		`aero2.yaml:12:1: identity_providers: key repeated (first at line 7)`)
	// The first one counts.
	src := strings.Replace(validBase, "server:\n", "server:\n  listen: \":7000\"\n  listen: \":7001\"\n", 1)
	_, err := Parse("aero2.yaml", []byte(src), noEnv)
	if err == nil || !strings.Contains(err.Error(), "server.listen: key repeated") {
		t.Fatalf("err = %v", err)
	}
	onlyProblems(t, validBase+"routes:\n  - path: /a\n    upstream: http://h\n    policy:\n      allowed_claims: {dept: [a], dept: [b]}\n",
		`aero2.yaml:14:35: routes[0].policy.allowed_claims.dept: key repeated (first at line 14)`)
}

func TestDerivedDefaultsAreNotReportedAgain(t *testing.T) {
	// proxy.provider defaults to the issuer, which defaults to public_url:
	// a bad public_url is one problem, at public_url, not a second one at
	// a proxy.provider the file does not have.
	onlyProblems(t, strings.Replace(validBase, "https://auth.example.com", "auth.example.com", 1),
		`aero2.yaml:3:3: server.public_url: expected an absolute URL`)
	onlyProblems(t, strings.Replace(validBase, "https://auth.example.com", "http://localhost:8080", 1),
		`aero2.yaml:3:3: server.public_url: plain http needs insecure_dev: true`)
	// Written in the file, proxy.provider is checked where it is.
	onlyProblems(t, validBase+"proxy: {provider: \"sso.example.com\"}\n",
		`aero2.yaml:10:9: proxy.provider: expected an absolute URL`)
	// Cookie names derived from a bad application name are not reported:
	// the name is.
	onlyProblems(t, validBase+"name: Shop!\n", `aero2.yaml:10:1: name: expected lower-case letters`)
	long := strings.Repeat("a", 60)
	onlyProblems(t, validBase+"name: "+long+"\n",
		`aero2.yaml:10:1: name: too long for the cookie name derived from it (session.cookie_name`,
		`aero2.yaml:10:1: name: too long for the cookie name derived from it (proxy.cookie_name`)
	// A key missing at the top level has no position, rather than a 1:1
	// that points at whatever key is first.
	got := parseProblems(t, "insecure_dev: false\nserver: {public_url: \"https://a.example\"}\nsecrets: {cookie_keys: [\"0123456789abcdef0123456789abcdef\"], storage_key: \"fedcba9876543210fedcba9876543210\"}\n", noEnv)
	wantProblem(t, got, "aero2.yaml: identity_providers: required")
}

func TestRouteHostThatIsAURL(t *testing.T) {
	for host, want := range map[string]string{
		"https://app.example.com":           `expected a host, not a URL: write app.example.com (the scheme is the request's)`,
		"http://app.example.com:8080/":      `expected a host, not a URL: write app.example.com:8080 `,
		"https://app.example.com/admin":     `expected a host, not a URL: write app.example.com, and /admin as a route's path`,
		"app.example.com/admin":             `expected a host without a path: write app.example.com, and /admin as a route's path`,
		"user@app.example.com":              `expected a host name such as app.example.com`,
		"app.example.com:http":              `invalid port in host "app.example.com:http"`,
		"app.example.com:0":                 `invalid port in host`,
		"*.example.com:99999":               `invalid port in host`,
		"app.example.com?x":                 `expected a host name such as app.example.com`,
		"https:/app.example.com":            `expected a host such as app.example.com, not a URL: "https:/app.example.com"`,
		"HTTPS://App.Example.com/x?y=1#top": `expected a host, not a URL: write app.example.com, and /x as a route's path`,
	} {
		got := parseProblems(t, validBase+"routes:\n  - host: \""+host+"\"\n    upstream: http://h\n", noEnv)
		if len(got) != 1 || !strings.Contains(got[0], "aero2.yaml:11:5: routes[0].host: "+want) {
			t.Errorf("host %q: got\n  %s\nwant one problem containing %q", host, strings.Join(got, "\n  "), want)
		}
	}
	for _, ok := range []string{"app.example.com", "app.example.com:8443", "*.example.com", "[::1]:8080", "10.0.0.1"} {
		if _, err := Parse("aero2.yaml", []byte(validBase+"routes:\n  - host: \""+ok+"\"\n    upstream: http://h\n"), noEnv); err != nil {
			t.Errorf("host %q refused: %v", ok, err)
		}
	}
}

func TestSyntaxErrorsAtTheirLineAndColumn(t *testing.T) {
	for name, tc := range map[string]struct{ src, want string }{
		// yaml.v3 says "line 1: did not find expected '-' indicator".
		"key dedented out of a list item": {"routes:\n  - host: a\n    upstream: http://x\n  policy:\n    public: true\n",
			"aero2.yaml:4:3: invalid YAML: value is not allowed in this context (is this line indented like the keys it belongs with?)"},
		// yaml.v3: "line 2: did not find expected key".
		"key between two levels": {"server:\n  listen: x\n public_url: y\n",
			"aero2.yaml:3:2: invalid YAML:"},
		// yaml.v3: "line 2: mapping values are not allowed", no column.
		"key indented too far": {"server:\n  listen: :8080\n    public_url: https://a.example\n",
			"aero2.yaml:3:5: invalid YAML: this key is indented more than the key above it"},
		"key indented too far after a quoted value": {"server:\n  listen: \":8080\"\n    public_url: https://a.example\n",
			"aero2.yaml:3:5: invalid YAML: value is not allowed in this context"},
		"unclosed list":   {"log: {level: info}\nserver:\n  trusted_proxies: [10.0.0.0/8\n  listen: x\n", "aero2.yaml:4:"},
		"unclosed quote":  {"log:\n  level: \"info\n", "aero2.yaml:2:10: invalid YAML:"},
		"tab indentation": {"log:\n\tlevel: info\n", "aero2.yaml:2:1: invalid YAML:"},
		"list in mapping": {"log: {level: info}\n- x\n", "aero2.yaml:2:1: invalid YAML:"},
	} {
		t.Run(name, func(t *testing.T) {
			got := parseProblems(t, tc.src, noEnv)
			if len(got) != 1 || !strings.HasPrefix(got[0], tc.want) {
				t.Errorf("got\n  %s\nwant one problem starting %q", strings.Join(got, "\n  "), tc.want)
			}
		})
	}
	// A problem goccy's parser does not see keeps yaml.v3's words.
	got := parseProblems(t, "a: *nowhere\n", noEnv)
	if len(got) != 1 || !strings.Contains(got[0], "unknown anchor 'nowhere'") {
		t.Errorf("got %q", got)
	}
}

func TestValueFoldedOverLinesIsAProblem(t *testing.T) {
	// One list entry indented a step too far joins the one above it: a
	// policy for the group "admins - ops", which nobody is in.
	src := validBase + "routes:\n  - path: /a\n    upstream: http://h\n    policy:\n      allowed_groups:\n        - admins\n         - ops\n"
	onlyProblems(t, src, `aero2.yaml:15:11: routes[0].policy.allowed_groups[0]: this value goes on over several lines and reads "admins - ops"`)
	// A key's value continued on the next line, deeper.
	onlyProblems(t, validBase+"routes:\n  - path: /a\n    upstream: http://h\n      /api\n",
		`aero2.yaml:12:15: routes[0].upstream: this value goes on over several lines and reads "http://h /api"`)
	// Inside an identity provider's own config too.
	onlyProblems(t, validBase+"    config:\n      issuer: https://sso.example.com\n        /realms/x\n",
		`aero2.yaml:11:15: identity_providers[0].config.issuer: this value goes on over several lines`)
	// A flow value folded onto the next line.
	onlyProblems(t, validBase+"    config: {issuer: https://sso.example.com\n       /realms/x}\n",
		`aero2.yaml:10:22: identity_providers[0].config.issuer: this value goes on over several lines`)
	// Quoted, folded (>) and literal (|) values are meant to; so is a
	// plain value after its anchor or tag, in either order.
	for _, ok := range []string{
		"    name: \"Corporate\n      SSO\"\n",
		"    name: >\n      Corporate\n      SSO\n",
		"    name: &n Corporate SSO\n",
		"    name: !!str Corporate SSO # with a comment\n",
		// Anchors and tags in either order, then the value.
		"    name: &n !!str Corporate SSO\n",
		"    name: !!str &n Corporate SSO\n",
		"    name: !!str\tCorporate SSO\n",
		"    name: &n\tCorporate SSO # comment\n",
		"    config: {issuer: &i https://sso.example.com, client_id: !!str x}\n",
	} {
		if _, err := Parse("aero2.yaml", []byte(validBase+ok), noEnv); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
}

func TestMisplacedKeySaysWhereItBelongs(t *testing.T) {
	for name, tc := range map[string]struct{ add, want string }{
		// `policy:` left empty, its key at route level.
		"policy key at route level": {"routes:\n  - path: /a\n    upstream: http://h\n    policy:\n    allowed_groups: [admins]\n",
			`aero2.yaml:14:5: routes[0].allowed_groups: unknown key "allowed_groups" (it belongs under policy)`},
		// A route's key at the application's level.
		"route key at application level": {"routes:\n  - path: /a\n    upstream: http://h\nstrip_prefix: true\n",
			`aero2.yaml:13:1: strip_prefix: unknown key "strip_prefix" (it belongs under routes[])`},
		"policy key at application level": {"allowed_emails: [a@example.com]\n",
			`aero2.yaml:10:1: allowed_emails: unknown key "allowed_emails" (it belongs under routes[].policy)`},
		"key of two mappings": {"read_header_timeout: 5s\n",
			`aero2.yaml:10:1: read_header_timeout: unknown key "read_header_timeout" (it belongs under server)`},
		// A route's key written inside its policy.
		"route key in policy": {"routes:\n  - path: /a\n    policy:\n      allowed_groups: [admins]\n      upstream: http://h\n",
			`aero2.yaml:14:7: routes[0].policy.upstream: unknown key "upstream" (it belongs in routes[0]: indent it less)`},
		"top-level key in session": {"session:\n  idle_timeout: 1h\n  clients: []\n",
			`aero2.yaml:12:3: session.clients: unknown key "clients" (it belongs at the top level: indent it less)`},
	} {
		t.Run(name, func(t *testing.T) {
			got := parseProblems(t, validBase+tc.add, noEnv)
			wantProblem(t, got, tc.want)
		})
	}
	// A misspelling is still a misspelling.
	wantProblem(t, parseProblems(t, validBase+"sesion: {}\n", noEnv), `(did you mean "session"?)`)
}

func TestRouteWithoutUpstreamIsANotice(t *testing.T) {
	src := validBase + "routes:\n  - host: app.example.com\n    upstream: http://h\n  - host: app.example.com\n    path: /admin\n"
	cfg, err := Parse("aero2.yaml", []byte(src), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Notices) != 1 || !strings.HasPrefix(cfg.Notices[0].Error(), "aero2.yaml:13:5: routes[1]: forward-auth only: this route has no upstream") {
		t.Fatalf("notices = %v", cfg.Notices)
	}
	cfg, err = Parse("aero2.yaml", []byte(validBase+"upstream: http://h\n"), noEnv)
	if err != nil || len(cfg.Notices) != 0 {
		t.Fatalf("sidecar: %v, notices %v", err, cfg.Notices)
	}
}

func TestMissingSecretSaysHowToMakeOne(t *testing.T) {
	src := strings.NewReplacer(`"fedcba9876543210fedcba9876543210"`, `"${AERO2_STORAGE_KEY}"`,
		"    type: oidc\n", "    type: oidc\n    config: {client_secret: \"${CORP_SECRET}\"}\n").Replace(validBase) +
		"clients:\n  - id: web\n    secret: ${WEB_SECRET}\n    redirect_uris: [https://app.example.com/cb]\nlog: {level: \"${LEVEL}\"}\n"
	got := parseProblems(t, src, noEnv)
	wantProblem(t, got, "aero2.yaml:6:16: secrets.storage_key: environment variable AERO2_STORAGE_KEY is not set: set it to a new random secret (generate one with `aero2 secret` or `openssl rand -base64 32`)")
	wantProblem(t, got, "clients[0].secret: environment variable WEB_SECRET is not set: set it to a new random secret (generate one with `aero2 secret`")
	wantProblem(t, got, "identity_providers[0].config.client_secret: environment variable CORP_SECRET is not set: set it to the client secret the identity provider issued")
	wantProblem(t, got, "log.level: environment variable LEVEL is not set (use ${LEVEL:-default} for an optional value)")

	got = parseProblems(t, "server: {public_url: \"https://a.example\"}\nidentity_providers: [{id: x, type: dev}]\nsecrets: {cookie_keys: [short]}\n", noEnv)
	wantProblem(t, got, "secrets.cookie_keys[0]: too short: 5 bytes, need at least 32 (generate one with `aero2 secret`")
	wantProblem(t, got, "secrets.storage_key: required: a random key of 32 bytes or more, from the environment: storage_key: \"${AERO2_STORAGE_KEY}\" (generate one with `aero2 secret`")
}

func TestRotationPeriodZeroMeansOnlyOnCommand(t *testing.T) {
	// As docs/config-clients.md writes it: 0 rotates only with
	// `aero2 keys rotate`.
	cfg, err := Parse("aero2.yaml", []byte(validBase+"signing_keys:\n  rotation_period: 0\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SigningKeys.RotationPeriod != 0 {
		t.Errorf("rotation_period = %v", cfg.SigningKeys.RotationPeriod)
	}
	cfg, err = Parse("aero2.yaml", []byte(validBase+"signing_keys: {rotation_period: 720h}\nsession: {idle_timeout: 0}\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SigningKeys.RotationPeriod != 720*time.Hour || cfg.Session.IdleTimeout != DefaultSessionIdle {
		t.Errorf("rotation_period = %v, idle_timeout = %v", cfg.SigningKeys.RotationPeriod, cfg.Session.IdleTimeout)
	}
	// Any other bare number stays refused: 10 would be ten nanoseconds.
	for _, v := range []string{"10", "0.5", "-0", "00"} {
		wantProblem(t, parseProblems(t, validBase+"signing_keys: {rotation_period: "+v+"}\n", noEnv),
			`signing_keys.rotation_period: expected a duration such as 30s, 10m or 12h, got "`+v+`"`)
	}
	wantProblem(t, parseProblems(t, validBase+"signing_keys: {rotation_period: 30m}\n", noEnv),
		"signing_keys.rotation_period: at least 1h0m0s (or 0 to rotate only with `aero2 keys rotate`)")
}

func TestFilesNamedInTheConfigMustBeThere(t *testing.T) {
	dir := t.TempDir()
	cert, key := configtest.KeyPair(t, dir, "a")
	otherCert, _ := configtest.KeyPair(t, dir, "b")
	missing := filepath.Join(dir, "missing.pem")
	tlsConfig := func(c, k string) string {
		return strings.Replace(validBase, "server:\n", "server:\n  tls:\n    cert_file: "+c+"\n    key_file: "+k+"\n", 1)
	}
	if _, err := Parse("aero2.yaml", []byte(tlsConfig(cert, key)), noEnv); err != nil {
		t.Fatalf("a good pair refused: %v", err)
	}
	onlyProblems(t, tlsConfig(missing, key), "aero2.yaml:4:5: server.tls.cert_file: cannot read "+missing+": no such file or directory")
	onlyProblems(t, tlsConfig(cert, missing), "aero2.yaml:5:5: server.tls.key_file: cannot read "+missing+": no such file or directory")
	onlyProblems(t, tlsConfig(otherCert, key), "aero2.yaml:4:5: server.tls.cert_file: "+otherCert+" and "+key+" are not a certificate and its key: tls: private key does not match public key")
	onlyProblems(t, tlsConfig(key, cert), "aero2.yaml:4:5: server.tls.cert_file: "+key+" and "+cert+" are not a certificate and its key")
	onlyProblems(t, tlsConfig(dir, key), "aero2.yaml:4:5: server.tls.cert_file: cannot read "+dir+": it is a directory")

	redis := func(tls string) string {
		return validBase + "store:\n  type: redis\n  redis:\n    addrs: [\"127.0.0.1:6379\"]\n    tls: " + tls + "\n"
	}
	if _, err := Parse("aero2.yaml", []byte(redis("{enabled: true, ca_file: "+cert+", cert_file: "+cert+", key_file: "+key+"}")), noEnv); err != nil {
		t.Fatalf("good redis files refused: %v", err)
	}
	onlyProblems(t, redis("{enabled: true, ca_file: "+key+"}"), "aero2.yaml:14:26: store.redis.tls.ca_file: no PEM certificate in "+key)
	onlyProblems(t, redis("{enabled: true, ca_file: "+missing+", cert_file: "+cert+", key_file: "+missing+"}"),
		"store.redis.tls.ca_file: cannot read "+missing, "store.redis.tls.key_file: cannot read "+missing)

	onlyProblems(t, validBase+"routes:\n  - path: /a\n    upstream: https://h\n    tls: {ca_file: "+missing+"}\n",
		"aero2.yaml:13:11: routes[0].tls.ca_file: cannot read "+missing+": no such file or directory")
}

func TestDisplayNameAndAutoRedirect(t *testing.T) {
	// The default application is shown by its issuer's host, never as
	// "default"; a named one by its name; display_name wins over both.
	cfg, err := Parse("aero2.yaml", []byte(validBase), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Apps()[0].DisplayName; got != "auth.example.com" {
		t.Errorf("default application's display name = %q, want its issuer's host", got)
	}
	cfg, err = Parse("aero2.yaml", []byte(validBase+"display_name: Example Corp\nauto_redirect: true\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if a := cfg.Apps()[0]; a.DisplayName != "Example Corp" || !a.AutoRedirect {
		t.Errorf("display_name %q, auto_redirect %v", a.DisplayName, a.AutoRedirect)
	}

	// auto_redirect with two providers has no one provider to go to.
	onlyProblems(t, validBase+"  - id: gh\n    type: github\nauto_redirect: true\n",
		`aero2.yaml:12:1: auto_redirect: needs exactly one identity provider, and the application has 2`)
	onlyProblems(t, validBase+"display_name: \"two\\nlines\"\n",
		`aero2.yaml:10:1: display_name: expected a name of at most 100 characters, without control characters`)
	onlyProblems(t, validBase+"display_name: "+strings.Repeat("x", 101)+"\n",
		`display_name: expected a name of at most 100 characters`)
}

func TestSigningAlgorithmPerApplication(t *testing.T) {
	cfg, err := Parse("aero2.yaml", []byte(validBase), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.SigningKeys.Algorithm; got != "RS256" {
		t.Errorf("default signing_keys.algorithm = %q, want RS256", got)
	}
	for _, alg := range SigningAlgorithms {
		cfg, err := Parse("aero2.yaml", []byte(validBase+"signing_keys: {algorithm: "+alg+"}\n"), noEnv)
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		if cfg.SigningKeys.Algorithm != alg {
			t.Errorf("algorithm = %q, want %q", cfg.SigningKeys.Algorithm, alg)
		}
	}
	// Symmetric, unsigned, other curves, and a case slip: refused at the
	// key's line and column.
	for _, alg := range []string{"HS256", "none", "ES384", "es256", "PS256"} {
		wantProblem(t, parseProblems(t, validBase+"signing_keys:\n  algorithm: "+alg+"\n", noEnv),
			`aero2.yaml:11:3: signing_keys.algorithm: expected one of RS256, ES256, EdDSA, got "`+alg+`"`)
	}
	src := `
secrets:
  cookie_keys: ["0123456789abcdef0123456789abcdef"]
  storage_key: "fedcba9876543210fedcba9876543210"
applications:
  - name: shop
    issuer: https://shop.example.com
    identity_providers: [{id: corp, type: oidc}]
    signing_keys: {algorithm: EdDSA}
  - name: blog
    issuer: https://blog.example.com
    identity_providers: [{id: corp, type: oidc}]
    signing_keys: {algorithm: HS512}
`
	wantProblem(t, parseProblems(t, src, noEnv), `applications[1].signing_keys.algorithm: expected one of RS256, ES256, EdDSA, got "HS512"`)
	cfg, err = Parse("x", []byte(strings.Replace(src, "HS512", "ES256", 1)), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if apps := cfg.Apps(); apps[0].SigningKeys.Algorithm != "EdDSA" || apps[1].SigningKeys.Algorithm != "ES256" {
		t.Errorf("per-application algorithms: %q, %q", apps[0].SigningKeys.Algorithm, apps[1].SigningKeys.Algorithm)
	}
}

func TestBackchannelLogoutURI(t *testing.T) {
	client := func(extra string) string {
		return validBase + "clients:\n  - id: rp\n    secret: \"0123456789abcdef0123456789abcdef\"\n    redirect_uris: [\"https://rp.example/cb\"]\n" + extra
	}
	if _, err := Parse("aero2.yaml", []byte(client("    backchannel_logout_uri: https://rp.example/bcl\n    backchannel_logout_session_required: true\n")), noEnv); err != nil {
		t.Fatal(err)
	}
	for uri, want := range map[string]string{
		"http://rp.example/bcl":     "expected https",
		"https://user@rp.example/b": "must not have user info",
		"https://rp.example/b#frag": "must not have user info or a fragment",
		"ftp://rp.example/bcl":      "expected an https URL",
		"/relative":                 "expected an absolute https URL",
	} {
		wantProblem(t, parseProblems(t, client("    backchannel_logout_uri: \""+uri+"\"\n"), noEnv), "aero2.yaml:14:5: clients[0].backchannel_logout_uri: "+want)
	}
	wantProblem(t, parseProblems(t, client("    backchannel_logout_session_required: true\n"), noEnv),
		"clients[0].backchannel_logout_session_required: only with a backchannel_logout_uri")
}

// BenchmarkParseLongFlowLine: a configuration with many values on one
// flow line (2,000 dev users) parses in time linear in its size; the
// check for values folded over lines used to read the whole line again
// for each value on it (4.6 s per parse of this one before, 15-36 ms
// now, in the same run).
//
//	go test -run '^$' -bench ParseLongFlowLine ./config/
func BenchmarkParseLongFlowLine(b *testing.B) {
	var src strings.Builder
	src.WriteString(validBase + "    config:\n      users: [")
	for i := range 2000 {
		if i > 0 {
			src.WriteString(", ")
		}
		fmt.Fprintf(&src, "{username: u%d, name: U, email: u%d@example.com}", i, i)
	}
	src.WriteString("]\n")
	data := []byte(src.String())
	for b.Loop() {
		if _, err := Parse("aero2.yaml", data, noEnv); err != nil {
			b.Fatal(err)
		}
	}
}
