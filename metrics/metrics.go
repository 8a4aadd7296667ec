// Package metrics is Aero2's Prometheus instrumentation: the collectors,
// their own registry (served on server.metrics_listen, never on the
// public port), and the few calls the server makes to fill them.
//
// Every label takes values from a bounded set that the configuration or
// Aero2's own code fixes: endpoint kinds, grant types Aero2 knows, route
// and identity provider IDs from the file, reason words Aero2 writes.
// Never a user, a path, a client address or anything else a client picks:
// each distinct label value is a time series kept for as long as the
// process lives, so a label a client chose would let it fill memory.
//
// A nil *Metrics is valid and records nothing: metrics off costs a nil
// check.
package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/aero2/aero2/audit"
)

const namespace = "aero2"

// Buckets, in seconds. Requests span a cached proxy hit (well under a
// millisecond) to a sign-in waiting on an identity provider (seconds);
// store calls are sub-millisecond on a local Redis; an RSA-2048
// signature takes about a millisecond.
var (
	requestBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	storeBuckets   = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1}
	signBuckets    = []float64{.00025, .0005, .001, .002, .005, .01, .025, .05, .1}
)

// Metrics holds Aero2's collectors. Build it with New; it is safe for
// concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	requests       *prometheus.HistogramVec
	signIns        *prometheus.CounterVec
	tokensIssued   *prometheus.CounterVec
	tokensRefused  *prometheus.CounterVec
	policyDenials  *prometheus.CounterVec
	rateLimited    *prometheus.CounterVec
	sessions       *prometheus.CounterVec
	auditEvents    *prometheus.CounterVec
	store          *prometheus.HistogramVec
	storeErrors    *prometheus.CounterVec
	upstream       *prometheus.HistogramVec
	upstreamErrors *prometheus.CounterVec
	signing        *prometheus.HistogramVec

	requestChildren  *children[requestKey]
	upstreamChildren *children[upstreamKey]
}

// New returns Metrics registered in a registry of their own, with the Go
// runtime's and the process's collectors beside them.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	c := func(name, help string, labels ...string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, labels)
		reg.MustRegister(v)
		return v
	}
	h := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: name, Help: help, Buckets: buckets}, labels)
		reg.MustRegister(v)
		return v
	}
	m := &Metrics{
		reg: reg,
		requests: h("http_request_duration_seconds",
			"Requests answered, by endpoint kind, its detail (grant type, route, forward-auth mode) and status class; _count counts them.",
			requestBuckets, "kind", "detail", "status"),
		signIns: c("sign_ins_total",
			"Sign-ins at identity providers, by application, provider and outcome (succeeded, or the reason it failed).",
			"app", "idp", "outcome"),
		tokensIssued: c("tokens_issued_total",
			"Token responses issued by the token endpoint, by application and grant type.",
			"app", "grant_type"),
		tokensRefused: c("tokens_refused_total",
			"Token requests refused, by application and reason (invalid_grant, invalid_client, reuse_detected, …).",
			"app", "reason"),
		policyDenials: c("policy_denials_total",
			"Signed-in users a route's policy refused, by application and route.",
			"app", "route"),
		rateLimited: c("rate_limit_hits_total",
			"Requests refused by a rate limit, by application and limit (server.rate_limits key).",
			"app", "limit"),
		sessions: c("sessions_total",
			"Browser sessions created and ended, by application, event (created, ended) and reason.",
			"app", "event", "reason"),
		auditEvents: c("audit_events_total", "Audit events, by event type.", "event"),
		store: h("store_duration_seconds",
			"Store calls (one round trip each on Redis), by operation.",
			storeBuckets, "op"),
		storeErrors: c("store_errors_total",
			"Store calls that failed (not \"not found\" or \"exists\", which are answers), by operation.",
			"op"),
		upstream: h("upstream_duration_seconds",
			"Proxied requests to upstreams, until the response headers, by route and status class (error: no response).",
			requestBuckets, "route", "status"),
		upstreamErrors: c("upstream_errors_total",
			"Proxied requests that got no response from the upstream (refused, timed out, reset), by route.",
			"route"),
		signing: h("signing_duration_seconds",
			"JWT signatures (access tokens, ID tokens, assertions), by application.",
			signBuckets, "app"),
	}
	m.requestChildren = newChildren(m.requests, func(k requestKey) []string {
		return []string{k.kind, k.detail, classes[k.class]}
	})
	m.upstreamChildren = newChildren(m.upstream, func(k upstreamKey) []string {
		if k.class < 0 {
			return []string{k.route, "error"}
		}
		return []string{k.route, classes[k.class]}
	})
	return m
}

