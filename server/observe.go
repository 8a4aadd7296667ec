package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/aero2/aero2/audit"
	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/metrics"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/tracing"
)

// requestIDs makes request IDs: a random prefix for the process and a
// counter, so that IDs are unique across replicas and restarts without a
// random read per request.
type requestIDs struct {
	prefix string
	n      atomic.Uint64
}

func newRequestIDs() *requestIDs {
	var b [6]byte
	rand.Read(b[:])
	return &requestIDs{prefix: hex.EncodeToString(b[:]) + "-"}
}

func (g *requestIDs) next() string {
	if g == nil {
		return ""
	}
	return g.prefix + strconv.FormatUint(g.n.Add(1), 36)
}

// signingObserver times each JWT signature of app.
func (s *Server) signingObserver(app string) func(ctx context.Context) (context.Context, func(error)) {
	if s.metrics == nil && s.tracer == nil {
		return nil
	}
	m, tr := s.metrics, s.tracer
	return func(ctx context.Context) (context.Context, func(error)) {
		start := time.Now()
		var span trace.Span
		if tr != nil {
			ctx, span = tr.Start(ctx, "sign JWT", trace.WithAttributes(attribute.String("aero2.app", app)))
		}
		return ctx, func(err error) {
			m.Signing(app, time.Since(start))
			if span != nil {
				if err != nil {
					span.RecordError(err)
					span.SetStatus(codes.Error, "signing failed")
				}
				span.End()
			}
		}
	}
}

// wrapUpstream times each round trip of route to its upstream.
func (s *Server) wrapUpstream() func(route string, t http.RoundTripper) http.RoundTripper {
	if s.metrics == nil && s.tracer == nil {
		return nil
	}
	return func(route string, t http.RoundTripper) http.RoundTripper {
		if s.metrics != nil {
			t = &measuredTransport{next: t, route: route, m: s.metrics}
		}
		// The span (and the traceparent the upstream receives) around
		// the whole round trip.
		return tracing.Transport(s.tracer, "upstream "+route, t, attribute.String("aero2.route", route))
	}
}

type measuredTransport struct {
	next  http.RoundTripper
	route string
	m     *metrics.Metrics
}

func (t *measuredTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	res, err := t.next.RoundTrip(r)
	status := 0
	if err == nil {
		status = res.StatusCode
	} else if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The client went away: not the upstream's failure.
		return res, err
	}
	t.m.Upstream(t.route, status, time.Since(start))
	return res, err
}

// measuredStore times every store call by operation, and makes each a
// child span of the request's when traces are on. Not-found and exists
// are answers, not failures; anything else is counted as an error.
//
// It holds the store in a field rather than embedding it, so that the
// compiler refuses a store.Store method it does not implement: an
// embedded store passed a new method (GetSessionAndRecord) through
// unmeasured and untraced, and the proxy's session reads vanished from
// traces.
type measuredStore struct {
	next store.Store
	m    *metrics.Metrics // nil: no metrics
	tr   trace.Tracer     // nil: no spans
}

var _ store.Store = (*measuredStore)(nil)

// storeOp is one store call being measured.
type storeOp struct {
	s     *measuredStore
	name  string
	start time.Time
	span  trace.Span // nil without traces
}

func (s *measuredStore) begin(ctx context.Context, op string) (context.Context, storeOp) {
	o := storeOp{s: s, name: op, start: time.Now()}
	if s.tr != nil {
		ctx, o.span = s.tr.Start(ctx, "store "+op, trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.String("db.operation.name", op)))
	}
	return ctx, o
}

func (o storeOp) end(err error) {
	failed := err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrExists)
	o.s.m.Store(o.name, time.Since(o.start), failed)
	if o.span != nil {
		if failed {
			o.span.RecordError(err)
			o.span.SetStatus(codes.Error, "store call failed")
		}
		o.span.End()
	}
}

func (s *measuredStore) Create(ctx context.Context, app, key string, value []byte, ttl time.Duration) error {
	ctx, o := s.begin(ctx, "create")
	err := s.next.Create(ctx, app, key, value, ttl)
	o.end(err)
	return err
}

func (s *measuredStore) Put(ctx context.Context, app, key string, value []byte, ttl time.Duration) error {
	ctx, o := s.begin(ctx, "put")
	err := s.next.Put(ctx, app, key, value, ttl)
	o.end(err)
	return err
}

