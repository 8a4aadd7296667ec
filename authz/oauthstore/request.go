package oauthstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ory/fosite"

	"github.com/aero2/aero2/store"
)

// Request gathers one token request's storage work: the writes that record
// the new tokens are held and sent together by Commit — one round trip, all
// or none, and nothing at all when the request fails half-way — and
// records read once are not read again in the same request (fosite reads
// the code and the refresh token in both of its phases).
//
// The single-use guard goes into the same batch: the take of a code's
// record (store.OpTake), or the refresh token's (or an earlier release's
// code's) "used" marker as a create-if-absent. Of two requests redeeming
// one credential at once, both may compute tokens, but exactly one commit
// is applied and the other writes nothing and fails with guardErr.
//
// Records the request uses up (a code's PKCE challenge and ID token
// session) are deleted with the commit too, so that a second redemption
// running meanwhile meets them and is decided by the guard; a request
// that fails deletes them in Release.
type Request struct {
	mu       sync.Mutex
	ops      []store.Op
	consumed []string
	done     bool
	// cache, decoded and users are made when first written: a
	// client-credentials request reads nothing.
	cache   map[string][]byte
	decoded map[string]*entry
	// users are the users read with refresh tokens that named them (nil:
	// no such user).
	users    map[string]*store.User
	guardErr error
}

type requestKey struct{}

// WithRequest returns a context carrying a new Request.
func WithRequest(ctx context.Context) (context.Context, *Request) {
	r := &Request{}
	return context.WithValue(ctx, requestKey{}, r), r
}

func requestFrom(ctx context.Context) *Request {
	r, _ := ctx.Value(requestKey{}).(*Request)
	return r
}

// Commit sends the held writes. If the guard was taken meanwhile, or the
// grant revoked, nothing is written and the error is the guard's
// (ErrConcurrentUse wrapping fosite's error for a reused credential): the
// grant was revoked because its code or refresh token was shown again.
func (s *Store) Commit(ctx context.Context, r *Request) error {
	r.mu.Lock()
	ops, guardErr := r.ops, r.guardErr
	for _, key := range r.consumed {
		ops = append(ops, store.Op{Kind: store.OpDelete, Key: key})
	}
	r.ops, r.consumed, r.done = nil, nil, true
	r.mu.Unlock()
	// The writers each guard their own writes: a refresh's two tokens
	// both require the grant's tombstone absent and both add to the
	// grant's index. Compact sends each of those once.
	err := s.opts.Backend.Apply(ctx, store.Compact(ops)...)
	if errors.Is(err, store.ErrExists) {
		if guardErr != nil {
			return guardErr
		}
		return fmt.Errorf("%w: %w", ErrGrantRevoked, fosite.ErrInactiveToken)
	}
	return err
}

// Release ends a request that was not committed (or whose commit failed):
// its held writes are dropped, and what it used up is deleted, so that a
// code shown with a wrong verifier stays burnt.
func (s *Store) Release(ctx context.Context, r *Request) error {
	r.mu.Lock()
	keys := r.consumed
	if r.done {
		keys = nil
	}
	r.ops, r.consumed, r.done = nil, nil, true
	r.mu.Unlock()
	if len(keys) == 0 {
		return nil
	}
	return s.opts.Backend.Delete(ctx, keys...)
}

// consume deletes a record the request uses up: now, or with the
// Request's commit (or its Release).
func (s *Store) consume(ctx context.Context, key string) error {
	if r := requestFrom(ctx); r != nil {
		r.mu.Lock()
		r.consumed = append(r.consumed, key)
		r.mu.Unlock()
		return nil
	}
	return s.opts.Backend.Delete(ctx, key)
}

// guard applies a single-use guard: now, or as part of the Request's
// commit. failed is the error when the guard is taken.
func (s *Store) guard(ctx context.Context, key string, ttl time.Duration, failed error) error {
	op := store.Op{Kind: store.OpCreate, Key: key, Value: []byte("1"), TTL: ttl}
	if r := requestFrom(ctx); r != nil {
		r.mu.Lock()
		r.ops = append(r.ops, op)
		r.guardErr = failed
		r.mu.Unlock()
		return nil
	}
	err := s.opts.Backend.Create(ctx, key, op.Value, ttl)
	if errors.Is(err, store.ErrExists) {
		return failed
	}
	return err
}

