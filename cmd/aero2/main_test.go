package main

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/store/redis/redistest"
)

func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "aero2.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const good = `insecure_dev: true
server: {public_url: "http://localhost:8080"}
secrets:
  cookie_keys: ["0123456789abcdef0123456789abcdef"]
  storage_key: "fedcba9876543210fedcba9876543210"
identity_providers:
  - id: dev
    type: dev
    config: {users: [{username: alice}]}
`

func TestVersionAndUsage(t *testing.T) {
	code, out, _ := runCmd(t, "version")
	if code != 0 || !strings.HasPrefix(out, "aero2 ") {
		t.Errorf("version: %d %q", code, out)
	}
	if code, _, errs := runCmd(t); code != 2 || !strings.Contains(errs, "Usage:") {
		t.Errorf("no args: %d %q", code, errs)
	}
	if code, _, errs := runCmd(t, "frobnicate"); code != 2 || !strings.Contains(errs, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: %d %q", code, errs)
	}
	t.Setenv("AERO2_CONFIG", "")
	if code, _, errs := runCmd(t, "check"); code != 2 || !strings.Contains(errs, "pass --config FILE or set AERO2_CONFIG") {
		t.Errorf("check without config: %d %q", code, errs)
	}
}

func TestCheckGoodConfig(t *testing.T) {
	p := writeConfig(t, good)
	if code, out, errs := runCmd(t, "check", "--config", p); code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("check: %d %q %q", code, out, errs)
	}
	t.Setenv("AERO2_CONFIG", p)
	if code, _, errs := runCmd(t, "check"); code != 0 {
		t.Fatalf("check via AERO2_CONFIG: %d %q", code, errs)
	}
}

// TestCheckBrokenConfigs: each broken file is named with its problems'
// line:col, one per line, exit 1, and no panic or stack trace.
func TestCheckBrokenConfigs(t *testing.T) {
	for name, tc := range map[string]struct {
		body string
		want []string
	}{
		"unknown key": {strings.Replace(good, "server:", "sever:", 1),
			[]string{`:2:1: sever: unknown key "sever" (did you mean "server"?)`, `server.public_url: required`}},
		"wrong type": {good + "log: {level: [debug]}\n",
			[]string{`:10:14: log.level: expected a string, got a list`}},
		"missing secret": {strings.Replace(good, `"fedcba9876543210fedcba9876543210"`, `"${AERO2_TEST_UNSET_SECRET}"`, 1),
			[]string{`:5:16: secrets.storage_key: environment variable AERO2_TEST_UNSET_SECRET is not set`}},
		"bad yaml": {"server: {public_url: [\n",
			[]string{`invalid YAML`}},
		"dev without insecure_dev": {strings.Replace(good, "insecure_dev: true\n", "", 1),
			[]string{`:1:10: server.public_url: plain http needs insecure_dev: true`}},
		"route paths upstreams read differently": {good + "routes:\n  - {path: /admin;x, upstream: \"http://127.0.0.1:1\"}\n  - {path: /admin., upstream: \"http://127.0.0.1:1\"}\n  - {path: /stra\u00dfe, upstream: \"http://127.0.0.1:1\"}\n  - {path: /STRASSE, upstream: \"http://127.0.0.1:1\"}\n",
			[]string{`:11:6: routes[0].path: "/admin;x" cannot be matched safely: a servlet container, ;params stripped reads it as "/admin"`,
				`:12:6: routes[1].path: "/admin." cannot be matched safely: a case-insensitive file system reads it as "/admin"`,
				`:14:6: routes[3].path: a case-insensitive server reads it as the path of routes[2] ("/straße")`}},
		"connector config": {strings.Replace(good, "{username: alice}", "{username: alice, pasword: x}", 1),
			[]string{`:9:40: identity_providers[0].config.users[0].pasword: unknown key "pasword"`}},
		"missing TLS files": {strings.Replace(good, `server: {public_url: "http://localhost:8080"}`, "server:\n  public_url: \"http://localhost:8080\"\n  tls: {cert_file: /nonexistent/tls.crt, key_file: /nonexistent/tls.key}", 1),
			[]string{`:4:9: server.tls.cert_file: cannot read /nonexistent/tls.crt: no such file or directory`, `:4:42: server.tls.key_file: cannot read /nonexistent/tls.key`}},
		"key indented too far": {strings.Replace(good, "    type: dev\n", "    type: dev\n      name: Dev\n", 1),
			[]string{`:9:7: invalid YAML: this key is indented more than the key above it`}},
		"policy key at route level": {good + "routes:\n  - path: /a\n    upstream: http://127.0.0.1:3000\n    policy:\n    allowed_groups: [admins]\n",
			[]string{`:14:5: routes[0].allowed_groups: unknown key "allowed_groups" (it belongs under policy)`}},
		"host that is a URL": {good + "routes:\n  - host: https://app.example.com\n    upstream: http://127.0.0.1:3000\n",
			[]string{`:11:5: routes[0].host: expected a host, not a URL: write app.example.com`}},
	} {
		t.Run(name, func(t *testing.T) {
			p := writeConfig(t, tc.body)
			code, out, errs := runCmd(t, "check", "--config", p)
			if code != 1 || out != "" {
				t.Errorf("exit %d, stdout %q", code, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(errs, p+w) && !strings.Contains(errs, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errs)
				}
				if strings.HasPrefix(w, ":") && !strings.Contains(errs, p+w) {
					t.Errorf("problem not prefixed by the file name %s:\n%s", p, errs)
				}
			}
			if strings.Contains(errs, "goroutine") || strings.Contains(errs, "panic") {
				t.Errorf("stack trace in output:\n%s", errs)
			}
		})
	}
}

func TestMissingFile(t *testing.T) {
	code, _, errs := runCmd(t, "check", "--config", "/nonexistent/aero2.yaml")
	if code != 1 || strings.TrimSpace(errs) != "/nonexistent/aero2.yaml: no such file or directory" {
		t.Errorf("%d %q", code, errs)
	}
}

func TestServeUnreachableRedisExitsNonZero(t *testing.T) {
	p := writeConfig(t, good+"store: {type: redis, redis: {addrs: [\"127.0.0.1:1\"], dial_timeout: 200ms}}\n")
	code, _, errs := runCmd(t, "serve", "--config", p)
	lines := strings.Split(strings.TrimSpace(errs), "\n")
	last := lines[len(lines)-1]
	if code != 1 || !strings.Contains(last, "aero2: redis at 127.0.0.1:1:") {
		t.Errorf("exit %d, last line %q", code, last)
	}
}

func TestKeysRotate(t *testing.T) {
	if code, _, errs := runCmd(t, "keys"); code != 2 || !strings.Contains(errs, "\n  rotate ") || !strings.Contains(errs, "\n  list ") {
		t.Errorf("keys without rotate: %d %q", code, errs)
	}
	// The memory store lives in one server process: rotating it from the
	// command line would change nothing, so the command says so.
	p := writeConfig(t, good)
	if code, _, errs := runCmd(t, "keys", "rotate", "--config", p); code != 1 || !strings.Contains(errs, "store.type: redis") {
		t.Errorf("keys rotate on memory: %d %q", code, errs)
	}
	cfg := good + "store: {type: redis, redis: {addrs: [\"" + redistest.Addr() + "\"], key_prefix: " + redistest.Config(t).KeyPrefix + "}}\n"
	p = writeConfig(t, cfg)
	code, out, errs := runCmd(t, "keys", "rotate", "--config", p)
	if code != 0 || !strings.Contains(out, "default: rotated; current kid ") || !strings.Contains(out, "0 previous") {
		t.Fatalf("keys rotate: %d %q %q", code, out, errs)
	}
	first := out
	code, out, _ = runCmd(t, "keys", "rotate", "--config", p, "--app", "default")
	if code != 0 || out == first || !strings.Contains(out, "1 previous key(s)") {
		t.Fatalf("second rotation: %d %q", code, out)
	}
	if code, _, errs := runCmd(t, "keys", "rotate", "--config", p, "--app", "nope"); code != 1 || !strings.Contains(errs, `no application named "nope"`) {
		t.Errorf("unknown app: %d %q", code, errs)
	}
}

// TestEachCommandHasItsOwnHelp: `aero2 help X`, `aero2 X -h` and
// `aero2 X --help` print X's own usage and flags on standard output and
// exit 0, not the general usage.
func TestEachCommandHasItsOwnHelp(t *testing.T) {
	for _, tc := range []struct {
		args  []string // the command's words
		usage string
		says  []string
	}{
		{[]string{"serve"}, "Usage: aero2 serve [--config FILE]", []string{"SIGTERM", "-config string"}},
		{[]string{"check"}, "Usage: aero2 check [--config FILE]", []string{"FILE:LINE:COL", "forward-auth", "-config string"}},
		{[]string{"keys", "rotate"}, "Usage: aero2 keys rotate [--config FILE] [--app NAME]", []string{"store.type: redis", "-app string", "-config string"}},
		{[]string{"users", "list"}, "Usage: aero2 users list [--config FILE] [--app NAME] [--json]", []string{"store.type: redis", "-app string", "-json"}},
		{[]string{"users", "show"}, "Usage: aero2 users show [--config FILE] [--app NAME] [--json] USER_ID", []string{"identity provider accounts", "-json"}},
		{[]string{"users", "disable"}, "Usage: aero2 users disable", []string{"can no longer sign in", "refresh tokens", "proxy.session_cache"}},
		{[]string{"users", "enable"}, "Usage: aero2 users enable", []string{"sign in again"}},
		{[]string{"users", "delete"}, "Usage: aero2 users delete", []string{"with a new ID"}},
		{[]string{"sessions", "list"}, "Usage: aero2 sessions list", []string{"-user string"}},
		{[]string{"sessions", "revoke"}, "Usage: aero2 sessions revoke [--config FILE] [--app NAME] [--json] (SESSION_ID | --user USER_ID)", []string{"proxy sessions", "-user string"}},
		{[]string{"consents", "list"}, "Usage: aero2 consents list", []string{"consent page"}},
		{[]string{"consents", "revoke"}, "Usage: aero2 consents revoke", []string{"-client string", "-user string"}},
		{[]string{"clients", "list"}, "Usage: aero2 clients list", []string{"never", "any store.type"}},
		{[]string{"keys", "list"}, "Usage: aero2 keys list", []string{"previous", "-json"}},
		{[]string{"migrate"}, "Usage: aero2 migrate [--config FILE]", []string{"forward", "migrate_on_start", "-config string"}},
		{[]string{"store", "copy"}, "Usage: aero2 store copy --from FILE --to FILE", []string{"idempotent", "storage_key", "-from string", "-to string"}},
		{[]string{"secret"}, "Usage: aero2 secret\n", []string{"32 random bytes", "$(aero2 secret)"}},
		{[]string{"version"}, "Usage: aero2 version\n", []string{"Go version"}},
	} {
		name := strings.Join(tc.args, " ")
		t.Run(name, func(t *testing.T) {
			var first string
			for _, args := range [][]string{
				append([]string{"help"}, tc.args...),
				append(append([]string(nil), tc.args...), "-h"),
				append(append([]string(nil), tc.args...), "--help"),
			} {
				code, out, errs := runCmd(t, args...)
				if code != 0 || errs != "" {
					t.Errorf("%q: exit %d, stderr %q", args, code, errs)
				}
				if !strings.HasPrefix(out, tc.usage) {
					t.Errorf("%q: output does not start with %q:\n%s", args, tc.usage, out)
				}
				for _, s := range tc.says {
					if !strings.Contains(out, s) {
						t.Errorf("%q: output lacks %q:\n%s", args, s, out)
					}
				}
				if strings.Contains(out, "Commands:") {
					t.Errorf("%q: printed the general usage:\n%s", args, out)
				}
				if first == "" {
					first = out
				} else if out != first {
					t.Errorf("%q prints another help than %q", args, "help "+name)
				}
			}
		})
	}
	// The general usage lists every command; `help keys` its one command.
	code, out, _ := runCmd(t, "help")
	for _, c := range []string{"serve", "check", "users list", "users disable", "sessions revoke", "consents revoke", "clients list", "keys list", "keys rotate", "secret", "version", "help"} {
		if code != 0 || !strings.Contains(out, "\n  "+c+" ") {
			t.Errorf("help: exit %d, no %q in:\n%s", code, c, out)
		}
	}
	for _, g := range []string{"keys", "users", "sessions", "consents", "clients"} {
		code, out, errs := runCmd(t, "help", g)
		_, out2, _ := runCmd(t, g, "--help")
		if code != 0 || errs != "" || !strings.Contains(out, "\n  list ") || !strings.Contains(out, "aero2 help "+g+" COMMAND") || out2 != out {
			t.Errorf("help %s: %d %q", g, code, out)
		}
	}
	if code, _, errs := runCmd(t, "users", "frob"); code != 2 || !strings.Contains(errs, `aero2 users: unknown command "frob"`) || !strings.Contains(errs, "\n  disable ") {
		t.Errorf("users frob: %d %q", code, errs)
	}
	if code, _, errs := runCmd(t, "users", "show"); code != 2 || !strings.Contains(errs, "missing argument") || !strings.Contains(errs, "Usage: aero2 users show") {
		t.Errorf("users show without an ID: %d %q", code, errs)
	}
	if code, _, errs := runCmd(t, "users", "show", "a", "b"); code != 2 || !strings.Contains(errs, `unexpected argument "b"`) {
		t.Errorf("users show a b: %d %q", code, errs)
	}
	if code, _, errs := runCmd(t, "help", "nope"); code != 2 || !strings.Contains(errs, `unknown command "nope"`) {
		t.Errorf("help nope: %d %q", code, errs)
	}
	// A wrong flag or argument: the command's help on standard error, exit 2.
	code, out, errs := runCmd(t, "check", "--bogus")
	if code != 2 || out != "" || !strings.Contains(errs, "flag provided but not defined: -bogus") || !strings.Contains(errs, "Usage: aero2 check") {
		t.Errorf("check --bogus: %d %q %q", code, out, errs)
	}
	if code, _, errs := runCmd(t, "version", "extra"); code != 2 || !strings.Contains(errs, `unexpected argument "extra"`) {
		t.Errorf("version extra: %d %q", code, errs)
	}
}

func TestSecretIsRandomAndLongEnough(t *testing.T) {
	code, out, _ := runCmd(t, "secret")
	_, out2, _ := runCmd(t, "secret")
	s := strings.TrimSuffix(out, "\n")
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if code != 0 || err != nil || len(raw) != 32 || len(s) < config.MinSecretLength {
		t.Fatalf("secret: %d %q (%v, %d bytes)", code, out, err, len(raw))
	}
	if out == out2 {
		t.Error("two secrets are the same")
	}
	// What it prints is a storage key `check` accepts.
	p := writeConfig(t, strings.Replace(good, "fedcba9876543210fedcba9876543210", s, 1))
	if code, _, errs := runCmd(t, "check", "--config", p); code != 0 {
		t.Errorf("check with a generated key: %d %q", code, errs)
	}
}

// TestCheckPrintsNotices: a route without upstream is valid (forward-auth
// only), and check says so at its line before OK.
func TestCheckPrintsNotices(t *testing.T) {
	p := writeConfig(t, good+"routes:\n  - host: app.localhost\n    upstream: http://127.0.0.1:3000\n  - host: app.localhost\n    path: /admin\n")
	code, out, errs := runCmd(t, "check", "--config", p)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || errs != "" || len(lines) != 2 ||
		!strings.HasPrefix(lines[0], p+":13:5: routes[1]: forward-auth only: this route has no upstream") ||
		lines[1] != p+": OK (1 application(s))" {
		t.Errorf("exit %d, stderr %q, stdout:\n%s", code, errs, out)
	}
}
