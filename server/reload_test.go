package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/server"
	"github.com/aero2/aero2/server/servertest"
)

// reloadConfig is a file for the reload tests: a public route, a
// protected one, and EXTRA in place of further routes.
const reloadConfig = `insecure_dev: true
server:
  public_url: "URL"
  listen: "127.0.0.1:0"
  rate_limits: {disabled: true}
store: {type: memory}
secrets:
  cookie_keys: ["` + servertest.CookieKey + `"]
  storage_key: "` + servertest.StorageKey + `"
identity_providers:
  - id: dev
    type: dev
    config:
      users:
        - {username: alice, email: alice@example.com}
routes:
  - path: /stable
    upstream: "UP"
    policy: {public: true}
  - path: /app
    upstream: "UP"
EXTRA`

// logBuffer collects log lines (and copies them to the test log).
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type reloadEnv struct {
	live *server.Live
	url  string
	file string
	tmpl string
	logs *logBuffer
	// release lets the upstream's /slow answer (releaseSlow).
	release     chan struct{}
	releaseOnce sync.Once
}

func (e *reloadEnv) releaseSlow() { e.releaseOnce.Do(func() { close(e.release) }) }

func startReload(t *testing.T) *reloadEnv {
	t.Helper()
	e := &reloadEnv{logs: &logBuffer{}, release: make(chan struct{})}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-e.release
		}
		w.Write([]byte("upstream " + r.URL.Path))
	}))
	t.Cleanup(up.Close)
	// Runs before up.Close (cleanups run last first): a test that failed
	// before releasing /slow must not leave Close waiting for it.
	t.Cleanup(e.releaseSlow)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.url = "http://" + ln.Addr().String()
	e.tmpl = strings.NewReplacer("URL", e.url, "UP", up.URL).Replace(reloadConfig)
	e.file = filepath.Join(t.TempDir(), "aero2.yaml")
	e.write(t, "  - {path: /slow, upstream: \""+up.URL+"\", policy: {public: true}}\n")
	cfg, err := config.Load(e.file)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(e.logs, testLog{t}), nil))
	if e.live, err = server.NewLive(context.Background(), cfg, server.Options{Logger: log}); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(e.live)
	hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	t.Cleanup(func() {
		hs.Close()
		e.live.Close()
	})
	return e
}

