package proxy_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/config/configtest"
	"github.com/aero2/aero2/proxy"
	"github.com/aero2/aero2/proxy/proxytest"
	"github.com/aero2/aero2/store/memory"
)

type lines struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lines) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

// TestPlantedCookieIsLoggedOncePerRoute: two applications, each with a
// public route (no sign-in needed) whose upstream sets the other
// application's proxy cookie; each route logs its upstream once, however
// often it tries.
func TestPlantedCookieIsLoggedOncePerRoute(t *testing.T) {
	up, mux := proxytest.StartUpstream(t)
	plant := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Add("Set-Cookie", name+"=planted; Path=/; Secure")
			w.Header().Add("Set-Cookie", "keep=1")
		}
	}
	mux.HandleFunc("/a/", plant("__Host-aero2_proxy_b"))
	mux.HandleFunc("/b/", plant("__Host-aero2_proxy_a_login"))
	src := `
insecure_dev: true
secrets: {cookie_keys: ["` + configtest.CookieKey + `"], storage_key: "` + configtest.StorageKey + `"}
applications:
  - name: a
    issuer: "http://127.0.0.1:1/a"
    identity_providers: [{id: dev, type: dev}]
    routes: [{host: a.localhost, path: /a, upstream: "` + up.URL + `", policy: {public: true}}]
  - name: b
    issuer: "http://127.0.0.1:1/b"
    identity_providers: [{id: dev, type: dev}]
    routes: [{host: b.localhost, path: /b, upstream: "` + up.URL + `", policy: {public: true}}]
`
	cfg, err := config.Parse("t.yaml", []byte(src), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	log := &lines{}
	h, err := proxy.New(proxy.Options{Config: cfg, Store: memory.New(), Apps: []proxy.App{{Config: cfg.Apps()[0]}, {Config: cfg.Apps()[1]}}, Logger: slog.New(slog.NewTextHandler(log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	for i := 0; i < 5; i++ {
		for _, p := range []string{"a.localhost/a/x", "b.localhost/b/x"} {
			host, path, _ := strings.Cut(p, "/")
			req, _ := http.NewRequest("GET", srv.URL+"/"+path, nil)
			req.Host = host
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if v := res.Header.Values("Set-Cookie"); len(v) != 1 || v[0] != "keep=1" {
				t.Fatalf("%s: Set-Cookie %q", p, v)
			}
		}
	}
	if n := log.count("tried to set one of Aero2's cookies"); n != 2 {
		t.Errorf("logged %d times for two routes, want 2:\n%s", n, log.b.String())
	}
}

// testLogger collects a proxy's logs and shows them when the test fails.
// Lines written after the test has ended (a request still finishing) are
// kept but never shown: t.Log after a test completes is a race.
func testLogger(t *testing.T) *slog.Logger {
	l := &lines{}
	t.Cleanup(func() {
		if t.Failed() {
			l.mu.Lock()
			t.Log(l.b.String())
			l.mu.Unlock()
		}
	})
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
