package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/aero2/aero2/store"
)

// applyScript runs a batch: KEYS[i] is op i's key; ARGV is the op count,
// the claim (below; 0: none), then per op what opArgs gives. Redis runs a
// script alone, so the batch is atomic; the guards (OpCreate, OpAbsent,
// OpTake) are all checked before the first write: an OpTake's key must
// exist (EXISTS is false for an expired key), and is deleted with the
// writes. Kinds are store.OpKind values, one digit each.
//
// The claim is one OpCreate or OpTake whose key no other op of the batch
// has (Apply picks it): checked last of the guards, by its own write, a
// SET NX or a DEL that answers whether the key was free or live. All the
// other guards have passed then and the script writes nothing before it,
// so a refused claim leaves the batch unwritten, as a refused EXISTS did;
// and since no other op has its key, writing it first changes nothing the
// others see. It saves the claim's EXISTS.
//
// What the script costs Redis is mostly the script itself, not the
// commands it calls (callgrind of redis-server, BenchmarkApplyRefresh):
// each redis.call, each ARGV string pushed into Lua, and each tonumber (a
// strtod) count. So the set ops send their members in one SADD or SREM;
// an index addition reads the set's TTL once, before it adds (PTTL is -2
// for no set, -1 for one without expiry), instead of EXISTS before and
// PTTL after; an op sends only the fields its kind has; kinds are
// compared as strings (Lua interns them: a pointer comparison) and a TTL
// goes to SET as the string it came as; a count of one digit is read
// with string.byte; and per op only its position in ARGV is kept, in
// one table per call.
var applyScript = goredis.NewScript(`
local function num(s)
  if #s == 1 then return string.byte(s) - 48 end
  return tonumber(s)
end
local function each(cmd, key, from, nv)
  -- unpack is bounded by Lua's stack: members go in chunks
  local last = from + nv - 1
  while from <= last do
    local to = math.min(from + 199, last)
    redis.call(cmd, key, unpack(ARGV, from, to))
    from = to + 1
  end
end
local n, claim = num(ARGV[1]), num(ARGV[2])
local at, pos = {}, 3
for i = 1, n do
  local kind = ARGV[pos]
  at[i] = pos
  if kind == '1' or kind == '5' then pos = pos + 3
  elseif kind == '3' then pos = pos + 3 + num(ARGV[pos + 2])
  elseif kind == '4' then pos = pos + 2 + num(ARGV[pos + 1])
  else pos = pos + 1 end
  if (kind == '5' or kind == '6' or kind == '7') and i ~= claim then
    -- a guard: OpCreate and OpAbsent refuse a live key, OpTake a missing one
    if (redis.call('EXISTS', KEYS[i]) == 1) ~= (kind == '7') then return 0 end
  end
end
if claim > 0 then
  local p, key = at[claim], KEYS[claim]
  if ARGV[p] == '7' then
    if redis.call('DEL', key) == 0 then return 0 end
  else
    local ok
    if ARGV[p + 1] ~= '0' then ok = redis.call('SET', key, ARGV[p + 2], 'NX', 'PX', ARGV[p + 1]) else ok = redis.call('SET', key, ARGV[p + 2], 'NX') end
    if not ok then return 0 end
  end
end
for i = 1, n do
  if i ~= claim then
    local p, key = at[i], KEYS[i]
    local kind = ARGV[p]
    if kind == '1' or kind == '5' then
      if ARGV[p + 1] ~= '0' then redis.call('SET', key, ARGV[p + 2], 'PX', ARGV[p + 1]) else redis.call('SET', key, ARGV[p + 2]) end
    elseif kind == '2' or kind == '7' then
      redis.call('DEL', key)
    elseif kind == '3' then
      -- for at least ttl (0: forever), never shortened: as SetAdd
      local ttl, cur = tonumber(ARGV[p + 1]), redis.call('PTTL', key)
      each('SADD', key, p + 3, num(ARGV[p + 2]))
      if ttl == 0 then
        if cur >= 0 then redis.call('PERSIST', key) end
      elseif cur == -2 or (cur >= 0 and cur < ttl) then
        redis.call('PEXPIRE', key, ttl)
      end
    elseif kind == '4' then
      each('SREM', key, p + 2, num(ARGV[p + 1]))
    end
  end
end
return 1
`)

// opArgs appends op's part of applyScript's ARGV: its kind, then for an
// OpPut or OpCreate the TTL in ms and the value, for an OpSetAdd the TTL,
// the member count and the members, for an OpSetRemove the count and the
// members, and nothing more for the others. false: no such kind.
func opArgs(args []any, op store.Op) ([]any, bool) {
	switch op.Kind {
	case store.OpPut, store.OpCreate:
		return append(args, int(op.Kind), ms(op.TTL), op.Value), true
	case store.OpDelete, store.OpAbsent, store.OpTake:
		return append(args, int(op.Kind)), true
	case store.OpSetAdd:
		args = append(args, int(op.Kind), ms(op.TTL), len(op.Members))
	case store.OpSetRemove:
		args = append(args, int(op.Kind), len(op.Members))
	default:
		return args, false
	}
	for _, m := range op.Members {
		args = append(args, m)
	}
	return args, true
}

