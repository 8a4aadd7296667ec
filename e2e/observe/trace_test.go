package observe_test

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/aero2/aero2/server"
	"github.com/aero2/aero2/server/servertest"
)

// TestTraceProxyStoreUpstream: with a tracer provider (the SDK's, into an
// in-memory exporter), one proxied request is one trace: the request's
// server span, its store calls and its upstream call as children of it;
// the upstream receives the trace in traceparent, naming the upstream
// span; and the access log line carries the trace ID.
func TestTraceProxyStoreUpstream(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(t.Context())
	var mu sync.Mutex
	var parents []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		parents = append(parents, r.Header.Get("Traceparent"))
		mu.Unlock()
		io.WriteString(w, "upstream "+r.URL.Path)
	}))
	defer up.Close()
	logs := &syncBuffer{}
	// A clock to step past the proxy's in-process session cache (2s),
	// so that the traced request reads its session from the store.
	var clockMu sync.Mutex
	now := time.Now()
	clock := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
	in := servertest.StartWith(t, configFor(up.URL), servertest.Options{Server: server.Options{
		TracerProvider: tp, Logger: slog.New(slog.NewJSONHandler(logs, nil)), Now: clock,
	}})
	b := servertest.NewBrowser(t)
	if p := b.SignInDev(in.URL+"/app/x", "alice"); p.Status != 200 {
		t.Fatalf("sign-in: %d %s", p.Status, p.URL)
	}
	clockMu.Lock()
	now = now.Add(3 * time.Second)
	clockMu.Unlock()
	exp.Reset()
	mu.Lock()
	parents = nil
	mu.Unlock()
	if p := b.Get(in.URL + "/app/traced"); p.Status != 200 || p.Body != "upstream /app/traced" {
		t.Fatalf("proxied request: %d %q", p.Status, p.Body)
	}

	spans := exp.GetSpans()
	var root *tracetest.SpanStub
	for i := range spans {
		if spans[i].Name == "GET proxy routes[0]" {
			root = &spans[i]
		}
	}
	if root == nil {
		t.Fatalf("no server span for the request among %d spans: %v", len(spans), names(spans))
	}
	if root.Parent.IsValid() {
		t.Errorf("the request's span has a parent: %v", root.Parent)
	}
	tid := root.SpanContext.TraceID()
	var stores, upstreams int
	var upstreamSpan string
	for _, s := range spans {
		if s.SpanContext.TraceID() != tid {
			t.Errorf("span %q is in another trace", s.Name)
			continue
		}
		switch {
		case strings.HasPrefix(s.Name, "store "):
			stores++
		case s.Name == "upstream routes[0]":
			upstreams++
			upstreamSpan = s.SpanContext.SpanID().String()
			if s.Parent.SpanID() != root.SpanContext.SpanID() {
				t.Errorf("the upstream span's parent is %v, not the request's span", s.Parent.SpanID())
			}
		}
		if s.Name != root.Name && !s.Parent.IsValid() {
			t.Errorf("span %q has no parent", s.Name)
		}
	}
	if stores == 0 || upstreams != 1 {
		t.Fatalf("%d store spans, %d upstream spans: %v", stores, upstreams, names(spans))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(parents) != 1 || !strings.HasPrefix(parents[0], "00-"+tid.String()+"-"+upstreamSpan+"-") {
		t.Fatalf("the upstream received traceparent %q, want trace %s from span %s", parents, tid, upstreamSpan)
	}
	found := false
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == "request" && line["path"] == "/app/traced" {
			found = line["trace_id"] == tid.String()
		}
	}
	if !found {
		t.Errorf("the access log line of /app/traced does not carry trace_id %s:\n%s", tid, logs.String())
	}
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}
