package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/aero2/aero2/audit"
	"github.com/aero2/aero2/config"
)

// Live serves a Server whose configuration can be replaced while it runs
// (hot reload, on SIGHUP or when the file changes). Reload builds a whole
// new Server — routes, policies, clients, identity providers, signing key
// managers — on the same store, and swaps it in atomically (as Pomerium's
// OnConfigChange does): each request runs on the Server it started on, to
// its end, and sessions survive because they live in the store. A file
// that does not load, validate and build leaves the running Server alone.
type Live struct {
	opts  Options
	log   *slog.Logger
	owned bool // the store was opened here: Close closes it
	cur   atomic.Pointer[Server]

	mu  sync.Mutex // one reload at a time
	sum [sha256.Size]byte
}

// NewLive builds the first Server (New) from cfg, whose File Reload reads
// again.
func NewLive(ctx context.Context, cfg *config.Config, opts Options) (*Live, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Connectors == nil {
		opts.Connectors = Connectors()
	}
	s, err := New(ctx, cfg, opts)
	if err != nil {
		return nil, err
	}
	l := &Live{opts: opts, log: opts.Logger, owned: opts.Store == nil}
	l.opts.Store = s.store // every rebuild shares it
	if data, err := os.ReadFile(cfg.File); err == nil {
		l.sum = sha256.Sum256(data)
	}
	l.cur.Store(s)
	return l, nil
}

// ServeHTTP serves the request on the current Server. A reload during the
// request does not change the Server it runs on.
func (l *Live) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.cur.Load().handler.ServeHTTP(w, r)
}

// Current is the Server requests are served on now.
//
// Its Config is the configuration it was built from.
func (l *Live) Current() *Server { return l.cur.Load() }

// Close stops the current Server's background work and, when NewLive
// opened the store, closes it.
func (l *Live) Close() error {
	s := l.cur.Load()
	s.stopBackground()
	if l.owned {
		return s.store.Close()
	}
	return nil
}

// fixedKeys are the keys that cannot change while the process runs: the
// listener and the HTTP server's timeouts are set up once, the store is
// what every Server shares (and what sessions live in), the logger is made
// once, and the secrets derive the keys that what is stored and issued was
// made with. A reload that changes one logs it as "needs restart" and
// keeps the running value.
var fixedKeys = []struct {
	path string
	get  func(c *config.Config) any
	keep func(into, from *config.Config)
}{
	{"server.listen", func(c *config.Config) any { return c.Server.Listen }, func(n, o *config.Config) { n.Server.Listen = o.Server.Listen }},
	{"server.tls", func(c *config.Config) any { return c.Server.TLS }, func(n, o *config.Config) { n.Server.TLS = o.Server.TLS }},
	{"server.shutdown_timeout", func(c *config.Config) any { return c.Server.ShutdownTimeout }, func(n, o *config.Config) { n.Server.ShutdownTimeout = o.Server.ShutdownTimeout }},
	{"server.read_header_timeout", func(c *config.Config) any { return c.Server.ReadHeaderTimeout }, func(n, o *config.Config) { n.Server.ReadHeaderTimeout = o.Server.ReadHeaderTimeout }},
	{"server.idle_timeout", func(c *config.Config) any { return c.Server.IdleTimeout }, func(n, o *config.Config) { n.Server.IdleTimeout = o.Server.IdleTimeout }},
	{"server.watch_config", func(c *config.Config) any { return c.Server.WatchConfig }, func(n, o *config.Config) { n.Server.WatchConfig = o.Server.WatchConfig }},
	{"server.metrics_listen", func(c *config.Config) any { return c.Server.MetricsListen }, func(n, o *config.Config) { n.Server.MetricsListen = o.Server.MetricsListen }},
	{"store", func(c *config.Config) any { return c.Store }, func(n, o *config.Config) { n.Store = o.Store }},
	{"log", func(c *config.Config) any { return c.Log }, func(n, o *config.Config) { n.Log = o.Log }},
	{"secrets", func(c *config.Config) any { return c.Secrets }, func(n, o *config.Config) { n.Secrets = o.Secrets }},
}

// keepFixed puts the running values of fixedKeys back into next and
// returns, positioned in next's file, those that changed.
func keepFixed(running, next *config.Config) config.Problems {
	var changed config.Problems
	for _, k := range fixedKeys {
		if !reflect.DeepEqual(k.get(running), k.get(next)) {
			changed = append(changed, next.Problem(k.path, "changed: needs a restart; the running value stays until then"))
			k.keep(next, running)
		}
	}
	return changed
}

// ErrUnchanged: Reload found the file as it was last loaded.
var ErrUnchanged = errors.New("configuration unchanged")

// Reload reads the configuration file again and, if it loads, validates
// and builds, swaps the new Server in; keys that need a restart keep
// their running values (and are logged). On any problem the running
// Server stays, and every problem is logged with its line:col and
// returned (config.Problems where positioned). With onlyIfChanged, a file
// with the same content as last time is not reloaded (ErrUnchanged).
func (l *Live) Reload(ctx context.Context, onlyIfChanged bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	running := l.cur.Load()
	file := running.cfg.File
	data, err := os.ReadFile(file)
	if err != nil {
		l.log.Error("config reload failed: keeping the running configuration", "file", file, "err", err)
		return err
	}
	sum := sha256.Sum256(data)
	if onlyIfChanged && bytes.Equal(sum[:], l.sum[:]) {
		return ErrUnchanged
	}
	next, err := config.Parse(file, data, os.LookupEnv)
	if err != nil {
		l.logProblems(err)
		return err
	}
	for _, p := range keepFixed(running.cfg, next) {
		l.log.Warn("config reload: needs restart, not applied", "problem", p.Error())
	}
	s, err := build(ctx, next, running.store, l.opts)
	if err == nil {
		err = s.start(ctx)
	}
	if err != nil {
		if s != nil {
			s.stopBackground()
		}
		l.logProblems(err)
		return err
	}
	l.cur.Store(s)
	l.sum = sum
	audit.Log(ctx, l.opts.Audit, audit.Event{Type: audit.ConfigReloaded, Reason: "ok"})
	// Requests that started on the running Server finish on it; only its
	// background work (scheduled key rotation) stops, since the new
	// Server's key managers run their own.
	running.stopBackground()
	routes := 0
	for _, a := range next.Apps() {
		routes += len(a.ProxyRoutes())
	}
	l.log.Info("config reloaded", "file", file, "applications", len(s.apps), "routes", routes)
	return nil
}

// logProblems logs why a reload was refused: every configuration problem
// on a line of its own, with its file:line:col.
func (l *Live) logProblems(err error) {
	var ps config.Problems
	if errors.As(err, &ps) {
		for _, p := range ps {
			l.log.Error("config reload refused: keeping the running configuration", "problem", p.Error())
		}
		return
	}
	l.log.Error("config reload refused: keeping the running configuration", "err", fmt.Sprint(err))
}