// Handler serves the registry in the Prometheus text format (or
// OpenMetrics, when the scraper asks for it).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, EnableOpenMetrics: true})
}

// Registry is the registry the collectors are in (tests gather it).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Class is the status class of an HTTP status: "2xx" … "5xx".
func Class(status int) string {
	switch {
	case status >= 100 && status < 600:
		return classes[status/100]
	default:
		return classes[0]
	}
}

var classes = [...]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

// Request records one answered request. kind "" is "other".
func (m *Metrics) Request(kind, detail string, status int, d time.Duration) {
	if m == nil {
		return
	}
	if kind == "" {
		kind = "other"
	}
	m.requestChildren.get(requestKey{kind, detail, classIndex(status)}).Observe(d.Seconds())
}

// requestKey and upstreamKey are the label values of a request and of an
// upstream call, as map keys (the status class as an index into
// classes; 0: "other"; for an upstream, -1: no response).
type requestKey struct {
	kind, detail string
	class        int
}

type upstreamKey struct {
	route string
	class int
}

func classIndex(status int) int {
	if status >= 100 && status < 600 {
		return status / 100
	}
	return 0
}

// Store records one store call of op (the store method's name) and
// whether it failed.
func (m *Metrics) Store(op string, d time.Duration, failed bool) {
	if m == nil {
		return
	}
	m.store.WithLabelValues(op).Observe(d.Seconds())
	if failed {
		m.storeErrors.WithLabelValues(op).Inc()
	}
}

// Upstream records one round trip to route's upstream: its status, or
// status 0 for no response at all.
func (m *Metrics) Upstream(route string, status int, d time.Duration) {
	if m == nil {
		return
	}
	key := upstreamKey{route, -1} // no response
	if status != 0 {
		key.class = classIndex(status)
	}
	m.upstreamChildren.get(key).Observe(d.Seconds())
	if status == 0 {
		m.upstreamErrors.WithLabelValues(route).Inc()
	}
}

// Signing records one JWT signature for app.
func (m *Metrics) Signing(app string, d time.Duration) {
	if m == nil {
		return
	}
	m.signing.WithLabelValues(app).Observe(d.Seconds())
}

// Log counts an audit event: Metrics is an audit.Logger, so the parts
// that decide say so once, and the audit log and the counters agree.
func (m *Metrics) Log(_ context.Context, e audit.Event) {
	if m == nil {
		return
	}
	m.auditEvents.WithLabelValues(string(e.Type)).Inc()
	switch e.Type {
	case audit.SignInSucceeded:
		m.signIns.WithLabelValues(e.App, e.IDP, "succeeded").Inc()
	case audit.SignInFailed:
		m.signIns.WithLabelValues(e.App, e.IDP, orUnknown(e.Reason)).Inc()
	case audit.TokenIssued, audit.TokenRefreshed:
		m.tokensIssued.WithLabelValues(e.App, e.GrantType).Inc()
	case audit.TokenRefused:
		m.tokensRefused.WithLabelValues(e.App, orUnknown(e.Reason)).Inc()
	case audit.ReuseDetected:
		m.tokensRefused.WithLabelValues(e.App, "reuse_detected").Inc()
	case audit.PolicyDenied:
		m.policyDenials.WithLabelValues(e.App, e.Route).Inc()
	case audit.RateLimited:
		m.rateLimited.WithLabelValues(e.App, e.Reason).Inc()
	case audit.SessionCreated:
		m.sessions.WithLabelValues(e.App, "created", "").Inc()
	case audit.SessionEnded:
		m.sessions.WithLabelValues(e.App, "ended", orUnknown(e.Reason)).Inc()
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