// Apply sends the batch as one script when its keys share a slot (always
// off Cluster): one round trip, atomic. (A script missing from Redis's
// cache fails before running anything; go-redis then sends it whole.) On
// Cluster a batch whose keys span slots is applyAcross.
func (s *Store) Apply(ctx context.Context, app string, ops ...store.Op) error {
	if len(ops) == 0 {
		return nil
	}
	if len(ops) == 1 && ops[0].Kind == store.OpPut {
		// One command is atomic by itself.
		return s.Put(ctx, app, ops[0].Key, ops[0].Value, ops[0].TTL)
	}
	keys := make([]string, 0, len(ops))
	size := 2 + 3*len(ops)
	for _, op := range ops {
		size += len(op.Members)
	}
	args := make([]any, 2, size)
	args[0] = len(ops)
	for _, op := range ops {
		kind := "r"
		if op.Kind == store.OpSetAdd || op.Kind == store.OpSetRemove {
			kind = "x"
		}
		var ok bool
		if args, ok = opArgs(args, op); !ok {
			return fmt.Errorf("redis: unknown batch op %d", op.Kind)
		}
		keys = append(keys, s.key(app, kind, op.Key))
	}
	if groups := s.bySlot(keys); len(groups) > 1 {
		return s.applyAcross(ctx, keys, ops, groups)
	}
	args[1] = claim(keys, ops)
	n, err := applyScript.Run(ctx, s.c, keys, args...).Int()
	if err != nil {
		return wrap(err)
	}
	if n == 0 {
		return store.ErrExists
	}
	return nil
}

// claim picks the batch's claim for applyScript: the last OpCreate or
// OpTake whose key is no other op's (keys are the ops' full keys, so a
// record and a set of one name differ), as its 1-based index; 0 for
// none.
func claim(keys []string, ops []store.Op) int {
	for i := len(ops) - 1; i >= 0; i-- {
		if k := ops[i].Kind; k != store.OpCreate && k != store.OpTake {
			continue
		}
		alone := true
		for j := range keys {
			alone = alone && (j == i || keys[j] != keys[i])
		}
		if alone {
			return i + 1
		}
	}
	return 0
}

