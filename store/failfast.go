package store

import (
	"context"
	"sync/atomic"
)

// FailFast returns a context whose store calls share one outage latch:
// once a call in it finds the store unavailable, every later call in it
// fails at once with ErrUnavailable, instead of waiting out its own
// timeout. The server gives every request one, so that a request answers
// 503 about one store timeout after Redis stops answering, not one
// timeout per call it would have made (a rate limit that cannot be asked
// allows, and the endpoint's own calls then fail). A context that has a
// latch already keeps it: an in-process request made for another shares
// its parent's.
func FailFast(ctx context.Context) context.Context {
	if LatchOf(ctx) != nil {
		return ctx
	}
	return context.WithValue(ctx, latchKey{}, new(Latch))
}

// Latch records that the store was found unavailable. Backends that can
// be (store/redis) consult it before every call and trip it after a call
// that failed so; the nil Latch (a context without one) never trips.
type Latch struct{ tripped atomic.Bool }

type latchKey struct{}

// LatchOf returns the context's latch, or nil.
func LatchOf(ctx context.Context) *Latch {
	l, _ := ctx.Value(latchKey{}).(*Latch)
	return l
}

// Trip records an outage.
func (l *Latch) Trip() {
	if l != nil {
		l.tripped.Store(true)
	}
}

// Tripped reports whether a call in the context found the store
// unavailable.
func (l *Latch) Tripped() bool { return l != nil && l.tripped.Load() }
