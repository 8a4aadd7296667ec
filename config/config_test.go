package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const validBase = `
server:
  public_url: https://auth.example.com
secrets:
  cookie_keys: ["0123456789abcdef0123456789abcdef"]
  storage_key: "fedcba9876543210fedcba9876543210"
identity_providers:
  - id: corp
    type: oidc
`

func noEnv(string) (string, bool) { return "", false }

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// parseProblems parses src and returns the problems' texts; it fails the
// test when src is accepted.
func parseProblems(t *testing.T, src string, getenv func(string) (string, bool)) []string {
	t.Helper()
	_, err := Parse("aero2.yaml", []byte(src), getenv)
	if err == nil {
		t.Fatalf("config accepted, want problems:\n%s", src)
	}
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("error is %T, want Problems: %v", err, err)
	}
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Error()
	}
	return out
}

func wantProblem(t *testing.T, got []string, want string) {
	t.Helper()
	for _, g := range got {
		if strings.Contains(g, want) {
			return
		}
	}
	t.Errorf("no problem contains %q; got:\n  %s", want, strings.Join(got, "\n  "))
}

func TestValidMinimalConfigGetsDefaults(t *testing.T) {
	cfg, err := Parse("aero2.yaml", []byte(validBase), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.Listen != DefaultListen || cfg.Store.Type != "memory" || cfg.Log.Level != "info" {
		t.Errorf("defaults not applied: %+v %+v %+v", cfg.Server, cfg.Store, cfg.Log)
	}
	apps := cfg.Apps()
	if len(apps) != 1 || apps[0].Name != DefaultApplication || apps[0].Issuer != "https://auth.example.com" {
		t.Fatalf("default application = %+v", apps)
	}
	if apps[0].Session.IdleTimeout != DefaultSessionIdle || apps[0].Session.CookieName != "aero2_session" {
		t.Errorf("session defaults: %+v", apps[0].Session)
	}
	if apps[0].IdentityProviders[0].Name != "corp" || apps[0].IdentityProviders[0].Path != "identity_providers[0]" {
		t.Errorf("idp defaults: %+v", apps[0].IdentityProviders[0])
	}
}

func TestUnknownKeyNamesKeyAndLineCol(t *testing.T) {
	got := parseProblems(t, validBase+"\nsesion:\n  idle_timeout: 1h\n", noEnv)
	wantProblem(t, got, `aero2.yaml:11:1: sesion: unknown key "sesion" (did you mean "session"?)`)
	got = parseProblems(t, strings.Replace(validBase, "  public_url:", "  listen: :1\n  publc_url: x\n  public_url:", 1), noEnv)
	wantProblem(t, got, `aero2.yaml:4:3: server.publc_url: unknown key "publc_url" (did you mean "public_url"?)`)
}

func TestWrongTypesReportedWithPosition(t *testing.T) {
	src := validBase + `
session:
  idle_timeout: 10
  absolute_timeout: forever
insecure_dev: "maybe"
store:
  redis:
    db: two
    addrs: 127.0.0.1:6379
`
	got := parseProblems(t, src, noEnv)
	wantProblem(t, got, `aero2.yaml:12:17: session.idle_timeout: expected a duration such as 30s, 10m or 12h, got "10"`)
	wantProblem(t, got, `aero2.yaml:13:21: session.absolute_timeout: expected a duration`)
	wantProblem(t, got, `aero2.yaml:14:15: insecure_dev: expected true or false, got "maybe"`)
	wantProblem(t, got, `aero2.yaml:17:9: store.redis.db: expected a whole number, got "two"`)
	wantProblem(t, got, `aero2.yaml:18:12: store.redis.addrs: expected a list`)
	if len(got) != 5 {
		t.Errorf("want all 5 problems at once, got %d:\n%s", len(got), strings.Join(got, "\n"))
	}
}

func TestRepeatedKeyIsAProblem(t *testing.T) {
	got := parseProblems(t, validBase+"log:\n  level: info\n  level: debug\n", noEnv)
	wantProblem(t, got, `log.level: key repeated (first at line 11)`)
}

func TestEnvExpansion(t *testing.T) {
	src := strings.Replace(validBase, `"fedcba9876543210fedcba9876543210"`, `"${STORAGE_KEY}"`, 1) + `
store:
  type: ${STORE_TYPE:-redis}
  redis:
    addrs: ["${REDIS_HOST:-localhost}:6379"]
    db: ${REDIS_DB}
    password: "pa$$word"
`
	cfg, err := Parse("aero2.yaml", []byte(src), env(map[string]string{
		"STORAGE_KEY": "from-the-environment-0123456789abcdef",
		"REDIS_DB":    "3",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Secrets.StorageKey != "from-the-environment-0123456789abcdef" {
		t.Errorf("storage_key = %q", cfg.Secrets.StorageKey)
	}
	r := cfg.Store.Redis
	if cfg.Store.Type != "redis" || r.Addrs[0] != "localhost:6379" || r.DB != 3 || r.Password != "pa$word" {
		t.Errorf("expansion wrong: type=%q redis=%+v", cfg.Store.Type, r)
	}
}

func TestEnvValueCannotInjectStructure(t *testing.T) {
	src := validBase + "log:\n  level: ${LEVEL}\n"
	got := parseProblems(t, src, env(map[string]string{"LEVEL": "info\ninsecure_dev: true"}))
	wantProblem(t, got, `log.level: expected debug, info, warn or error`)
}

func TestMissingSecretNamesVariableAndPosition(t *testing.T) {
	src := strings.Replace(validBase, `"fedcba9876543210fedcba9876543210"`, `"${AERO2_STORAGE_KEY}"`, 1)
	got := parseProblems(t, src, noEnv)
	wantProblem(t, got, `aero2.yaml:6:16: secrets.storage_key: environment variable AERO2_STORAGE_KEY is not set`)
}

func TestMissingAndShortSecrets(t *testing.T) {
	src := `
server: {public_url: "https://a.example"}
secrets:
  cookie_keys: ["short"]
identity_providers: [{id: x, type: dev}]
`
	got := parseProblems(t, src, noEnv)
	wantProblem(t, got, `aero2.yaml:4:17: secrets.cookie_keys[0]: too short: 5 bytes, need at least 32`)
	wantProblem(t, got, `aero2.yaml:3:1: secrets.storage_key: required`)
}

func TestPlainHTTPNeedsLoopbackAndInsecureDev(t *testing.T) {
	got := parseProblems(t, strings.Replace(validBase, "https://auth.example.com", "http://auth.example.com", 1), noEnv)
	wantProblem(t, got, `server.public_url: plain http is accepted only for localhost`)
	got = parseProblems(t, strings.Replace(validBase, "https://auth.example.com", "http://localhost:8080", 1), noEnv)
	wantProblem(t, got, `server.public_url: plain http needs insecure_dev: true`)
	if _, err := Parse("x", []byte(strings.Replace(validBase, "https://auth.example.com", "http://localhost:8080", 1)+"insecure_dev: true\n"), noEnv); err != nil {
		t.Errorf("http://localhost with insecure_dev refused: %v", err)
	}
}

func TestApplications(t *testing.T) {
	src := `
secrets:
  cookie_keys: ["0123456789abcdef0123456789abcdef"]
  storage_key: "fedcba9876543210fedcba9876543210"
applications:
  - name: shop
    issuer: https://shop.example.com
    identity_providers: [{id: corp, type: oidc}]
  - name: blog
    issuer: https://auth.example.com/blog/
    session: {idle_timeout: 1h}
    identity_providers: [{id: corp, type: oidc}]
`
	cfg, err := Parse("x", []byte(src), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	apps := cfg.Apps()
	if len(apps) != 2 || apps[1].Issuer != "https://auth.example.com/blog" || apps[1].Session.CookieName != "aero2_session_blog" {
		t.Fatalf("apps = %+v", apps)
	}

	bad := src + `  - name: Shop!
    issuer: https://shop.example.com
    identity_providers: []
  - name: blog
    issuer: ftp://x
    identity_providers: [{id: a, type: dev}, {id: a, type: dev}, {id: "B C"}]
`
	got := parseProblems(t, bad, noEnv)
	for _, w := range []string{
		`applications[2].name: expected lower-case letters`,
		`applications[2].issuer: issuer "https://shop.example.com" is used by two applications`,
		`applications[2].identity_providers: required`,
		`applications[3].name: application "blog" is defined twice`,
		`applications[3].issuer: expected an https URL`,
		`applications[3].identity_providers[1].id: identity provider "a" is defined twice`,
		`applications[3].identity_providers[2].id: expected lower-case letters`,
		`applications[3].identity_providers[2].type: required`,
	} {
		wantProblem(t, got, w)
	}

	mixed := src + "identity_providers: [{id: x, type: dev}]\n"
	wantProblem(t, parseProblems(t, mixed, noEnv), "top-level application keys")
}

func TestSyntaxErrorHasLine(t *testing.T) {
	got := parseProblems(t, "server:\n  listen: [\n", noEnv)
	if !strings.HasPrefix(got[0], "aero2.yaml:") || !strings.Contains(got[0], "invalid YAML") {
		t.Errorf("got %q", got[0])
	}
}

func TestAliasBombIsRefused(t *testing.T) {
	src := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f", "g"} {
		src += n + ": &" + n + " [*" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + "]\n"
		prev = n
	}
	got := parseProblems(t, src, noEnv)
	if len(got) > 200 {
		t.Errorf("%d problems for an alias bomb; want it cut short", len(got))
	}
}

func TestLoadFileErrors(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !strings.Contains(err.Error(), "nope.yaml: no such file or directory") {
		t.Errorf("err = %v", err)
	}
	p := filepath.Join(t.TempDir(), "a.yaml")
	if err := os.WriteFile(p, []byte(validBase+"log: {level: loud}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(p)
	if err == nil || !strings.Contains(err.Error(), p+":10:") || strings.Contains(err.Error(), "\n") {
		t.Errorf("want one problem naming %s:10: got %v", p, err)
	}
}

func TestDecodeSubtreeStrictly(t *testing.T) {
	src := validBase + "    config:\n      issuer: https://idp.example.com\n      scopes: [a]\n      sekret: x\n"
	cfg, err := Parse("aero2.yaml", []byte(src), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Issuer  string        `yaml:"issuer"`
		Scopes  []string      `yaml:"scopes"`
		Timeout time.Duration `yaml:"timeout"`
	}
	idp := cfg.IdentityProviders[0]
	err = cfg.Decode(&idp.Config, idp.Path+".config", &c)
	if err == nil || !strings.Contains(err.Error(), `aero2.yaml:13:7: identity_providers[0].config.sekret: unknown key "sekret"`) {
		t.Fatalf("err = %v", err)
	}
	if got := cfg.Problem("identity_providers[0].type", "unknown type").Error(); got != `aero2.yaml:9:5: identity_providers[0].type: unknown type` {
		t.Errorf("Problem() = %q", got)
	}
}

func TestExpandString(t *testing.T) {
	e := env(map[string]string{"A": "1", "EMPTY": ""})
	for in, want := range map[string]string{
		"${A}":        "1",
		"x${A}y${A}":  "x1y1",
		"${B:-dflt}":  "dflt",
		"${EMPTY:-d}": "",
		"$$":          "$",
		"$${A}":       "${A}",
		"cost $5":     "cost $5",
		"end$":        "end$",
		"${B:-}":      "",
	} {
		got, err := expandString(in, e)
		if err != nil || got != want {
			t.Errorf("expandString(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"${B}", "${", "${A", "${1A}", "${A-B}"} {
		if _, err := expandString(in, e); err == nil {
			t.Errorf("expandString(%q) accepted", in)
		}
	}
}

func TestStructuralAndValidationProblemsTogether(t *testing.T) {
	src := strings.Replace(validBase, "server:", "sever:", 1) + "log: {level: [debug], format: loud}\n"
	got := parseProblems(t, src, noEnv)
	wantProblem(t, got, `sever: unknown key "sever" (did you mean "server"?)`)
	wantProblem(t, got, `server.public_url: required`)
	wantProblem(t, got, `log.level: expected a string, got a list`)
	wantProblem(t, got, `log.format: expected auto, text or json, got "loud"`)
	for _, g := range got {
		if strings.Contains(g, "log.level: expected debug") {
			t.Errorf("a wrongly typed value is reported twice: %s", g)
		}
	}
}
