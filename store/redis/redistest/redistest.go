// Package redistest connects tests to the real Redis server that the test
// command starts (./scripts/test). A test that needs Redis fails, loudly,
// when Redis is not there: it never skips.
package redistest

import (
	"context"
	"crypto/rand"
	"os"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/store/redis"
)

// Addr is the Redis the tests use: $AERO2_TEST_REDIS_ADDR, or
// 127.0.0.1:6379.
func Addr() string {
	if a := os.Getenv("AERO2_TEST_REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// Config returns store settings for the test Redis with a key prefix of the
// test's own, so parallel tests and packages never see each other's keys.
// Keys under the prefix are deleted when the test ends.
func Config(t testing.TB) config.Redis {
	t.Helper()
	prefix := "aero2test-" + rand.Text()[:12]
	cfg := config.Redis{
		Addrs:        []string{Addr()},
		KeyPrefix:    prefix,
		DialTimeout:  2 * time.Second,
		ReadTimeout:  3 * time.Second,
		WriteTimeout: 3 * time.Second,
	}
	c := goredis.NewClient(&goredis.Options{Addr: Addr(), DialTimeout: 2 * time.Second})
	if err := c.Ping(context.Background()).Err(); err != nil {
		c.Close()
		t.Fatalf("Redis is required at %s and does not answer (%v): run ./scripts/test, which starts it, or set AERO2_TEST_REDIS_ADDR", Addr(), err)
	}
	t.Cleanup(func() {
		defer c.Close()
		ctx := context.Background()
		iter := c.Scan(ctx, 0, prefix+":*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if len(keys) > 0 {
			c.Del(ctx, keys...)
		}
	})
	return cfg
}

// New opens a store on the test Redis (see Config).
func New(t testing.TB) *redis.Store {
	t.Helper()
	s, err := redis.Open(context.Background(), Config(t))
	if err != nil {
		t.Fatalf("open Redis store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
