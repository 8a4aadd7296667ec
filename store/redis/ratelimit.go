package redis

import (
	"context"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/aero2/aero2/store"
)

// rateScript is GCRA, as store/memory computes it: KEYS[1] holds the time
// (µs, Redis's clock, so replicas' clocks do not matter) at which the
// bucket is full again. ARGV: interval µs, burst, n. It returns {allowed,
// remaining, retry µs}. One script is one round trip, and Redis runs it
// alone: concurrent spends cannot both take the last request.
//
// go-redis/redis_rate (v10, which builds with go-redis v9) runs the same
// algorithm, but writes its keys under a fixed "rate:" prefix, outside
// "<prefix>:{<app>}:": past the key_prefix that Redis ACLs and deployments
// sharing a Redis rely on.
var rateScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval, burst, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local limit = interval * burst
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local want = tat + interval * math.max(n, 1)
if want - now > limit then
  return {0, math.floor((limit - (tat - now)) / interval), want - now - limit}
end
if n > 0 then
  tat = want
  redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', math.ceil((tat - now) / 1000))
end
return {1, math.floor((limit - (tat - now)) / interval), 0}
`)

func (s *Store) RateLimit(ctx context.Context, app, key string, rate store.Rate, n int) (store.RateResult, error) {
	interval := rate.Interval().Microseconds()
	v, err := rateScript.Run(ctx, s.c, []string{s.key(app, "rl", key)}, interval, rate.Burst, n).Int64Slice()
	if err != nil {
		return store.RateResult{}, wrap(err)
	}
	if len(v) != 3 {
		return store.RateResult{}, wrap(fmt.Errorf("rate limit script answered %v", v))
	}
	return store.RateResult{Allowed: v[0] == 1, Remaining: int(v[1]), RetryAfter: time.Duration(v[2]) * time.Microsecond}, nil
}
