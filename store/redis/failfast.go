package redis

import (
	"context"
	"errors"

	goredis "github.com/redis/go-redis/v9"

	"github.com/aero2/aero2/store"
)

// errEarlierOutage is what a call gets when an earlier call of its
// request found Redis unavailable (store.FailFast); wrap makes it
// ErrUnavailable.
var errEarlierOutage = errors.New("an earlier call of this request found Redis unavailable")

// failFast is a go-redis hook that honours the request's outage latch
// (store.FailFast): it fails a command at once once the latch has
// tripped, and trips it when a command fails for want of Redis (a dial,
// read or write failure, a timeout), not for Redis's answer.
type failFast struct{}

var _ goredis.Hook = failFast{}

func (failFast) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (failFast) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		l := store.LatchOf(ctx)
		if l.Tripped() {
			cmd.SetErr(errEarlierOutage)
			return errEarlierOutage
		}
		err := next(ctx, cmd)
		if outage(err) {
			l.Trip()
		}
		return err
	}
}

func (failFast) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		l := store.LatchOf(ctx)
		if l.Tripped() {
			for _, c := range cmds {
				c.SetErr(errEarlierOutage)
			}
			return errEarlierOutage
		}
		err := next(ctx, cmds)
		if outage(err) {
			l.Trip()
		}
		return err
	}
}

// outage tells a failure to reach Redis from an answer: no error, a
// missing key, a failed WATCH, a cancelled request or any error reply
// (WRONGTYPE; NOSCRIPT, on which a script is sent again in full; even
// LOADING) are not outages.
func outage(err error) bool {
	if err == nil || errors.Is(err, goredis.Nil) || errors.Is(err, goredis.TxFailedErr) || errors.Is(err, context.Canceled) {
		return false
	}
	var reply goredis.Error
	return !errors.As(err, &reply)
}
