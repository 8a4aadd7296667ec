package redis

import (
	"context"
	"errors"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/aero2/aero2/store"
)

// Apply sends the ops in one MULTI/EXEC: one round trip, and no reader sees
// half of them. Every key of one application shares a hash slot, so this
// works on Cluster too. Set additions run the same script as SetAdd, sent
// whole (EVAL, not EVALSHA): a script missing from Redis's cache after a
// restart would fail inside EXEC, where the other commands still run.
func (s *Store) Apply(ctx context.Context, app string, ops ...store.Op) error {
	if len(ops) == 0 {
		return nil
	}
	for _, op := range ops {
		if op.Kind < store.OpPut || op.Kind > store.OpSetRemove {
			return fmt.Errorf("redis: unknown batch op %d", op.Kind)
		}
	}
	if len(ops) == 1 && ops[0].Kind == store.OpPut {
		// One command is atomic by itself: no MULTI/EXEC around it.
		return s.Put(ctx, app, ops[0].Key, ops[0].Value, ops[0].TTL)
	}
	cmds, err := s.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		for _, op := range ops {
			switch op.Kind {
			case store.OpPut:
				p.Set(ctx, s.key(app, "r", op.Key), op.Value, px(op.TTL))
			case store.OpDelete:
				p.Del(ctx, s.key(app, "r", op.Key))
			case store.OpSetAdd:
				if len(op.Members) == 0 {
					continue
				}
				args := make([]any, 0, len(op.Members)+1)
				args = append(args, ms(op.TTL))
				for _, m := range op.Members {
					args = append(args, m)
				}
				setAddScript.Eval(ctx, p, []string{s.key(app, "x", op.Key)}, args...)
			case store.OpSetRemove:
				if len(op.Members) == 0 {
					continue
				}
				args := make([]any, len(op.Members))
				for i, m := range op.Members {
					args[i] = m
				}
				p.SRem(ctx, s.key(app, "x", op.Key), args...)
			}
		}
		return nil
	})
	if err != nil {
		return wrap(err)
	}
	for _, c := range cmds {
		if err := c.Err(); err != nil && !errors.Is(err, goredis.Nil) {
			return wrap(err)
		}
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