func (s *measuredStore) Get(ctx context.Context, app, key string) ([]byte, error) {
	ctx, o := s.begin(ctx, "get")
	v, err := s.next.Get(ctx, app, key)
	o.end(err)
	return v, err
}

func (s *measuredStore) Take(ctx context.Context, app, key string) ([]byte, error) {
	ctx, o := s.begin(ctx, "take")
	v, err := s.next.Take(ctx, app, key)
	o.end(err)
	return v, err
}

func (s *measuredStore) Delete(ctx context.Context, app string, keys ...string) error {
	ctx, o := s.begin(ctx, "delete")
	err := s.next.Delete(ctx, app, keys...)
	o.end(err)
	return err
}

func (s *measuredStore) SetAdd(ctx context.Context, app, key string, ttl time.Duration, members ...string) error {
	ctx, o := s.begin(ctx, "set_add")
	err := s.next.SetAdd(ctx, app, key, ttl, members...)
	o.end(err)
	return err
}

func (s *measuredStore) SetMembers(ctx context.Context, app, key string) ([]string, error) {
	ctx, o := s.begin(ctx, "set_members")
	v, err := s.next.SetMembers(ctx, app, key)
	o.end(err)
	return v, err
}

func (s *measuredStore) SetRemove(ctx context.Context, app, key string, members ...string) error {
	ctx, o := s.begin(ctx, "set_remove")
	err := s.next.SetRemove(ctx, app, key, members...)
	o.end(err)
	return err
}

func (s *measuredStore) Apply(ctx context.Context, app string, ops ...store.Op) error {
	ctx, o := s.begin(ctx, "apply")
	err := s.next.Apply(ctx, app, ops...)
	o.end(err)
	return err
}

func (s *measuredStore) GetMany(ctx context.Context, app string, keys ...string) ([][]byte, error) {
	ctx, o := s.begin(ctx, "get_many")
	v, err := s.next.GetMany(ctx, app, keys...)
	o.end(err)
	return v, err
}

func (s *measuredStore) GetManyAndUser(ctx context.Context, app, userID string, keys ...string) (*store.User, [][]byte, error) {
	ctx, o := s.begin(ctx, "get_many_and_user")
	u, v, err := s.next.GetManyAndUser(ctx, app, userID, keys...)
	o.end(err)
	return u, v, err
}

func (s *measuredStore) RateLimit(ctx context.Context, app string, buckets ...store.RateBucket) (store.RateResult, error) {
	ctx, o := s.begin(ctx, "rate_limit")
	v, err := s.next.RateLimit(ctx, app, buckets...)
	o.end(err)
	return v, err
}

func (s *measuredStore) CreateSession(ctx context.Context, ss *store.Session, ttl time.Duration) error {
	ctx, o := s.begin(ctx, "create_session")
	err := s.next.CreateSession(ctx, ss, ttl)
	o.end(err)
	return err
}

func (s *measuredStore) GetSession(ctx context.Context, app, id string) (*store.Session, error) {
	ctx, o := s.begin(ctx, "get_session")
	v, err := s.next.GetSession(ctx, app, id)
	o.end(err)
	return v, err
}

func (s *measuredStore) TouchSession(ctx context.Context, ss *store.Session, ttl time.Duration) error {
	ctx, o := s.begin(ctx, "touch_session")
	err := s.next.TouchSession(ctx, ss, ttl)
	o.end(err)
	return err
}

func (s *measuredStore) DeleteSession(ctx context.Context, app, id string) error {
	ctx, o := s.begin(ctx, "delete_session")
	err := s.next.DeleteSession(ctx, app, id)
	o.end(err)
	return err
}

func (s *measuredStore) UserSessions(ctx context.Context, app, userID string) ([]*store.Session, error) {
	ctx, o := s.begin(ctx, "user_sessions")
	v, err := s.next.UserSessions(ctx, app, userID)
	o.end(err)
	return v, err
}

func (s *measuredStore) CreateUser(ctx context.Context, u *store.User, first *store.Identity) error {
	ctx, o := s.begin(ctx, "create_user")
	err := s.next.CreateUser(ctx, u, first)
	o.end(err)
	return err
}

func (s *measuredStore) GetUser(ctx context.Context, app, id string) (*store.User, error) {
	ctx, o := s.begin(ctx, "get_user")
	v, err := s.next.GetUser(ctx, app, id)
	o.end(err)
	return v, err
}

