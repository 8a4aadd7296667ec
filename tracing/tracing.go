// Package tracing sets up OpenTelemetry traces: off unless the standard
// OTEL_* environment variables ask for an OTLP exporter, and then a span
// per request, with child spans for store calls, upstream calls, calls to
// identity providers and signatures (the server makes them), and W3C
// traceparent sent to upstreams and identity providers.
package tracing

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Name is the instrumentation scope of Aero2's spans.
const Name = "github.com/aero2/aero2"

// Enabled reports whether the environment asks for traces: an OTLP
// endpoint (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), or OTEL_TRACES_EXPORTER=otlp, and
// not OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none.
func Enabled(getenv func(string) string) bool {
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") {
		return false
	}
	switch strings.ToLower(getenv("OTEL_TRACES_EXPORTER")) {
	case "none":
		return false
	case "otlp":
		return true
	}
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Setup returns the tracer provider the environment asks for (nil when
// traces are off) and the function that flushes and stops it. The OTLP
// exporter speaks HTTP/protobuf and reads its own OTEL_EXPORTER_OTLP_*
// variables (endpoint, headers, TLS, timeout); the resource reads
// OTEL_SERVICE_NAME (default "aero2") and OTEL_RESOURCE_ATTRIBUTES; the
// sampler OTEL_TRACES_SAMPLER (default: parent-based, always on).
func Setup(ctx context.Context) (trace.TracerProvider, func(context.Context) error, error) {
	if !Enabled(os.Getenv) {
		return nil, func(context.Context) error { return nil }, nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, nil, err
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attribute.String("service.name", "aero2")))
	if err != nil {
		return nil, nil, err
	}
	if os.Getenv("OTEL_SERVICE_NAME") != "" || os.Getenv("OTEL_RESOURCE_ATTRIBUTES") != "" {
		// The environment's names win over the default.
		if env, err := resource.New(ctx, resource.WithFromEnv()); err == nil {
			res, _ = resource.Merge(res, env)
		}
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return tp, tp.Shutdown, nil
}

// Propagator is W3C Trace Context (traceparent, tracestate).
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// Tracer is a tracer of tp, or nil for a nil tp (traces off).
func Tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		return nil
	}
	return tp.Tracer(Name)
}

// Transport sends r's trace context (traceparent) with each request and
// records a client span named name around it. A nil tracer returns next.
func Transport(tr trace.Tracer, name string, next http.RoundTripper, attrs ...attribute.KeyValue) http.RoundTripper {
	if tr == nil {
		return next
	}
	if next == nil {
		next = http.DefaultTransport
	}
	return &transport{tr: tr, name: name, next: next, attrs: attrs}
}

type transport struct {
	tr    trace.Tracer
	name  string
	next  http.RoundTripper
	attrs []attribute.KeyValue
}

func (t *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx, span := t.tr.Start(r.Context(), t.name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(append([]attribute.KeyValue{
			attribute.String("http.request.method", r.Method),
			attribute.String("server.address", r.URL.Host),
		}, t.attrs...)...))
	defer span.End()
	// A RoundTripper must not change the request it was given: the
	// header goes on a copy.
	out := r.Clone(ctx)
	Propagator.Inject(ctx, propagation.HeaderCarrier(out.Header))
	res, err := t.next.RoundTrip(out)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "no response")
		return res, err
	}
	span.SetAttributes(attribute.Int("http.response.status_code", res.StatusCode))
	if res.StatusCode >= 500 {
		span.SetStatus(codes.Error, "")
	}
	return res, nil
}

// LogHandler adds the trace_id and span_id of the context's span to every
// record logged with a context (the access log line among them).
func LogHandler(h slog.Handler) slog.Handler { return logHandler{h} }

type logHandler struct{ slog.Handler }

func (l logHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r = r.Clone()
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return l.Handler.Handle(ctx, r)
}

func (l logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return logHandler{l.Handler.WithAttrs(as)}
}
func (l logHandler) WithGroup(n string) slog.Handler { return logHandler{l.Handler.WithGroup(n)} }
