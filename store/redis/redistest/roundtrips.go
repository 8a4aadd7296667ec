package redistest

import (
	"context"
	"strings"
	"sync"

	goredis "github.com/redis/go-redis/v9"

	"github.com/aero2/aero2/store/redis"
)

// RoundTrips counts the round trips a store makes to Redis: one per
// command sent alone, one per pipeline or transaction (MULTI … EXEC), as
// the client sends them. A store method is not one round trip: a read of
// a user by identity is two GETs, a WATCH transaction four; tests that pin
// what a request costs on Redis count here, beneath the store's methods.
type RoundTrips struct {
	mu    sync.Mutex
	trips []string
}

// CountRoundTrips starts counting s's round trips (those of connections
// made for WATCH included: the client's hooks are theirs too).
func CountRoundTrips(s *redis.Store) *RoundTrips {
	rt := &RoundTrips{}
	s.Client().AddHook(rt)
	return rt
}

// Drain returns the round trips since the last Drain, each as its
// commands ("get", "evalsha", "pipeline: hmget hmget"), and forgets them.
func (rt *RoundTrips) Drain() []string {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	out := rt.trips
	rt.trips = nil
	return out
}

func (rt *RoundTrips) note(s string) {
	rt.mu.Lock()
	rt.trips = append(rt.trips, s)
	rt.mu.Unlock()
}

func (rt *RoundTrips) DialHook(next goredis.DialHook) goredis.DialHook { return next }

// connSetup are the commands go-redis sends on a new connection before
// any of the store's: not counted, since a connection is made once and
// then reused.
var connSetup = map[string]bool{"hello": true, "client": true, "auth": true, "select": true}

func (rt *RoundTrips) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		if !connSetup[cmd.Name()] {
			rt.note(cmd.Name())
		}
		return next(ctx, cmd)
	}
}

func (rt *RoundTrips) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		names := make([]string, 0, len(cmds))
		for _, c := range cmds {
			if !connSetup[c.Name()] {
				names = append(names, c.Name())
			}
		}
		if len(names) > 0 {
			rt.note("pipeline: " + strings.Join(names, " "))
		}
		return next(ctx, cmds)
	}
}
