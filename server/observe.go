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

	"github.com/aero2/aero2/audit"
	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/metrics"
	"github.com/aero2/aero2/store"
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
	if s.metrics == nil {
		return nil
	}
	m := s.metrics
	return func(ctx context.Context) (context.Context, func(error)) {
		start := time.Now()
		return ctx, func(error) { m.Signing(app, time.Since(start)) }
	}
}

// wrapUpstream times each round trip of route to its upstream.
func (s *Server) wrapUpstream() func(route string, t http.RoundTripper) http.RoundTripper {
	if s.metrics == nil {
		return nil
	}
	return func(route string, t http.RoundTripper) http.RoundTripper {
		return &measuredTransport{next: t, route: route, m: s.metrics}
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

// measuredStore times every store call by operation. Not-found and
// exists are answers, not failures; anything else is counted as an
// error. Methods it does not name (a backend's additions) pass through
// unmeasured.
type measuredStore struct {
	store.Store
	m *metrics.Metrics
}

func (s *measuredStore) done(op string, start time.Time, err error) {
	failed := err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrExists)
	s.m.Store(op, time.Since(start), failed)
}

func (s *measuredStore) Create(ctx context.Context, app, key string, value []byte, ttl time.Duration) error {
	start := time.Now()
	err := s.Store.Create(ctx, app, key, value, ttl)
	s.done("create", start, err)
	return err
}

func (s *measuredStore) Put(ctx context.Context, app, key string, value []byte, ttl time.Duration) error {
	start := time.Now()
	err := s.Store.Put(ctx, app, key, value, ttl)
	s.done("put", start, err)
	return err
}

func (s *measuredStore) Get(ctx context.Context, app, key string) ([]byte, error) {
	start := time.Now()
	v, err := s.Store.Get(ctx, app, key)
	s.done("get", start, err)
	return v, err
}

func (s *measuredStore) Take(ctx context.Context, app, key string) ([]byte, error) {
	start := time.Now()
	v, err := s.Store.Take(ctx, app, key)
	s.done("take", start, err)
	return v, err
}

func (s *measuredStore) Delete(ctx context.Context, app string, keys ...string) error {
	start := time.Now()
	err := s.Store.Delete(ctx, app, keys...)
	s.done("delete", start, err)
	return err
}

func (s *measuredStore) SetAdd(ctx context.Context, app, key string, ttl time.Duration, members ...string) error {
	start := time.Now()
	err := s.Store.SetAdd(ctx, app, key, ttl, members...)
	s.done("set_add", start, err)
	return err
}

func (s *measuredStore) SetMembers(ctx context.Context, app, key string) ([]string, error) {
	start := time.Now()
	v, err := s.Store.SetMembers(ctx, app, key)
	s.done("set_members", start, err)
	return v, err
}

func (s *measuredStore) SetRemove(ctx context.Context, app, key string, members ...string) error {
	start := time.Now()
	err := s.Store.SetRemove(ctx, app, key, members...)
	s.done("set_remove", start, err)
	return err
}

func (s *measuredStore) Apply(ctx context.Context, app string, ops ...store.Op) error {
	start := time.Now()
	err := s.Store.Apply(ctx, app, ops...)
	s.done("apply", start, err)
	return err
}

func (s *measuredStore) GetMany(ctx context.Context, app string, keys ...string) ([][]byte, error) {
	start := time.Now()
	v, err := s.Store.GetMany(ctx, app, keys...)
	s.done("get_many", start, err)
	return v, err
}

func (s *measuredStore) RateLimit(ctx context.Context, app string, buckets ...store.RateBucket) (store.RateResult, error) {
	start := time.Now()
	v, err := s.Store.RateLimit(ctx, app, buckets...)
	s.done("rate_limit", start, err)
	return v, err
}

func (s *measuredStore) CreateSession(ctx context.Context, ss *store.Session, ttl time.Duration) error {
	start := time.Now()
	err := s.Store.CreateSession(ctx, ss, ttl)
	s.done("create_session", start, err)
	return err
}

func (s *measuredStore) GetSession(ctx context.Context, app, id string) (*store.Session, error) {
	start := time.Now()
	v, err := s.Store.GetSession(ctx, app, id)
	s.done("get_session", start, err)
	return v, err
}

func (s *measuredStore) TouchSession(ctx context.Context, ss *store.Session, ttl time.Duration) error {
	start := time.Now()
	err := s.Store.TouchSession(ctx, ss, ttl)
	s.done("touch_session", start, err)
	return err
}

func (s *measuredStore) DeleteSession(ctx context.Context, app, id string) error {
	start := time.Now()
	err := s.Store.DeleteSession(ctx, app, id)
	s.done("delete_session", start, err)
	return err
}

func (s *measuredStore) UserSessions(ctx context.Context, app, userID string) ([]*store.Session, error) {
	start := time.Now()
	v, err := s.Store.UserSessions(ctx, app, userID)
	s.done("user_sessions", start, err)
	return v, err
}

func (s *measuredStore) CreateUser(ctx context.Context, u *store.User, first *store.Identity) error {
	start := time.Now()
	err := s.Store.CreateUser(ctx, u, first)
	s.done("create_user", start, err)
	return err
}

func (s *measuredStore) GetUser(ctx context.Context, app, id string) (*store.User, error) {
	start := time.Now()
	v, err := s.Store.GetUser(ctx, app, id)
	s.done("get_user", start, err)
	return v, err
}

func (s *measuredStore) UpdateUser(ctx context.Context, u *store.User) error {
	start := time.Now()
	err := s.Store.UpdateUser(ctx, u)
	s.done("update_user", start, err)
	return err
}

func (s *measuredStore) UserByIdentity(ctx context.Context, app, idp, subject string) (*store.User, *store.Identity, error) {
	start := time.Now()
	u, id, err := s.Store.UserByIdentity(ctx, app, idp, subject)
	s.done("user_by_identity", start, err)
	return u, id, err
}

func (s *measuredStore) UsersByVerifiedEmail(ctx context.Context, app, email string) ([]*store.User, error) {
	start := time.Now()
	v, err := s.Store.UsersByVerifiedEmail(ctx, app, email)
	s.done("users_by_verified_email", start, err)
	return v, err
}

func (s *measuredStore) LinkIdentity(ctx context.Context, id *store.Identity) error {
	start := time.Now()
	err := s.Store.LinkIdentity(ctx, id)
	s.done("link_identity", start, err)
	return err
}

func (s *measuredStore) UpdateIdentity(ctx context.Context, id *store.Identity) error {
	start := time.Now()
	err := s.Store.UpdateIdentity(ctx, id)
	s.done("update_identity", start, err)
	return err
}

func (s *measuredStore) Identities(ctx context.Context, app, userID string) ([]*store.Identity, error) {
	start := time.Now()
	v, err := s.Store.Identities(ctx, app, userID)
	s.done("identities", start, err)
	return v, err
}

func (s *measuredStore) Ping(ctx context.Context) error {
	start := time.Now()
	err := s.Store.Ping(ctx)
	s.done("ping", start, err)
	return err
}

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
