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
	groups := s.bySlot(keys)
	if len(groups) > 1 {
		return s.rateAcross(ctx, keys, args, groups)
	}
	v, err := rateScript.Run(ctx, s.c, keys, args...).Int64Slice()
	if err != nil {
		return store.RateResult{}, wrap(err)
	}
	return rateResult(v)
}

func rateResult(v []int64) (store.RateResult, error) {
	if len(v) != 3 {
		return store.RateResult{}, wrap(fmt.Errorf("rate limit script answered %v", v))
	}
	return store.RateResult{Allowed: v[0] == 1, Remaining: int(v[1]), RetryAfter: time.Duration(v[2]) * time.Microsecond}, nil
}

// rateAcross is RateLimit on Cluster with buckets in several slots: the
// script runs once per slot (one pipeline), each spending from its
// buckets only if all of them have room; if any slot refuses, the slots
// that spent are refunded (refundScript). The refund comes a moment after
// the spend: meanwhile a concurrent call may be refused that would have
// had room — never the other way round, so no more requests pass than a
// bucket holds, and a refused call, once refunded, has changed nothing.
func (s *Store) rateAcross(ctx context.Context, keys []string, args []any, groups [][]int) (store.RateResult, error) {
	calls := make([]scriptCall, len(groups))
	for i, g := range groups {
		ga := make([]any, 0, 3*len(g))
		for _, j := range g {
			ga = append(ga, args[3*j:3*j+3]...)
		}
		calls[i] = scriptCall{keys: pick(keys, g), args: ga}
	}
	cmds, err := s.evalEach(ctx, rateScript, calls)
	if err != nil {
		return store.RateResult{}, wrap(err)
	}
	res := store.RateResult{Allowed: true, Remaining: -1}
	var spent []scriptCall
	for i, c := range cmds {
		v, err := c.Int64Slice()
		if err != nil {
			return store.RateResult{}, wrap(err)
		}
		r, err := rateResult(v)
		if err != nil {
			return store.RateResult{}, err
		}
		if r.Allowed {
			spent = append(spent, calls[i])
		}
		res.Allowed = res.Allowed && r.Allowed
		if res.Remaining < 0 || r.Remaining < res.Remaining {
			res.Remaining = r.Remaining
		}
		res.RetryAfter = max(res.RetryAfter, r.RetryAfter)
	}
	if !res.Allowed && len(spent) > 0 {
		if _, err := s.evalEach(ctx, refundScript, spent); err != nil {
			return store.RateResult{}, wrap(err)
		}
	}
	return res, nil
}

// refundScript gives back what rateScript spent with the same KEYS and
// ARGV: each bucket's time of being full again moves back by n intervals
// (a bucket full by then is deleted, as it would have expired).
var refundScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
for i = 1, #KEYS do
  local interval, n = tonumber(ARGV[3*i-2]), tonumber(ARGV[3*i])
  local tat = tonumber(redis.call('GET', KEYS[i]))
  if tat and n > 0 then
    tat = tat - interval * n
    if tat <= now then redis.call('DEL', KEYS[i])
    else redis.call('SET', KEYS[i], string.format('%d', tat), 'PX', math.ceil((tat - now) / 1000)) end
  end
end
return 1
`)
