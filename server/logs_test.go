package server_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aero2/aero2/logging"
	"github.com/aero2/aero2/server"
	"github.com/aero2/aero2/server/servertest"
)

// logLines collects JSON log lines, as `aero2 serve` writes them when
// standard error is not a terminal.
type logLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// lines returns every line so far, decoded, failing the test on a line
// that is not a JSON object or that carries a key twice (json.Unmarshal
// would silently keep the last).
func (l *logLines) lines(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	raw := l.buf.String()
	l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(raw), "\n") {
		if dup := repeatedKey(line); dup != "" {
			t.Errorf("key %q twice in log line %s", dup, line)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, line)
		}
		out = append(out, m)
	}
	return out
}

// repeatedKey is a key that appears twice in one JSON object of line, at
// any depth, or "".
func repeatedKey(line string) string {
	dec := json.NewDecoder(strings.NewReader(line))
	var walk func() string
	walk = func() string {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				k, _ := dec.Token()
				key, _ := k.(string)
				if seen[key] {
					return key
				}
				seen[key] = true
				if d := walk(); d != "" {
					return d
				}
			}
			dec.Token() // }
		case json.Delim('['):
			for dec.More() {
				if d := walk(); d != "" {
					return d
				}
			}
			dec.Token() // ]
		}
		return ""
	}
	return walk()
}

// access finds the access log line of method and path (the last one).
func access(t *testing.T, lines []map[string]any, method, path string) map[string]any {
	t.Helper()
	var found map[string]any
	for _, l := range lines {
		if l["msg"] == "request" && l["method"] == method && l["path"] == path {
			found = l
		}
	}
	if found == nil {
		t.Fatalf("no access log line for %s %s", method, path)
	}
	return found
}

const logsServiceSecret = "logs-service-secret-0123456789abcdef0123"

// TestLogLines: what a signed-in browser, the proxy, a service client and
// a forward-auth check make Aero2 log, as JSON lines. No line carries a
// key twice ("app" was written by the server and by the packages). Every
// duration is duration_ms, a number of milliseconds. The access log names
// the signed-in user (by ID: never a name or an email), the client of a
// token request, and for forward-auth the request that was checked
// instead of /.aero2/forward-auth; never a query.
func TestLogLines(t *testing.T) {
	rc := &recorder{}
	up := httptest.NewServer(rc)
	defer up.Close()
	var logs logLines
	// The JSON log as `aero2 serve` builds it, so that the access log
	// takes its production path.
	log := slog.New(logging.NewJSON(&logs, slog.LevelDebug))
	in := servertest.StartWith(t, servertest.DevConfig+`
clients:
  - id: service
    secret: "`+logsServiceSecret+`"
    grant_types: [client_credentials]
    audience: [aero2-proxy]
routes:
  - path: /app
    upstream: "`+up.URL+`"
  - path: /api
    upstream: "`+up.URL+`"
    policy: {allow_client_credentials: true}
  - host: checked.localhost
`, servertest.Options{Server: server.Options{Logger: log}})

	// A browser signs in through the proxy (which signs in at Aero2's own
	// provider, in process) and uses the app and the account page.
	b := servertest.NewBrowser(t)
	if p := b.SignInDev(in.URL+"/app/first?code=not-logged", "alice"); p.Status != 200 {
		t.Fatalf("sign-in ended at %d %s", p.Status, p.URL)
	}
	alice := rc.last(t).Get("X-Forwarded-User")
	b.Get(in.URL + "/app/second")
	b.Get(in.URL + "/account")

	// A service client gets a token and calls an API route with it.
	tok := clientToken(t, in.URL, "service", logsServiceSecret, "aero2-proxy")
	if res := bearerDo(t, in.URL+"/api/items", tok); res.StatusCode != 200 {
		t.Fatalf("bearer call: %d", res.StatusCode)
	}

	// A front proxy asks about a request for another host.
	req, _ := http.NewRequest(http.MethodGet, in.URL+"/.aero2/forward-auth?redirect=0", nil)
	req.Header.Set("X-Forwarded-Method", "POST")
	req.Header.Set("X-Forwarded-Host", "checked.localhost")
	req.Header.Set("X-Forwarded-Uri", "/reports/2026?state=not-logged")
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forward-auth: %v %v", res, err)
	} else {
		res.Body.Close()
	}

	lines := logs.lines(t)
	if testing.Verbose() {
		t.Log(logs.buf.String())
	}
	for _, l := range lines {
		for k, v := range l {
			if strings.Contains(k, "duration") || strings.Contains(k, "timeout") {
				if _, isNumber := v.(float64); !strings.HasSuffix(k, "_ms") || !isNumber {
					t.Errorf("%s=%v: durations are <name>_ms, a number of milliseconds: %v", k, v, l)
				}
			}
		}
	}
	var keysLogged bool
	for _, l := range lines {
		if l["msg"] == "signing keys: generated the first keys" && l["app"] == "default" {
			keysLogged = true
		}
	}
	if !keysLogged {
		t.Error("no line about the first signing keys, with app once")
	}
	raw := logs.buf.String()
	for _, secret := range []string{"not-logged", "alice@example.com", "Alice Admin", logsServiceSecret, tok} {
		if strings.Contains(raw, secret) {
			t.Errorf("the logs contain %q", secret)
		}
	}

	for _, tc := range []struct {
		method, path string
		want         map[string]any
	}{
		// The browser on the app, through the proxy: the user, no client.
		{"GET", "/app/second", map[string]any{"status": 200.0, "user": alice, "client_id": nil}},
		// Aero2's own page, through the session manager.
		{"GET", "/account", map[string]any{"status": 200.0, "user": alice}},
		// The proxy's code exchange at its provider, in process: the
		// client and the user it got tokens for.
		{"POST", "/oauth2/token", map[string]any{"status": 200.0, "client_id": "service", "user": nil}},
		// The authorization request: its client and the signed-in user.
		{"GET", "/oauth2/authorize", map[string]any{"client_id": "aero2-proxy", "user": alice}},
		// The service's token on the API: the client, and no user.
		{"GET", "/api/items", map[string]any{"status": 200.0, "client_id": "service", "user": nil}},
		// Forward-auth: the request that was checked, not the endpoint.
		{"POST", "/reports/2026", map[string]any{"status": 401.0, "host": "checked.localhost", "forward_auth": true}},
	} {
		l := access(t, lines, tc.method, tc.path)
		if d, ok := l["duration_ms"].(float64); !ok || d < 0 || l["duration"] != nil {
			t.Errorf("%s %s: duration_ms = %v (%v)", tc.method, tc.path, l["duration_ms"], l)
		}
		for k, v := range tc.want {
			if l[k] != v {
				t.Errorf("%s %s: %s = %v, want %v in %v", tc.method, tc.path, k, l[k], v, l)
			}
		}
	}
	// The proxy's own token request carries its client and alice.
	var proxyToken bool
	for _, l := range lines {
		if l["msg"] == "request" && l["path"] == "/oauth2/token" && l["client_id"] == "aero2-proxy" && l["user"] == alice {
			proxyToken = true
		}
	}
	if !proxyToken {
		t.Error("no access line for the proxy's code exchange naming aero2-proxy and the user")
	}
	for _, l := range lines {
		if l["path"] == "/.aero2/forward-auth" {
			t.Errorf("forward-auth logged as its endpoint: %v", l)
		}
	}
}
