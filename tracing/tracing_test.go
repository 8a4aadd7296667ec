package tracing_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/aero2/aero2/tracing"
)

// TestEnabled: off unless the environment names an OTLP endpoint or the
// otlp exporter; OTEL_SDK_DISABLED and OTEL_TRACES_EXPORTER=none win.
func TestEnabled(t *testing.T) {
	for env, want := range map[string]bool{
		"":                        false,
		"OTEL_SERVICE_NAME=aero2": false,
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://c:4318":                           true,
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://c:4318/v1":                 true,
		"OTEL_TRACES_EXPORTER=otlp":                                           true,
		"OTEL_TRACES_EXPORTER=none,OTEL_EXPORTER_OTLP_ENDPOINT=http://c:4318": false,
		"OTEL_SDK_DISABLED=true,OTEL_EXPORTER_OTLP_ENDPOINT=http://c:4318":    false,
	} {
		vars := map[string]string{}
		for _, kv := range strings.Split(env, ",") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				vars[k] = v
			}
		}
		if got := tracing.Enabled(func(k string) string { return vars[k] }); got != want {
			t.Errorf("%q: Enabled = %v, want %v", env, got, want)
		}
	}
}

// TestTransportSendsTraceparent: a call to an identity provider is a
// client span, child of the request's, and the provider receives its
// traceparent; without a tracer the transport is the one given.
func TestTransportSendsTraceparent(t *testing.T) {
	var got string
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Get("Traceparent") }))
	defer idp.Close()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	tr := tracing.Tracer(tp)
	ctx, parent := tr.Start(context.Background(), "request")
	c := &http.Client{Transport: tracing.Transport(tr, "identity provider", nil)}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, idp.URL+"/token", nil)
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	parent.End()
	if req.Header.Get("Traceparent") != "" {
		t.Error("the caller's request was changed")
	}
	spans := exp.GetSpans()
	if len(spans) != 2 || spans[0].Name != "identity provider" || spans[0].Parent.SpanID() != parent.SpanContext().SpanID() {
		t.Fatalf("spans %v", spans)
	}
	want := "00-" + parent.SpanContext().TraceID().String() + "-" + spans[0].SpanContext.SpanID().String() + "-01"
	if got != want {
		t.Fatalf("traceparent %q, want %q", got, want)
	}
	if tracing.Transport(nil, "x", http.DefaultTransport) != http.DefaultTransport || tracing.Tracer(nil) != nil {
		t.Error("traces off still wraps")
	}
}
