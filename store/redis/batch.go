package redis

import (
	"context"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/aero2/aero2/store"
)

// applyScript runs a batch: KEYS[i] is op i's key; ARGV is the op count,
// then per op its kind, TTL in ms and value count, followed by the values.
// Redis runs a script alone, so the batch is atomic; the guards
// (OpCreate, OpAbsent) are all checked before the first write. Kinds are
// store.OpKind values.
var applyScript = goredis.NewScript(extendTTL + `
local n = tonumber(ARGV[1])
local ops, pos = {}, 2
for i = 1, n do
  local kind, ttl, nv = tonumber(ARGV[pos]), tonumber(ARGV[pos + 1]), tonumber(ARGV[pos + 2])
  ops[i] = {kind, ttl, pos + 3, nv}
  pos = pos + 3 + nv
  if (kind == 5 or kind == 6) and redis.call('EXISTS', KEYS[i]) == 1 then return 0 end
end
for i = 1, n do
  local kind, ttl, vp, nv, key = ops[i][1], ops[i][2], ops[i][3], ops[i][4], KEYS[i]
  if kind == 1 or kind == 5 then
    if ttl > 0 then redis.call('SET', key, ARGV[vp], 'PX', ttl) else redis.call('SET', key, ARGV[vp]) end
  elseif kind == 2 then
    redis.call('DEL', key)
  elseif kind == 3 then
    local existed = redis.call('EXISTS', key) == 1
    for j = 0, nv - 1 do redis.call('SADD', key, ARGV[vp + j]) end
    extend(key, ttl, existed)
  elseif kind == 4 then
    for j = 0, nv - 1 do redis.call('SREM', key, ARGV[vp + j]) end
  end
end
return 1
`)

// Apply sends the batch as one script: one round trip, atomic, and — every
// key of an application sharing a hash slot — valid on Cluster. (A script
// missing from Redis's cache fails before running anything; go-redis then
// sends it whole.)
func (s *Store) Apply(ctx context.Context, app string, ops ...store.Op) error {
	if len(ops) == 0 {
		return nil
	}
	keys := make([]string, 0, len(ops))
	args := []any{len(ops)}
	for _, op := range ops {
		switch op.Kind {
		case store.OpPut, store.OpCreate:
			keys = append(keys, s.key(app, "r", op.Key))
			args = append(args, int(op.Kind), ms(op.TTL), 1, op.Value)
		case store.OpDelete, store.OpAbsent:
			keys = append(keys, s.key(app, "r", op.Key))
			args = append(args, int(op.Kind), 0, 0)
		case store.OpSetAdd, store.OpSetRemove:
			keys = append(keys, s.key(app, "x", op.Key))
			args = append(args, int(op.Kind), ms(op.TTL), len(op.Members))
			for _, m := range op.Members {
				args = append(args, m)
			}
		default:
			return fmt.Errorf("redis: unknown batch op %d", op.Kind)
		}
	}
	if len(ops) == 1 && ops[0].Kind == store.OpPut {
		// One command is atomic by itself.
		return s.Put(ctx, app, ops[0].Key, ops[0].Value, ops[0].TTL)
	}
	n, err := applyScript.Run(ctx, s.c, keys, args...).Int()
	if err != nil {
		return wrap(err)
	}
	if n == 0 {
		return store.ErrExists
	}
	return nil
}

// GetMany is one MGET.
func (s *Store) GetMany(ctx context.Context, app string, keys ...string) ([][]byte, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	full := make([]string, len(keys))
	for i, k := range keys {
		full[i] = s.key(app, "r", k)
	}
	vals, err := s.c.MGet(ctx, full...).Result()
	if err != nil {
		return nil, wrap(err)
	}
	out := make([][]byte, len(keys))
	for i, v := range vals {
		if str, ok := v.(string); ok {
			out[i] = []byte(str)
		}
	}
	return out, nil
}
