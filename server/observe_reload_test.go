package server_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aero2/aero2/audit"
	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/metrics"
	"github.com/aero2/aero2/server"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// TestReloadKeepsMetricsAndAudit: a reload builds the new server on the
// running one's store; its calls are still measured once (not once per
// reload, which wrapping the measured store again would do), and each
// reload is a config.reloaded audit event.
func TestReloadKeepsMetricsAndAudit(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer up.Close()
	file := filepath.Join(t.TempDir(), "aero2.yaml")
	write := func(extra string) {
		body := strings.NewReplacer("URL", "http://127.0.0.1:1", "UP", up.URL, "EXTRA", extra).Replace(reloadConfig)
		if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("")
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	out := &lockedBuffer{}
	live, err := server.NewLive(context.Background(), cfg, server.Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: m, Audit: audit.New(out),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	pings := func() float64 {
		fams, err := m.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fams {
			if f.GetName() != "aero2_store_duration_seconds" {
				continue
			}
			for _, s := range f.GetMetric() {
				for _, l := range s.GetLabel() {
					if l.GetName() == "op" && l.GetValue() == "ping" {
						return float64(s.GetHistogram().GetSampleCount())
					}
				}
			}
		}
		return 0
	}
	ready := func() {
		w := httptest.NewRecorder()
		live.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://127.0.0.1:1/readyz", nil))
		if w.Code != http.StatusOK {
			t.Fatalf("/readyz: %d", w.Code)
		}
	}
	ready()
	for i, extra := range []string{"  - {path: /a, upstream: \"" + up.URL + "\"}\n", "  - {path: /b, upstream: \"" + up.URL + "\"}\n"} {
		write(extra)
		if err := live.Reload(context.Background(), false); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
	}
	ready()
	if got := pings(); got != 2 {
		t.Fatalf("two /readyz after two reloads counted %v store pings, want 2", got)
	}
	if n := strings.Count(out.b.String(), `"event":"config.reloaded"`); n != 2 {
		t.Fatalf("%d config.reloaded events, want 2:\n%s", n, out.b.String())
	}
}
