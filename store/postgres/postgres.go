// Package postgres is the store that keeps Aero2's data of record in
// PostgreSQL: users, their linked identities, consents and signing keys
// are tables with the constraints that enforce their rules (one user per
// account at a provider; no identity without its user), so that an
// operator can back them up, query them with psql and replicate them.
// Ephemeral state (login state, codes, tokens, sessions, rate limits) has
// tables of its own with an expiry column, swept in bounded batches.
//
// Every call runs under the request's context and the store's
// query_timeout, as one statement or one pipelined batch (one round trip,
// one implicit transaction); pgx prepares each statement once per
// connection and caches it.
//
// The schema is versioned (migrations/, embedded): Migrate applies what
// is missing; Open refuses a schema older than this build needs.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/store"
)

var _ store.Store = (*Store)(nil)

// Store is the PostgreSQL backend.
type Store struct {
	pool    *pgxpool.Pool
	timeout time.Duration
	sweep   time.Duration
	log     *slog.Logger

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// ErrSchemaOutdated is Open's error when the database's schema is older
// than this build needs: run `aero2 migrate` (or set migrate_on_start).
var ErrSchemaOutdated = errors.New("postgres: schema outdated")

// poolConfig parses the DSN and applies the store's settings. Errors never
// repeat the DSN: it may hold a password.
func poolConfig(cfg config.Postgres) (*pgxpool.Config, error) {
	pc, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, errors.New("postgres: invalid dsn (expected a postgres:// URL or key=value pairs)")
	}
	if cfg.MaxConns > 0 {
		pc.MaxConns = int32(cfg.MaxConns)
	}
	if cfg.ConnectTimeout > 0 {
		pc.ConnConfig.ConnectTimeout = cfg.ConnectTimeout
	}
	if pc.ConnConfig.RuntimeParams == nil {
		pc.ConnConfig.RuntimeParams = map[string]string{}
	}
	pc.ConnConfig.RuntimeParams["application_name"] = "aero2"
	// A connection idle in a pool may have been cut by a restart of the
	// server; pgxpool checks one that has been idle for a second before
	// handing it out, and a call that still finds it dead fails with
	// ErrUnavailable (503), never a 500.
	pc.HealthCheckPeriod = 5 * time.Second
	return pc, nil
}

// Where names the server a DSN points at, for messages: host, port and
// database, never the user's password.
func Where(dsn string) string {
	pc, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return "(invalid dsn)"
	}
	return fmt.Sprintf("%s/%s", net.JoinHostPort(pc.Host, fmt.Sprint(pc.Port)), pc.Database)
}

// oneLine is err with its message on one line. pgconn lists each address
// it tried (a host with an IPv4 and an IPv6 address, sslmode=prefer's TLS
// and plain attempts) on a line of its own, tab-indented; a command's
// error is one line on standard error (and a log line's value one line).
func oneLine(err error) error {
	if err == nil || !strings.ContainsAny(err.Error(), "\r\n") {
		return err
	}
	return lineError{err}
}

type lineError struct{ err error }

func (e lineError) Error() string {
	lines := strings.FieldsFunc(e.err.Error(), func(r rune) bool { return r == '\n' || r == '\r' })
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	return strings.Join(lines, " ")
}
func (e lineError) Unwrap() error { return e.err }

