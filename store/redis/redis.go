// Package redis is the store that several Aero2 replicas share, on a single
// Redis node, Sentinel or Cluster (through redis.UniversalClient).
//
// Keys are "<prefix>:<app>:<kind>:{<key>}" (layout.go): the braces are a
// Cluster hash tag around the record's own key, or the user, session or
// identity a record belongs to, so one application's keys spread over
// every shard. The application stays in every key name, outside the tag.
// Operations that write several keys together run as one script when the
// keys share a slot (always on a single node or Sentinel), and otherwise
// as single-slot steps in an order that keeps the store's guarantees
// (cluster.go).
package redis

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/store"
)

var _ store.Store = (*Store)(nil)

// Store is the Redis backend.
type Store struct {
	c      goredis.UniversalClient
	prefix string
	addrs  string
	// legacy: the layout of Aero2 before the spread one, every key of an
	// application under one hash tag (store.redis.key_layout: application).
	legacy bool
	// cluster: keys may live on different nodes (c is a ClusterClient),
	// so a multi-key command must stay within one slot.
	cluster bool
}

// Open connects and pings, so that a wrong address fails at start-up with
// an error naming it rather than on the first request.
func Open(ctx context.Context, cfg config.Redis) (*Store, error) {
	opts := &goredis.UniversalOptions{
		Addrs:            cfg.Addrs,
		IsClusterMode:    cfg.Cluster,
		MasterName:       cfg.MasterName,
		Username:         cfg.Username,
		Password:         cfg.Password,
		SentinelUsername: cfg.SentinelUsername,
		SentinelPassword: cfg.SentinelPassword,
		DB:               cfg.DB,
		DialTimeout:      cfg.DialTimeout,
		ReadTimeout:      cfg.ReadTimeout,
		WriteTimeout:     cfg.WriteTimeout,
		PoolSize:         cfg.PoolSize,
		// A call fails within one dial_timeout, or one read/write
		// timeout, and is never sent twice. go-redis's defaults retry a
		// command three times, each dial five times: a Redis that
		// refuses connections cost every call two seconds whatever the
		// timeouts, one that drops packets up to twenty dial timeouts,
		// and a command whose reply timed out ran again — a second
		// GETDEL of a single-use state, a second spend of a rate limit.
		// The request fails instead (503), and its client may retry.
		MaxRetries:    -1,
		DialerRetries: 1,
		// On Cluster, go-redis follows MOVED and ASK and backs off on
		// TRYAGAIN and CLUSTERDOWN up to MaxRedirects times. A slot
		// migration answers TRYAGAIN to a multi-key command while its
		// keys are split between the two nodes, for as long as MIGRATE
		// takes: enough attempts, backing off up to max_retry_backoff,
		// outlast it (cluster.go keeps a timed-out command from being
		// sent again through these retries).
		MaxRedirects:    orDefault(cfg.MaxRedirects, config.DefaultRedisMaxRedirects),
		MinRetryBackoff: orDefault(cfg.MinRetryBackoff, config.DefaultRedisMinRetryBackoff),
		MaxRetryBackoff: orDefault(cfg.MaxRetryBackoff, config.DefaultRedisMaxRetryBackoff),
		// Aero2 passes request contexts; let their deadlines bound calls.
		//
		// go-redis's automatic pipelining (AutoPipeline, v9.22) is not
		// used, for this and failFast's sake: it runs a queued command on
		// its own context, so a request's deadline no longer bounds the
		// call and the hooks see no outage latch; and its one ordered
		// batch at a time makes the calls queued behind a stalled Redis
		// wait out one timeout each (20 concurrent requests failed after
		// 4 I/O timeouts, not 1). Measured on the token endpoint it cut
		// redis-server's CPU per token by 40-50% and raised no rate
		// (issue 13; BenchmarkPutParallel).
		ContextTimeoutEnabled: true,
		ClientName:            "aero2",
	}
	if cfg.TLS.Enabled {
		tc, err := tlsConfig(cfg.TLS)
		if err != nil {
			return nil, err
		}
		opts.TLSConfig = tc
	}
	c := goredis.NewUniversalClient(opts)
	c.AddHook(failFast{})
	if cc, ok := c.(*goredis.ClusterClient); ok {
		cc.OnNewNode(func(n *goredis.Client) { n.AddHook(sentOnce{}) })
		cc.AddHook(outlast{minBackoff: opts.MinRetryBackoff, maxBackoff: opts.MaxRetryBackoff, budget: outlastBudget})
	}
	s := New(c, cfg.KeyPrefix)
	s.addrs = strings.Join(cfg.Addrs, ",")
	pctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	if err := s.c.Ping(pctx).Err(); err != nil {
		s.c.Close()
		return nil, fmt.Errorf("redis at %s: %w", s.addrs, err)
	}
	// Not bounded by dial_timeout: on a large keyspace without a layout
	// mark the first start's SCAN takes longer (each call is bounded by
	// read_timeout).
	layout := orDefault(cfg.KeyLayout, config.RedisLayoutAuto)
	s.legacy = layout == config.RedisLayoutApplication
	if err := s.checkLayout(ctx, layout); err != nil {
		s.c.Close()
		return nil, err
	}
	return s, nil
}

