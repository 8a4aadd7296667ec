package redis

import (
	"context"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/aero2/aero2/store"
)

// rateScript is GCRA, as store/memory computes it: each key holds the
// time (µs, Redis's clock, so replicas' clocks do not matter) at which its
// bucket is full again. ARGV holds, per key, its interval in µs, burst
// and n. Every bucket is checked first; only if all have room are the
// spends written. It returns {allowed, fewest remaining, longest retry
// µs}. One script is one round trip, and Redis runs it alone: concurrent
// spends cannot both take a bucket's last request.
//
// go-redis/redis_rate (v10, which builds with go-redis v9) runs the same
// algorithm, one key per call, and writes its keys under a fixed "rate:"
// prefix, outside "<prefix>:{<app>}:": past the key_prefix that Redis ACLs
// and deployments sharing a Redis rely on.
var rateScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ok, fewest, retry = 1, -1, 0
local writes = {}
for i = 1, #KEYS do
  local interval, burst, n = tonumber(ARGV[3*i-2]), tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i])
  local limit = interval * burst
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  local want = tat + interval * math.max(n, 1)
  if want - now > limit then
    ok = 0
    retry = math.max(retry, want - now - limit)
  elseif n > 0 then
    tat = want
    writes[#writes + 1] = {KEYS[i], tat}
  end
  local rem = math.floor((limit - (tat - now)) / interval)
  if fewest < 0 or rem < fewest then fewest = rem end
end
if ok == 1 then
  for _, w in ipairs(writes) do
    redis.call('SET', w[1], string.format('%d', w[2]), 'PX', math.ceil((w[2] - now) / 1000))
  end
end
return {ok, fewest, retry}
`)

func (s *Store) RateLimit(ctx context.Context, app string, buckets ...store.RateBucket) (store.RateResult, error) {
	if len(buckets) == 0 {
		return store.RateResult{Allowed: true}, nil
	}
	keys := make([]string, len(buckets))
	args := make([]any, 0, 3*len(buckets))
	for i, b := range buckets {
		keys[i] = s.key(app, "rl", b.Key)
		args = append(args, b.Rate.Interval().Microseconds(), b.Rate.Burst, b.N)
	}
	v, err := rateScript.Run(ctx, s.c, keys, args...).Int64Slice()
	if err != nil {
		return store.RateResult{}, wrap(err)
	}
	if len(v) != 3 {
		return store.RateResult{}, wrap(fmt.Errorf("rate limit script answered %v", v))
	}
	return store.RateResult{Allowed: v[0] == 1, Remaining: int(v[1]), RetryAfter: time.Duration(v[2]) * time.Microsecond}, nil
}