// Open connects, pings, and checks that the schema is current; with
// cfg.MigrateOnStart it migrates first. It starts the sweeper; Close
// stops it.
func Open(ctx context.Context, cfg config.Postgres) (*Store, error) {
	pc, err := poolConfig(cfg)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres at %s: %w", Where(cfg.DSN), oneLine(err))
	}
	s := &Store{pool: pool, timeout: cfg.QueryTimeout, sweep: cfg.SweepInterval, log: slog.Default().With("part", "store")}
	if s.timeout <= 0 {
		s.timeout = config.DefaultPostgresQueryTimeout
	}
	if s.sweep <= 0 {
		s.sweep = config.DefaultPostgresSweepInterval
	}
	fail := func(err error) (*Store, error) { pool.Close(); return nil, err }
	pctx, cancel := context.WithTimeout(ctx, max(cfg.ConnectTimeout, time.Second))
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		return fail(fmt.Errorf("postgres at %s: %w", Where(cfg.DSN), oneLine(err)))
	}
	if cfg.MigrateOnStart {
		if _, err := migrate(pctx, pool); err != nil {
			return fail(err)
		}
	}
	have, err := version(pctx, pool)
	if err != nil {
		return fail(fmt.Errorf("postgres at %s: reading the schema version: %w", Where(cfg.DSN), err))
	}
	if want := Latest(); have < want {
		return fail(fmt.Errorf("%w: the database at %s has schema version %d, this aero2 needs %d: run `aero2 migrate`", ErrSchemaOutdated, Where(cfg.DSN), have, want))
	}
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	go s.sweeper()
	return s, nil
}

// Pool exposes the connection pool (tests, store copy).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Ping reports whether PostgreSQL answers.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	return s.fail(ctx, s.pool.Ping(ctx))
}

// Close stops the sweeper and closes the pool.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.stop != nil {
			close(s.stop)
			<-s.done
		}
		s.pool.Close()
	})
	return nil
}

// errEarlierOutage is what a call gets when an earlier call of its request
// found PostgreSQL unavailable (store.FailFast).
var errEarlierOutage = errors.New("an earlier call of this request found PostgreSQL unavailable")

// begin bounds a call by the query timeout and honours the request's
// outage latch.
func (s *Store) begin(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if store.LatchOf(ctx).Tripped() {
		return nil, nil, fmt.Errorf("%w: %v", store.ErrUnavailable, errEarlierOutage)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	return ctx, cancel, nil
}

// SQLSTATEs the store's own SQL raises or relies on.
const (
	codeLive       = "A2XST" // aero2_guard: a batch's guard found a live record
	codeUnique     = "23505" // unique_violation
	codeForeignKey = "23503" // foreign_key_violation
	codeCheck      = "23514" // check_violation
	codeUndefined  = "42P01" // undefined_table
)

// fail maps an error: constraint violations to ErrExists or ErrNotFound
// where the caller asks for them (see the methods), failures to reach or
// use the database (connection, timeout, shutdown, too many connections,
// serialization or deadlock) to ErrUnavailable, tripping the request's
// latch; a cancelled request stays what it is. Anything else is a bug in
// a statement and is returned as is.
func (s *Store) fail(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return err
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code[:2] {
		case "08", "53", "57", "58", "40", "55":
			// connection exception, insufficient resources, operator
			// intervention (admin shutdown, cannot connect now), system
			// error, transaction rollback, lock not available
		default:
			return err
		}
	}
	store.LatchOf(ctx).Trip()
	return fmt.Errorf("%w: %v", store.ErrUnavailable, err)
}

// pgCode is the SQLSTATE of err, or "".
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// us is a TTL as microseconds for SQL (expires_at = now() + us), or nil
// for "no expiry".
func us(ttl time.Duration) *int64 {
	if ttl <= 0 {
		return nil
	}
	v := max(ttl.Microseconds(), 1)
	return &v
}

// expiry is the SQL for "ttl from now, or never" of a microseconds
// parameter named p.
func expiry(p string) string {
	return "now() + @" + p + "::bigint * interval '1 microsecond'"
}

// live is the SQL condition that a row's expires_at has not passed.
func live(col string) string { return "(" + col + " IS NULL OR " + col + " > now())" }

// run executes one statement and returns its row count.
func (s *Store) exec(ctx context.Context, sql string, args pgx.NamedArgs) (int64, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return 0, err
	}
	defer cancel()
	tag, err := s.pool.Exec(ctx, sql, args)
	if err != nil {
		return 0, s.fail(ctx, err)
	}
	return tag.RowsAffected(), nil
}

// batch sends b in one round trip, as one implicit transaction: it
// commits whole or not at all. Each queued query's callback reads its
// result.
func (s *Store) batch(ctx context.Context, b *pgx.Batch) error {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	return s.fail(ctx, s.pool.SendBatch(ctx, b).Close())
}