// outlastBudget bounds how long a Cluster command is sent again after
// MOVED, ASK, TRYAGAIN or CLUSTERDOWN (cluster.go): longer than the end of
// a slot migration takes, shorter than a sign-in's patience.
const outlastBudget = 5 * time.Second

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// New wraps a client that is already configured; prefix starts every key.
// It uses the spread layout.
func New(c goredis.UniversalClient, prefix string) *Store {
	_, cluster := c.(*goredis.ClusterClient)
	return &Store{c: c, prefix: prefix, cluster: cluster}
}

func tlsConfig(t config.RedisTLS) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("store.redis.tls.ca_file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("store.redis.tls.ca_file %s: no PEM certificate found", t.CAFile)
		}
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("store.redis.tls: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// Client exposes the underlying client (benchmarks, tests).
func (s *Store) Client() goredis.UniversalClient { return s.c }

// Ping reports whether Redis answers.
func (s *Store) Ping(ctx context.Context) error { return wrap(s.c.Ping(ctx).Err()) }

// Close closes the connection pool.
func (s *Store) Close() error { return s.c.Close() }

// wrap maps redis.Nil to ErrNotFound and connection-level failures to
// ErrUnavailable; a cancelled or expired context stays what it is.
func wrap(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, goredis.Nil):
		return store.ErrNotFound
	case errors.Is(err, context.Canceled):
		return err
	default:
		return fmt.Errorf("%w: %v", store.ErrUnavailable, err)
	}
}

// px is a TTL for SET: 0 (no expiry) for none, and at least 1ms, since
// "SET PX 0" is an error rather than an instant expiry.
func px(ttl time.Duration) time.Duration { return time.Duration(ms(ttl)) * time.Millisecond }

// Records.

func (s *Store) Create(ctx context.Context, app, key string, value []byte, ttl time.Duration) error {
	ok, err := s.c.SetNX(ctx, s.key(app, "r", key), value, px(ttl)).Result()
	if err != nil {
		return wrap(err)
	}
	if !ok {
		return store.ErrExists
	}
	return nil
}

func (s *Store) Put(ctx context.Context, app, key string, value []byte, ttl time.Duration) error {
	return wrap(s.c.Set(ctx, s.key(app, "r", key), value, px(ttl)).Err())
}

func (s *Store) Get(ctx context.Context, app, key string) ([]byte, error) {
	v, err := s.c.Get(ctx, s.key(app, "r", key)).Bytes()
	return v, wrap(err)
}

// Take is one GETDEL: Redis runs commands one at a time, so exactly one of
// several concurrent takers sees the value.
func (s *Store) Take(ctx context.Context, app, key string) ([]byte, error) {
	v, err := s.c.GetDel(ctx, s.key(app, "r", key)).Bytes()
	return v, wrap(err)
}

func (s *Store) Delete(ctx context.Context, app string, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	full := make([]string, len(keys))
	for i, k := range keys {
		full[i] = s.key(app, "r", k)
	}
	// One DEL per slot, in one pipeline.
	groups := s.bySlot(full)
	if len(groups) == 1 {
		return wrap(s.c.Del(ctx, full...).Err())
	}
	_, err := s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, g := range groups {
			p.Del(ctx, pick(full, g)...)
		}
		return nil
	})
	return wrap(err)
}

// Sets.

// extendTTL makes KEYS[1] live at least ARGV[1] ms from now (0: forever).
// "existed" is whether the key existed before the caller's write.
const extendTTL = `
local function extend(key, ms, existed)
  if ms == 0 then redis.call('PERSIST', key) return end
  local cur = redis.call('PTTL', key)
  if (not existed) or (cur >= 0 and cur < ms) then redis.call('PEXPIRE', key, ms) end
end
`

var setAddScript = goredis.NewScript(extendTTL + `
local existed = redis.call('EXISTS', KEYS[1]) == 1
for i = 2, #ARGV do redis.call('SADD', KEYS[1], ARGV[i]) end
extend(KEYS[1], tonumber(ARGV[1]), existed)
return 1
`)

func ms(ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	if m := ttl.Milliseconds(); m > 0 {
		return m
	}
	return 1
}

func (s *Store) SetAdd(ctx context.Context, app, key string, ttl time.Duration, members ...string) error {
	if len(members) == 0 {
		return nil
	}
	args := make([]any, 0, len(members)+1)
	args = append(args, ms(ttl))
	for _, m := range members {
		args = append(args, m)
	}
	return wrap(setAddScript.Run(ctx, s.c, []string{s.key(app, "x", key)}, args...).Err())
}

func (s *Store) SetMembers(ctx context.Context, app, key string) ([]string, error) {
	m, err := s.c.SMembers(ctx, s.key(app, "x", key)).Result()
	return m, wrap(err)
}

func (s *Store) SetRemove(ctx context.Context, app, key string, members ...string) error {
	if len(members) == 0 {
		return nil
	}
	args := make([]any, len(members))
	for i, m := range members {
		args[i] = m
	}
	return wrap(s.c.SRem(ctx, s.key(app, "x", key), args...).Err())
}