// guardThen applies the single-use guard op (an OpCreate or OpTake) and,
// only if it is won here, the writes after it: in one batch, now or with
// the Request's commit. failed is the error when the guard was taken
// already.
func (s *Store) guardThen(ctx context.Context, op store.Op, failed error, then ...store.Op) error {
	ops := append([]store.Op{op}, then...)
	if r := requestFrom(ctx); r != nil {
		r.mu.Lock()
		r.ops = append(r.ops, ops...)
		r.guardErr = failed
		r.mu.Unlock()
		return nil
	}
	err := s.opts.Backend.Apply(ctx, ops...)
	if errors.Is(err, store.ErrExists) {
		return failed
	}
	return err
}

// applyGrant is apply for writes of grant's tokens: the batch also
// requires that the grant has no tombstone, so that nothing is stored for a
// grant revoked meanwhile. (Outside a Request that is ErrGrantRevoked.)
func (s *Store) applyGrant(ctx context.Context, grant string, ops ...store.Op) error {
	ops = append(ops, store.Op{Kind: store.OpAbsent, Key: revokedKey(grant)})
	if r := requestFrom(ctx); r != nil {
		return s.apply(ctx, ops...)
	}
	err := s.opts.Backend.Apply(ctx, ops...)
	if errors.Is(err, store.ErrExists) {
		return fmt.Errorf("%w: %w", ErrGrantRevoked, fosite.ErrInactiveToken)
	}
	return err
}

// apply writes ops now, or holds them for Commit inside a Request.
func (s *Store) apply(ctx context.Context, ops ...store.Op) error {
	if r := requestFrom(ctx); r != nil {
		r.mu.Lock()
		r.ops = append(r.ops, ops...)
		r.mu.Unlock()
		return nil
	}
	return s.opts.Backend.Apply(ctx, ops...)
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
	vals, err := s.opts.Backend.GetMany(ctx, keys...)
	if err != nil || r == nil {
		return vals, err
	}
	r.mu.Lock()
	r.keep(keys, vals)
	r.mu.Unlock()
	return vals, nil
}

// keep caches what was read under keys; r.mu is held.
func (r *Request) keep(keys []string, vals [][]byte) {
	if r.cache == nil {
		r.cache = make(map[string][]byte, len(keys))
	}
	for i, k := range keys {
		r.cache[k] = vals[i]
	}
}

// remember keeps a decoded record for the rest of the request.
func (r *Request) remember(key string, e *entry) {
	if r == nil {
		return
	}
	r.mu.Lock()
	if r.decoded == nil {
		r.decoded = map[string]*entry{}
	}
	r.decoded[key] = e
	r.mu.Unlock()
}

// recall returns a record decoded earlier in the request, or nil.
func (r *Request) recall(key string) *entry {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.decoded[key]
}

// getManyAndUser is getMany that also reads the user userID in the same
// round trip, and keeps it for the rest of the request (KnownUser).
func (s *Store) getManyAndUser(ctx context.Context, userID string, keys ...string) ([][]byte, error) {
	u, vals, err := s.opts.Backend.GetManyAndUser(ctx, userID, keys...)
	if err != nil {
		return nil, err
	}
	if r := requestFrom(ctx); r != nil {
		r.mu.Lock()
		r.keep(keys, vals)
		if r.users == nil {
			r.users = map[string]*store.User{}
		}
		r.users[userID] = u
		r.mu.Unlock()
	}
	return vals, nil
}

// KnownUser returns the user userID as the request read it with a
// refresh token that named them, nil if there is no such user; known is
// false when the request did not read them (then ask the store).
func KnownUser(ctx context.Context, userID string) (u *store.User, known bool) {
	r := requestFrom(ctx)
	if r == nil {
		return nil, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	u, known = r.users[userID]
	return u, known
}