func (s *measuredStore) UpdateUser(ctx context.Context, u *store.User) error {
	ctx, o := s.begin(ctx, "update_user")
	err := s.next.UpdateUser(ctx, u)
	o.end(err)
	return err
}

func (s *measuredStore) UserByIdentity(ctx context.Context, app, idp, subject string) (*store.User, *store.Identity, error) {
	ctx, o := s.begin(ctx, "user_by_identity")
	u, id, err := s.next.UserByIdentity(ctx, app, idp, subject)
	o.end(err)
	return u, id, err
}

func (s *measuredStore) SignInUser(ctx context.Context, app, idp, subject string) (*store.SignIn, error) {
	ctx, o := s.begin(ctx, "sign_in_user")
	v, err := s.next.SignInUser(ctx, app, idp, subject)
	o.end(err)
	return v, err
}

func (s *measuredStore) UsersByVerifiedEmail(ctx context.Context, app, email string) ([]*store.User, error) {
	ctx, o := s.begin(ctx, "users_by_verified_email")
	v, err := s.next.UsersByVerifiedEmail(ctx, app, email)
	o.end(err)
	return v, err
}

func (s *measuredStore) LinkIdentity(ctx context.Context, id *store.Identity) error {
	ctx, o := s.begin(ctx, "link_identity")
	err := s.next.LinkIdentity(ctx, id)
	o.end(err)
	return err
}

func (s *measuredStore) UpdateIdentity(ctx context.Context, id *store.Identity) error {
	ctx, o := s.begin(ctx, "update_identity")
	err := s.next.UpdateIdentity(ctx, id)
	o.end(err)
	return err
}

func (s *measuredStore) Identities(ctx context.Context, app, userID string) ([]*store.Identity, error) {
	ctx, o := s.begin(ctx, "identities")
	v, err := s.next.Identities(ctx, app, userID)
	o.end(err)
	return v, err
}

func (s *measuredStore) Ping(ctx context.Context) error {
	ctx, o := s.begin(ctx, "ping")
	err := s.next.Ping(ctx)
	o.end(err)
	return err
}

func (s *measuredStore) GetSessionAndRecord(ctx context.Context, app, id, key string) (*store.Session, []byte, error) {
	ctx, o := s.begin(ctx, "get_session_and_record")
	ss, v, err := s.next.GetSessionAndRecord(ctx, app, id, key)
	o.end(err)
	return ss, v, err
}

func (s *measuredStore) Broadcast(ctx context.Context, channel, message string) error {
	ctx, o := s.begin(ctx, "broadcast")
	err := s.next.Broadcast(ctx, channel, message)
	o.end(err)
	return err
}

// Subscribe is one call for the life of a subscription: nothing to time.
func (s *measuredStore) Subscribe(ctx context.Context, channel string, heartbeat time.Duration, fn func(store.Notice)) {
	s.next.Subscribe(ctx, channel, heartbeat, fn)
}

func (s *measuredStore) Close() error { return s.next.Close() }

// observability is what Run builds from the configuration before the
// server: the metrics (nil unless server.metrics_listen is set) and the
// audit log (nil unless log.audit is set).
type observability struct {
	metrics *metrics.Metrics
	audit   audit.Logger
	close   func() error // closes the audit file
}

func openObservability(cfg *config.Config) (*observability, error) {
	o := &observability{}
	if cfg.Server.MetricsListen != "" {
		o.metrics = metrics.New()
	}
	var err error
	if o.audit, o.close, err = audit.Open(cfg.Log.Audit); err != nil {
		return nil, err
	}
	return o, nil
}

// serveMetrics serves /metrics and /debug/pprof/ on addr until ctx ends.
// It is a listener of its own, plain HTTP, never the public one: what it
// shows (profiles, goroutine stacks, every metric) is for operators.
func (o *observability) serveMetrics(ctx context.Context, addr string, log *slog.Logger) error {
	if addr == "" || o.metrics == nil {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("server.metrics_listen: %w", err)
	}
	log.Info("metrics and pprof listening", "addr", ln.Addr().String())
	srv := &http.Server{
		Handler:           MetricsHandler(o.metrics),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go srv.Serve(ln)
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	return nil
}

// MetricsHandler is what server.metrics_listen serves: the metrics at
// /metrics and Go's profiler under /debug/pprof/.
func MetricsHandler(m *metrics.Metrics) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
