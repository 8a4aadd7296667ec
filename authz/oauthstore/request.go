package oauthstore

import (
	"context"
	"sync"

	"github.com/aero2/aero2/store"
)

// Request gathers one token request's storage work: the writes that record
// the new tokens are held and sent together by Commit — one round trip, all
// or none, and nothing at all when the request fails half-way — and
// records read once are not read again in the same request (fosite reads
// the code and the refresh token in both of its phases).
//
// The single-use guards (the "used" markers written with Create) are never
// held: they must win or lose at once.
type Request struct {
	mu    sync.Mutex
	ops   []store.Op
	cache map[string][]byte
}

type requestKey struct{}

// WithRequest returns a context carrying a new Request.
func WithRequest(ctx context.Context) (context.Context, *Request) {
	r := &Request{cache: map[string][]byte{}}
	return context.WithValue(ctx, requestKey{}, r), r
}

func requestFrom(ctx context.Context) *Request {
	r, _ := ctx.Value(requestKey{}).(*Request)
	return r
}

// Commit sends the held writes.
func (s *Store) Commit(ctx context.Context, r *Request) error {
	r.mu.Lock()
	ops := r.ops
	r.ops = nil
	r.mu.Unlock()
	return s.opts.Backend.Apply(ctx, s.opts.App, ops...)
}

// apply writes ops now, or holds them for Commit inside a Request.
func (s *Store) apply(ctx context.Context, ops ...store.Op) error {
	if r := requestFrom(ctx); r != nil {
		r.mu.Lock()
		r.ops = append(r.ops, ops...)
		r.mu.Unlock()
		return nil
	}
	return s.opts.Backend.Apply(ctx, s.opts.App, ops...)
}

// getMany reads keys, from the request's cache when it has them all.
func (s *Store) getMany(ctx context.Context, keys ...string) ([][]byte, error) {
	r := requestFrom(ctx)
	if r != nil {
		r.mu.Lock()
		out := make([][]byte, len(keys))
		hit := true
		for i, k := range keys {
			v, ok := r.cache[k]
			hit = hit && ok
			out[i] = v
		}
		r.mu.Unlock()
		if hit {
			return out, nil
		}
	}
	vals, err := s.opts.Backend.GetMany(ctx, s.opts.App, keys...)
	if err != nil || r == nil {
		return vals, err
	}
	r.mu.Lock()
	for i, k := range keys {
		r.cache[k] = vals[i]
	}
	r.mu.Unlock()
	return vals, nil
}
