package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/tracing"
)

// maxHeaderBytes bounds request headers (Go's default is 1 MiB).
const maxHeaderBytes = 64 << 10

// Run builds the server and serves until ctx ends (SIGINT/SIGTERM in
// cmd/aero2); then in-flight requests get up to server.shutdown_timeout to
// finish, and the store closes last. SIGHUP, and with server.watch_config
// a change of the file, reloads the configuration (Live).
func Run(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	obs, err := openObservability(cfg)
	if err != nil {
		return err
	}
	defer obs.close()
	tp, stopTraces, err := tracing.Setup(ctx)
	if err != nil {
		return fmt.Errorf("traces (OTEL_* environment): %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		stopTraces(sctx) // flushes the last spans
	}()
	if tp != nil {
		log.Info("traces on: OTLP exporter from the OTEL_* environment")
	}
	live, err := NewLive(ctx, cfg, Options{Logger: log, Metrics: obs.metrics, Audit: obs.audit, TracerProvider: tp})
	if err != nil {
		return err
	}
	s := live.Current()
	if err := obs.serveMetrics(ctx, cfg.Server.MetricsListen, log); err != nil {
		live.Close()
		return err
	}
	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		live.Close()
		return fmt.Errorf("server.listen: %w", err)
	}
	rctx, stopReload := context.WithCancel(ctx)
	defer stopReload()
	live.reloadOnSignal(rctx)
	if cfg.Server.WatchConfig {
		if err := live.watchFile(rctx, cfg.File); err != nil {
			live.Close()
			return fmt.Errorf("server.watch_config: %w", err)
		}
	}
	log.Info("Aero2 listening", "addr", ln.Addr().String(), "store", cfg.Store.Type, "applications", len(s.apps))
	for _, a := range cfg.Apps() {
		log.Info("application", "name", a.Name, "issuer", a.Issuer, "identity_providers", len(a.IdentityProviders))
	}
	// No ReadTimeout or WriteTimeout: they would bound proxied uploads,
	// downloads and streams (SSE, WebSockets) as a whole. Request bodies
	// get their own deadlines instead (bodies.go): read_body_timeout for
	// Aero2's endpoints, proxy_body_idle_timeout between reads when
	// proxied.
	srv := &http.Server{
		Handler:           live,
		ReadHeaderTimeout: cfg.Server.ReadHeaderTimeout,
		IdleTimeout:       cfg.Server.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	tls := cfg.Server.TLS
	return Serve(ctx, srv, ln, cfg.Server.ShutdownTimeout, tls.CertFile, tls.KeyFile, live.Close, log)
}

// Serve runs srv on ln until ctx ends, then shuts down gracefully: the
// listener closes, in-flight requests finish (for at most timeout), and
// closeStore runs after the last of them, so none loses its store.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener, timeout time.Duration, certFile, keyFile string, closeStore func() error, log *slog.Logger) error {
	errc := make(chan error, 1)
	go func() {
		if certFile != "" {
			errc <- srv.ServeTLS(ln, certFile, keyFile)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		closeStore()
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests", "timeout_ms", timeout.Milliseconds())
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		log.Warn("shutdown timeout: closing remaining connections")
		srv.Close()
	}
	if cerr := closeStore(); cerr != nil {
		log.Warn("closing the store", "err", cerr)
	}
	if e := <-errc; e != nil && !errors.Is(e, http.ErrServerClosed) {
		return e
	}
	log.Info("stopped")
	return nil
}
