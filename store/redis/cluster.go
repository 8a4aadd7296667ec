package redis

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// sentOnce is a hook on each node client of a ClusterClient. The cluster
// client retries a command on TRYAGAIN, MOVED and ASK (answers: nothing
// ran) — and, by go-redis's rules, also after a timeout or a connection
// lost mid-reply, when the command may well have run: a second GETDEL of
// a single-use state, a second spend of a rate limit. This hook turns
// those failures into errNotResent, which the cluster client does not
// retry; a failure to dial (nothing was sent) is left to be retried.
type sentOnce struct{}

var _ goredis.Hook = sentOnce{}

// errNotResent marks a command that may have reached Redis and failed
// without an answer. wrap makes it store.ErrUnavailable; failFast counts
// it an outage.
type errNotResent struct{ err error }

func (e errNotResent) Error() string {
	return "no answer from Redis (not sent again): " + e.err.Error()
}

// Unwrap is not provided on purpose: errors.As(net.Error) would find the
// timeout again and the cluster client retry it.

func maybeRan(err error) bool {
	if err == nil || errors.Is(err, goredis.Nil) || errors.Is(err, context.Canceled) {
		return false
	}
	var reply goredis.Error
	if errors.As(err, &reply) {
		return false // Redis answered
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return false
	}
	return true
}

func (sentOnce) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (sentOnce) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		err := next(ctx, cmd)
		if maybeRan(err) && !strings.HasPrefix(err.Error(), "redis: connection pool timeout") {
			err = errNotResent{err}
			cmd.SetErr(err)
		}
		return err
	}
}

func (sentOnce) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		err := next(ctx, cmds)
		if maybeRan(err) && !strings.HasPrefix(err.Error(), "redis: connection pool timeout") {
			err = errNotResent{err}
			for _, c := range cmds {
				if c.Err() == nil || maybeRan(c.Err()) {
					c.SetErr(err)
				}
			}
		}
		return err
	}
}

// scriptCall is one run of a script on keys of one slot.
type scriptCall struct {
	keys []string
	args []any
}

// evalEach runs script once per call, all in one pipeline (the cluster
// client sends each node its share at once): one round trip for the
// slots of a multi-slot operation. A node that does not know the script
// yet answers NOSCRIPT without running it; those calls go again in full.
func (s *Store) evalEach(ctx context.Context, script *goredis.Script, calls []scriptCall) ([]*goredis.Cmd, error) {
	cmds := make([]*goredis.Cmd, len(calls))
	_, _ = s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, c := range calls {
			cmds[i] = script.EvalSha(ctx, p, c.keys, c.args...)
		}
		return nil
	})
	var again []int
	for i, c := range cmds {
		if err := c.Err(); err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
			again = append(again, i)
		}
	}
	if len(again) > 0 {
		_, _ = s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for _, i := range again {
				cmds[i] = script.Eval(ctx, p, calls[i].keys, calls[i].args...)
			}
			return nil
		})
	}
	for _, c := range cmds {
		if err := c.Err(); err != nil && !errors.Is(err, goredis.Nil) {
			return cmds, err
		}
	}
	return cmds, nil
}

// deleteIfScript deletes KEYS[1] only if it still holds ARGV[1]: undoing
// a create of this call, not a later write of someone else's.
var deleteIfScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

func (s *Store) deleteIf(ctx context.Context, key string, value any) error {
	return deleteIfScript.Run(ctx, s.c, []string{key}, value).Err()
}

// redirected reports an answer by which Redis Cluster says that it ran
// nothing, for now: the slot is elsewhere (MOVED), half moved (ASK), its
// keys split by a migration (TRYAGAIN), or the cluster not serving it
// (CLUSTERDOWN).
func redirected(err error) bool {
	if err == nil {
		return false
	}
	var reply goredis.Error
	if !errors.As(err, &reply) {
		return false
	}
	m := err.Error()
	for _, p := range []string{"MOVED ", "ASK ", "TRYAGAIN ", "CLUSTERDOWN "} {
		if strings.HasPrefix(m, p) {
			return true
		}
	}
	return false
}

// outlast is a hook on the ClusterClient itself, around its own
// redirect loop. That loop follows MOVED and ASK at once, without a
// pause: while the masters disagree for a moment on who serves a slot
// (between the SETSLOT NODE calls that end a migration), its attempts
// bounce between two of them in well under a millisecond and the call
// fails. Each of those answers means nothing ran, so outlast sends the
// command again after a pause, doubling from minBackoff to maxBackoff,
// for up to budget (and never past the request's deadline).
type outlast struct {
	minBackoff, maxBackoff, budget time.Duration
}

func (outlast) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (o outlast) wait(ctx context.Context, start time.Time, attempt int) bool {
	d := o.minBackoff << min(attempt, 16)
	if d > o.maxBackoff || d <= 0 {
		d = o.maxBackoff
	}
	if time.Since(start)+d > o.budget {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (o outlast) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		err := next(ctx, cmd)
		start := time.Now()
		for attempt := 0; redirected(err) && o.wait(ctx, start, attempt); attempt++ {
			cmd.SetErr(nil)
			err = next(ctx, cmd)
		}
		return err
	}
}

// ProcessPipelineHook sends again only the commands of a pipeline that
// were answered with a redirect, and only when every failed command was
// (a transaction aborted by one is go-redis's to redo, whole).
func (o outlast) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		err := next(ctx, cmds)
		start := time.Now()
		for attempt := 0; err != nil; attempt++ {
			var again []goredis.Cmder
			for _, c := range cmds {
				if e := c.Err(); e != nil && !errors.Is(e, goredis.Nil) {
					if !redirected(e) {
						return err
					}
					again = append(again, c)
				}
			}
			if len(again) == 0 || !o.wait(ctx, start, attempt) {
				return err
			}
			for _, c := range again {
				c.SetErr(nil)
			}
			err = next(ctx, again)
			if err == nil {
				for _, c := range cmds {
					if e := c.Err(); e != nil && !errors.Is(e, goredis.Nil) {
						err = e
						break
					}
				}
			}
		}
		return err
	}
}

// watch is Watch that outlasts a slot migration. The cluster client's
// Watch follows MOVED and ASK only for the WATCH itself: a GET inside the
// transaction's function answered MOVED or ASK, or a MULTI whose queued
// command was (which EXEC then answers EXECABORT, having run nothing),
// comes back as the function's error, at once. Those are sent again,
// whole, after a pause and a fresh look at who serves the slot, for up to
// outlastBudget. A failed WATCH (TxFailedErr) is the caller's to retry.
func (s *Store) watch(ctx context.Context, fn func(*goredis.Tx) error, keys ...string) error {
	o := outlast{minBackoff: 8 * time.Millisecond, maxBackoff: 512 * time.Millisecond, budget: outlastBudget}
	start := time.Now()
	for attempt := 0; ; attempt++ {
		err := s.c.Watch(ctx, fn, keys...)
		if !s.cluster || !(redirected(err) || execAborted(err)) || !o.wait(ctx, start, attempt) {
			return err
		}
		if cc, ok := s.c.(*goredis.ClusterClient); ok {
			cc.ReloadState(ctx)
		}
	}
}

func execAborted(err error) bool {
	var reply goredis.Error
	return errors.As(err, &reply) && strings.HasPrefix(err.Error(), "EXECABORT")
}
