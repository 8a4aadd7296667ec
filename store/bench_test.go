package store_test

// Benchmarks of the two operations on Aero2's hot paths: reading a session
// (every authenticated request) and the atomic take of single-use state
// (every sign-in callback). Each backend also runs a baseline in the same
// run, so the figures can be read as ratios on a noisy machine:
//
//	go test -run '^$' -bench . -benchtime 2s ./store/
//
// memory's baseline is a mutex-guarded map read; Redis's is a bare PING
// round trip over the same connection pool; PostgreSQL's a SELECT 1. The
// user lookup is the one of every federated sign-in callback.

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/memory"
	"github.com/aero2/aero2/store/postgres"
	"github.com/aero2/aero2/store/postgres/pgtest"
	"github.com/aero2/aero2/store/redis"
	"github.com/aero2/aero2/store/redis/redistest"
)

type backend struct {
	name     string
	open     func(b *testing.B) store.Store
	baseline func(b *testing.B, s store.Store) func(ctx context.Context) error
}

func backends() []backend {
	return []backend{
		{"memory", func(b *testing.B) store.Store { return memory.New() },
			func(b *testing.B, _ store.Store) func(context.Context) error {
				var mu sync.RWMutex
				m := map[string][]byte{"k": []byte("v")}
				return func(context.Context) error {
					mu.RLock()
					_ = m["k"]
					mu.RUnlock()
					return nil
				}
			}},
		{"redis", func(b *testing.B) store.Store { return redistest.New(b) },
			func(b *testing.B, s store.Store) func(context.Context) error {
				c := s.(*redis.Store).Client()
				return func(ctx context.Context) error { return c.Ping(ctx).Err() }
			}},
		// PostgreSQL's baseline is SELECT 1 over the same pool: a round
		// trip with a cached prepared statement.
		{"postgres", func(b *testing.B) store.Store { return pgtest.New(b) },
			func(b *testing.B, s store.Store) func(context.Context) error {
				p := s.(*postgres.Store).Pool()
				return func(ctx context.Context) error { _, err := p.Exec(ctx, "SELECT 1"); return err }
			}},
	}
}

func BenchmarkStore(b *testing.B) {
	for _, be := range backends() {
		b.Run(be.name, func(b *testing.B) {
			s := be.open(b)
			defer s.Close()
			ctx := context.Background()
			app := "bench"
			now := time.Now().UTC()
			sess := &store.Session{ID: "bench-session", App: app, UserID: "u1", IDP: "dev",
				AuthTime: now, CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(time.Hour),
				IP: "192.0.2.1", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) bench"}
			if err := s.CreateSession(ctx, sess, time.Hour); err != nil {
				b.Fatal(err)
			}
			base := be.baseline(b, s)
			u := &store.User{ID: "u1", App: app, Name: "Bench", Email: "bench@example.com", EmailVerified: true, Groups: []string{"dev"}, CreatedAt: now, LastLogin: now}
			if err := s.CreateUser(ctx, u, &store.Identity{App: app, IDP: "github", Subject: "1", UserID: "u1", LinkedAt: now, LastLogin: now}); err != nil {
				b.Fatal(err)
			}

			b.Run("baseline", func(b *testing.B) {
				for b.Loop() {
					if err := base(ctx); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("session-read", func(b *testing.B) {
				for b.Loop() {
					if _, err := s.GetSession(ctx, app, sess.ID); err != nil {
						b.Fatal(err)
					}
				}
			})
			// The user lookup of every federated sign-in callback.
			b.Run("user-by-identity", func(b *testing.B) {
				for b.Loop() {
					if _, _, err := s.UserByIdentity(ctx, app, "github", "1"); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("take", func(b *testing.B) {
				keys := prepare(b, s, app, b.N)
				i := 0
				b.ResetTimer()
				for range b.N {
					if _, err := s.Take(ctx, app, keys[i]); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
			// The parallel variants show throughput with as many callers
			// as the machine has cores, as a server sees it.
			b.Run("baseline-parallel", func(b *testing.B) {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := base(ctx); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
			b.Run("session-read-parallel", func(b *testing.B) {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := s.GetSession(ctx, app, sess.ID); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
			b.Run("take-parallel", func(b *testing.B) {
				keys := prepare(b, s, app, b.N)
				var next atomic.Int64
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						k := keys[next.Add(1)-1]
						if _, err := s.Take(ctx, app, k); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		})
	}
}

// prepare creates n single-use records to take, outside the timer.
func prepare(b *testing.B, s store.Store, app string, n int) []string {
	b.Helper()
	b.StopTimer()
	defer b.StartTimer()
	ctx := context.Background()
	keys := make([]string, n)
	prefix := fmt.Sprintf("state-%d-", time.Now().UnixNano())
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				keys[i] = prefix + fmt.Sprint(i)
				if err := s.Create(ctx, app, keys[i], []byte(`{"idp":"github","return_to":"/dashboard"}`), time.Minute); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	return keys
}