// testLog copies log lines to the test log while the test runs.
type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	defer func() { recover() }() // a line after the test ended
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// write writes the file with extra routes (YAML list entries).
func (e *reloadEnv) write(t *testing.T, extra string) {
	t.Helper()
	if err := os.WriteFile(e.file, []byte(strings.Replace(e.tmpl, "EXTRA", extra, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (e *reloadEnv) status(t *testing.T, c *http.Client, path string) int {
	t.Helper()
	res, err := c.Get(e.url + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// TestReloadUnderLoad: routes are added and removed by reloads while many
// clients keep requesting, a signed-in one among them; not one request
// fails, the signed-in browser stays signed in (sessions are in the
// store), each reload's routes are served right after it, and a request
// in flight across the reloads finishes on the configuration it started
// on, although the last reload removed its route.
func TestReloadUnderLoad(t *testing.T) {
	e := startReload(t)
	up := strings.TrimSuffix(strings.SplitN(e.tmpl, `upstream: "`, 2)[1], "\n")
	up = up[:strings.IndexByte(up, '"')]
	slowRoute := "  - {path: /slow, upstream: \"" + up + "\", policy: {public: true}}\n"
	extraRoute := "  - {path: /extra, upstream: \"" + up + "\", policy: {public: true}}\n"

	alice := servertest.NewBrowser(t)
	if p := alice.SignInDev(e.url+"/app", "alice"); p.Status != http.StatusOK || p.Body != "upstream /app" {
		t.Fatalf("sign-in: %d %s", p.Status, p.Body)
	}
	aliceClient := alice.NoRedirects().Client

	// The request in flight: it reaches the upstream, which holds it.
	slow := make(chan string, 1)
	go func() {
		res, err := http.Get(e.url + "/slow")
		if err != nil {
			slow <- err.Error()
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		slow <- fmt.Sprintf("%d %s", res.StatusCode, b)
	}()

	var (
		stop     atomic.Bool
		wg       sync.WaitGroup
		requests atomic.Int64
		failMu   sync.Mutex
		failures []string
	)
	fail := func(s string) {
		failMu.Lock()
		if len(failures) < 10 {
			failures = append(failures, s)
		}
		failMu.Unlock()
	}
	client := func(c *http.Client, path, want string) {
		defer wg.Done()
		for !stop.Load() {
			res, err := c.Get(e.url + path)
			if err != nil {
				fail(path + ": " + err.Error())
				continue
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			requests.Add(1)
			if res.StatusCode != http.StatusOK || string(b) != want {
				fail(fmt.Sprintf("%s: %d %q", path, res.StatusCode, b))
			}
		}
	}
	const anonymous, signedIn = 24, 8
	for range anonymous {
		wg.Add(1)
		go client(&http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}, "/stable", "upstream /stable")
	}
	for range signedIn {
		wg.Add(1)
		go client(aliceClient, "/app", "upstream /app")
	}

	plain := &http.Client{}
	const rounds = 10
	for i := range rounds {
		last := i == rounds-1
		e.write(t, slowRoute+extraRoute)
		if err := e.live.Reload(context.Background(), false); err != nil {
			t.Fatalf("reload %d (adding /extra): %v", i, err)
		}
		if st := e.status(t, plain, "/extra"); st != http.StatusOK {
			t.Fatalf("reload %d: the added route answers %d", i, st)
		}
		if last {
			e.write(t, "") // /slow goes too
		} else {
			e.write(t, slowRoute)
		}
		if err := e.live.Reload(context.Background(), false); err != nil {
			t.Fatalf("reload %d (removing /extra): %v", i, err)
		}
		if st := e.status(t, plain, "/extra"); st != http.StatusNotFound {
			t.Fatalf("reload %d: the removed route answers %d", i, st)
		}
	}
	if st := e.status(t, plain, "/slow"); st != http.StatusNotFound {
		t.Errorf("/slow after its removal: %d", st)
	}
	e.releaseSlow()
	if got := <-slow; got != "200 upstream /slow" {
		t.Errorf("the request in flight across the reloads: %s", got)
	}
	stop.Store(true)
	wg.Wait()
	n := requests.Load()
	t.Logf("%d requests from %d clients across %d reloads", n, anonymous+signedIn, 2*rounds)
	if len(failures) > 0 {
		t.Errorf("failed requests during reloads: %q", failures)
	}
	if n < int64(anonymous+signedIn) {
		t.Errorf("only %d requests: the load did not run", n)
	}
	if got := strings.Count(e.logs.String(), "config reloaded"); got != 2*rounds {
		t.Errorf("%d \"config reloaded\" lines, want %d", got, 2*rounds)
	}
}

// TestReloadKeepsTheRunningConfigOnABrokenFile: a file that does not
// parse, validate or build changes nothing, and every problem is logged
// with its line:col; fixed again, it loads.
func TestReloadKeepsTheRunningConfigOnABrokenFile(t *testing.T) {
	e := startReload(t)
	plain := &http.Client{}
	for name, tc := range map[string]struct {
		extra string
		want  []string // in the error and the log
	}{
		"bad YAML": {"  - {path: /extra, upstream: [\n", []string{"aero2.yaml:22:", "invalid YAML"}},
		"unknown key and bad value": {"  - {path: /extra, upstrem: \"http://127.0.0.1:1\"}\n  - {path: /other, upstream: \"ftp://x\"}\n",
			[]string{`aero2.yaml:22:20: routes[2].upstrem: unknown key "upstrem"`, "aero2.yaml:23:"}},
		"duplicate route": {"  - {path: /stable, upstream: \"http://127.0.0.1:1\", policy: {public: true}}\n", []string{"aero2.yaml:22:"}},
	} {
		t.Run(name, func(t *testing.T) {
			before := len(e.logs.String())
			e.write(t, tc.extra)
			err := e.live.Reload(context.Background(), false)
			var ps config.Problems
			if !errors.As(err, &ps) {
				t.Fatalf("reload of a broken file: %v", err)
			}
			logged := e.logs.String()[before:]
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
				if !strings.Contains(logged, strings.ReplaceAll(w, `"`, `\"`)) { // quoted in the log line
					t.Errorf("log lacks %q:\n%s", w, logged)
				}
			}
			if n := strings.Count(logged, "config reload refused"); n != len(ps) {
				t.Errorf("%d problems, %d lines logged:\n%s", len(ps), n, logged)
			}
			if st := e.status(t, plain, "/stable"); st != http.StatusOK {
				t.Errorf("the running route after a refused reload: %d", st)
			}
			if e.live.Current().Config().File != e.file || len(e.live.Current().Config().ProxyRoutes()) != 3 {
				t.Error("the running configuration changed")
			}
		})
	}
	e.write(t, "  - {path: /extra, upstream: \"http://127.0.0.1:1\", policy: {public: true}}\n")
	if err := e.live.Reload(context.Background(), false); err != nil {
		t.Fatalf("reload of the fixed file: %v", err)
	}
	if n := len(e.live.Current().Config().ProxyRoutes()); n != 3 {
		t.Errorf("after the fixed file: %d routes", n)
	}
}

// TestReloadNeedsRestart: keys that cannot change at runtime are logged
// at their line:col as "needs restart" and keep their running values;
// the rest of the file applies.
func TestReloadNeedsRestart(t *testing.T) {
	e := startReload(t)
	e.tmpl = strings.Replace(e.tmpl, `listen: "127.0.0.1:0"`, `listen: "127.0.0.1:9"`, 1)
	e.tmpl = strings.Replace(e.tmpl, "store: {type: memory}", "store: {type: memory}\nlog: {level: debug}", 1)
	e.write(t, "  - {path: /extra, upstream: \"http://127.0.0.1:1\", policy: {public: true}}\n")
	if err := e.live.Reload(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	logs := e.logs.String()
	for _, w := range []string{"aero2.yaml:4:3: server.listen: changed: needs a restart", "aero2.yaml:7:1: log: changed: needs a restart"} {
		if !strings.Contains(logs, w) {
			t.Errorf("log lacks %q:\n%s", w, logs)
		}
	}
	cfg := e.live.Current().Config()
	if cfg.Server.Listen != "127.0.0.1:0" || cfg.Log.Level != "info" {
		t.Errorf("a key that needs a restart was applied: listen %q, log level %q", cfg.Server.Listen, cfg.Log.Level)
	}
	if st := e.status(t, &http.Client{}, "/extra"); st != http.StatusBadGateway {
		t.Errorf("the rest of the file was not applied: /extra answers %d", st)
	}
}