// applyAcross runs a batch whose keys are in several slots, where no
// script or transaction can hold them all, in three steps:
//
//  1. The guards, in one pipeline: every OpAbsent key is checked, every
//     OpCreate key created with SET NX and every OpTake key deleted (a DEL
//     that returns 1 is the claim). Of concurrent batches guarded by one
//     key exactly one creates or deletes it, and only that one can go on.
//     A batch refused by any guard deletes the ones it created and writes
//     nothing else; what it took stays taken (the value is gone: used up,
//     never free to be won twice). (Two batches with two guards each may
//     each win one and both fail: at most one is applied. Aero2's batches
//     carry one.)
//  2. The writes, one script per slot, all in one pipeline.
//  3. The OpAbsent keys again. One written since step 1 (a grant's
//     tombstone) makes the batch undo its puts and set additions and fail
//     with ErrExists. A revoker writes its tombstone and then reads the
//     index; the batch writes the index and then reads the tombstone: one
//     of the two sees the other, so a batch that succeeds is always in
//     the index the revoker reads.
//
// The difference from one script: while it runs, a reader can see some of
// its writes and not the rest, and a batch that fails half-way (Redis gone)
// leaves its guards taken — burnt, never free to be won twice. Aero2's
// multi-slot batches write new tokens that nobody has been given yet and
// their index entries, which is safe to see early.
func (s *Store) applyAcross(ctx context.Context, keys []string, ops []store.Op, groups [][]int) error {
	var absent, creates, takes []int
	for i, op := range ops {
		switch op.Kind {
		case store.OpAbsent:
			absent = append(absent, i)
		case store.OpCreate:
			creates = append(creates, i)
		case store.OpTake:
			takes = append(takes, i)
		}
	}
	// The guards, all in one pipeline: EXISTS of each OpAbsent key, SET
	// NX of each OpCreate key, DEL of each OpTake key.
	exists := make([]*goredis.IntCmd, len(absent))
	claims := make([]*goredis.BoolCmd, len(creates))
	taken := make([]*goredis.IntCmd, len(takes))
	_, err := s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for j, i := range absent {
			exists[j] = p.Exists(ctx, keys[i])
		}
		for j, i := range creates {
			claims[j] = p.SetNX(ctx, keys[i], ops[i].Value, px(ops[i].TTL))
		}
		for j, i := range takes {
			taken[j] = p.Del(ctx, keys[i])
		}
		return nil
	})
	var created []int
	refused := false
	for j, c := range claims {
		if c.Err() == nil && c.Val() {
			created = append(created, creates[j])
		} else if c.Err() == nil {
			refused = true
		}
	}
	for _, c := range exists {
		refused = refused || c.Val() > 0
	}
	for _, c := range taken {
		refused = refused || c.Err() == nil && c.Val() == 0
	}
	undoCreates := func() error {
		var errs []error
		for _, i := range created {
			errs = append(errs, s.deleteIf(ctx, keys[i], ops[i].Value))
		}
		return wrap(errors.Join(errs...))
	}
	if err != nil {
		// What it created stays: a guard burnt, never won twice.
		return wrap(err)
	}
	if refused {
		if err := undoCreates(); err != nil {
			return err
		}
		return store.ErrExists
	}
	var calls []scriptCall
	for _, g := range groups {
		args := []any{0, 0} // the count, below; no claim: the guards are done
		var gk []string
		for _, i := range g {
			op := ops[i]
			switch op.Kind {
			case store.OpPut, store.OpDelete, store.OpSetAdd, store.OpSetRemove:
				args, _ = opArgs(args, op)
			default:
				continue // the guards are done
			}
			gk = append(gk, keys[i])
		}
		if len(gk) > 0 {
			args[0] = len(gk)
			calls = append(calls, scriptCall{keys: gk, args: args})
		}
	}
	if _, err := s.evalEach(ctx, applyScript, calls); err != nil {
		return wrap(err)
	}
	if len(absent) == 0 {
		return nil
	}
	live, err := s.anyExists(ctx, pick(keys, absent))
	if err != nil {
		return wrap(err)
	}
	if !live {
		return nil
	}
	// Revoked meanwhile: take back what this batch added. (Its deletes
	// and takes stay done: what a batch deletes it has used up.)
	_, err = s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, op := range ops {
			switch op.Kind {
			case store.OpPut:
				p.Del(ctx, keys[i])
			case store.OpSetAdd:
				members := make([]any, len(op.Members))
				for j, m := range op.Members {
					members[j] = m
				}
				p.SRem(ctx, keys[i], members...)
			}
		}
		return nil
	})
	if err := errors.Join(wrap(err), undoCreates()); err != nil {
		return err
	}
	return store.ErrExists
}

// anyExists reports whether any of keys has a live record (one EXISTS per
// key, in one pipeline).
func (s *Store) anyExists(ctx context.Context, keys []string) (bool, error) {
	if len(keys) == 0 {
		return false, nil
	}
	cmds := make([]*goredis.IntCmd, len(keys))
	_, err := s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.Exists(ctx, k)
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	for _, c := range cmds {
		if c.Val() > 0 {
			return true, nil
		}
	}
	return false, nil
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
	vals, err := s.mget(ctx, full)
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

// mget is MGET, one per slot on Cluster, all in one pipeline; the values
// come back in the order of keys (nil for an absent key).
func (s *Store) mget(ctx context.Context, keys []string) ([]any, error) {
	groups := s.bySlot(keys)
	if len(groups) == 1 {
		return s.c.MGet(ctx, keys...).Result()
	}
	cmds := make([]*goredis.SliceCmd, len(groups))
	_, err := s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, g := range groups {
			cmds[i] = p.MGet(ctx, pick(keys, g)...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]any, len(keys))
	for i, g := range groups {
		for j, v := range cmds[i].Val() {
			out[g[j]] = v
		}
	}
	return out, nil
}

// GetManyAndUser pipelines the records' MGET (one per slot on Cluster)
// and the user's GET: one round trip (per node, in parallel, when the
// keys live on several Cluster masters).
func (s *Store) GetManyAndUser(ctx context.Context, app, userID string, keys ...string) (*store.User, [][]byte, error) {
	full := make([]string, len(keys))
	for i, k := range keys {
		full[i] = s.key(app, "r", k)
	}
	var groups [][]int
	if len(full) > 0 {
		groups = s.bySlot(full)
	}
	cmds := make([]*goredis.SliceCmd, len(groups))
	var user *goredis.StringCmd
	_, err := s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		user = p.Get(ctx, s.userKey(app, userID))
		for i, g := range groups {
			cmds[i] = p.MGet(ctx, pick(full, g)...)
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, nil, wrap(err)
	}
	out := make([][]byte, len(keys))
	for i, g := range groups {
		for j, v := range cmds[i].Val() {
			if str, ok := v.(string); ok {
				out[g[j]] = []byte(str)
			}
		}
	}
	b, err := user.Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, out, nil
	}
	if err != nil {
		return nil, nil, wrap(err)
	}
	var u store.User
	if err := json.Unmarshal(b, &u); err != nil {
		return nil, nil, err
	}
	return &u, out, nil
}
