// Package combined is the store most deployments run: PostgreSQL (or any
// backend) for the data of record — users, identities, consents and
// signing keys — and Redis for the short-lived state that every request
// touches — sessions, tokens, login state, rate limits. Each call goes to
// the one backend that owns its kind (store.DurableRecord,
// store.DurableSet); application isolation is each backend's own.
package combined

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aero2/aero2/store"
)

var _ store.Store = (*Store)(nil)

// Store routes calls to Durable or Ephemeral.
type Store struct {
	Durable, Ephemeral store.Store
}

// New combines the two backends; Close closes both.
func New(durable, ephemeral store.Store) *Store {
	return &Store{Durable: durable, Ephemeral: ephemeral}
}

func (s *Store) record(key string) store.Store {
	if store.DurableRecord(key) {
		return s.Durable
	}
	return s.Ephemeral
}

func (s *Store) set(key string) store.Store {
	if store.DurableSet(key) {
		return s.Durable
	}
	return s.Ephemeral
}

// Ping reports whether both backends answer.
func (s *Store) Ping(ctx context.Context) error {
	return errors.Join(s.Durable.Ping(ctx), s.Ephemeral.Ping(ctx))
}

// Close closes both backends.
func (s *Store) Close() error { return errors.Join(s.Durable.Close(), s.Ephemeral.Close()) }

// Records.

func (s *Store) Create(ctx context.Context, app, key string, value []byte, ttl time.Duration) error {
	return s.record(key).Create(ctx, app, key, value, ttl)
}

func (s *Store) Put(ctx context.Context, app, key string, value []byte, ttl time.Duration) error {
	return s.record(key).Put(ctx, app, key, value, ttl)
}

func (s *Store) Get(ctx context.Context, app, key string) ([]byte, error) {
	return s.record(key).Get(ctx, app, key)
}

func (s *Store) Take(ctx context.Context, app, key string) ([]byte, error) {
	return s.record(key).Take(ctx, app, key)
}

func (s *Store) Delete(ctx context.Context, app string, keys ...string) error {
	var durable, ephemeral []string
	for _, k := range keys {
		if store.DurableRecord(k) {
			durable = append(durable, k)
		} else {
			ephemeral = append(ephemeral, k)
		}
	}
	var errs []error
	if len(durable) > 0 {
		errs = append(errs, s.Durable.Delete(ctx, app, durable...))
	}
	if len(ephemeral) > 0 || len(keys) == 0 {
		errs = append(errs, s.Ephemeral.Delete(ctx, app, ephemeral...))
	}
	return errors.Join(errs...)
}

// Sets.

func (s *Store) SetAdd(ctx context.Context, app, key string, ttl time.Duration, members ...string) error {
	return s.set(key).SetAdd(ctx, app, key, ttl, members...)
}

func (s *Store) SetMembers(ctx context.Context, app, key string) ([]string, error) {
	return s.set(key).SetMembers(ctx, app, key)
}

func (s *Store) SetRemove(ctx context.Context, app, key string, members ...string) error {
	return s.set(key).SetRemove(ctx, app, key, members...)
}

// Batches.

// ErrMixedBatch: a batch touched both backends, which no transaction
// spans. Aero2's batches (the token endpoint's) are all short-lived state.
var ErrMixedBatch = errors.New("combined: a batch mixes data of record and short-lived state")

// Apply sends the batch to the one backend that owns all its keys.
func (s *Store) Apply(ctx context.Context, app string, ops ...store.Op) error {
	var durable, ephemeral int
	for _, op := range ops {
		var d bool
		switch op.Kind {
		case store.OpPut, store.OpDelete, store.OpCreate, store.OpAbsent, store.OpTake:
			d = store.DurableRecord(op.Key)
		case store.OpSetAdd, store.OpSetRemove:
			d = store.DurableSet(op.Key)
		default:
			return fmt.Errorf("combined: unknown batch op %d", op.Kind)
		}
		if d {
			durable++
		} else {
			ephemeral++
		}
	}
	switch {
	case durable > 0 && ephemeral > 0:
		return ErrMixedBatch
	case durable > 0:
		return s.Durable.Apply(ctx, app, ops...)
	default:
		return s.Ephemeral.Apply(ctx, app, ops...)
	}
}

// GetMany reads each key from its backend; keys of one backend are read
// in one step.
func (s *Store) GetMany(ctx context.Context, app string, keys ...string) ([][]byte, error) {
	var dk, ek []string
	var di, ei []int
	for i, k := range keys {
		if store.DurableRecord(k) {
			dk, di = append(dk, k), append(di, i)
		} else {
			ek, ei = append(ek, k), append(ei, i)
		}
	}
	out := make([][]byte, len(keys))
	for _, part := range []struct {
		st   store.Store
		keys []string
		idx  []int
	}{{s.Durable, dk, di}, {s.Ephemeral, ek, ei}} {
		if len(part.keys) == 0 {
			continue
		}
		vals, err := part.st.GetMany(ctx, app, part.keys...)
		if err != nil {
			return nil, err
		}
		for j, v := range vals {
			out[part.idx[j]] = v
		}
	}
	if len(keys) == 0 {
		return s.Ephemeral.GetMany(ctx, app)
	}
	return out, nil
}

// GetManyAndUser reads the user from Durable while the records are read:
// two backends, two round trips, but side by side, so the request waits
// for one. (When every key is durable, Durable answers both at once.)
func (s *Store) GetManyAndUser(ctx context.Context, app, userID string, keys ...string) (*store.User, [][]byte, error) {
	durable := true
	for _, k := range keys {
		durable = durable && store.DurableRecord(k)
	}
	if durable {
		return s.Durable.GetManyAndUser(ctx, app, userID, keys...)
	}
	type result struct {
		u   *store.User
		err error
	}
	user := make(chan result, 1)
	go func() {
		u, err := s.Durable.GetUser(ctx, app, userID)
		if errors.Is(err, store.ErrNotFound) {
			u, err = nil, nil
		}
		user <- result{u, err}
	}()
	vals, err := s.GetMany(ctx, app, keys...)
	r := <-user
	if err != nil {
		return nil, nil, err
	}
	if r.err != nil {
		return nil, nil, r.err
	}
	return r.u, vals, nil
}

// Sessions and rate limits are short-lived: Ephemeral.

func (s *Store) CreateSession(ctx context.Context, sess *store.Session, ttl time.Duration) error {
	return s.Ephemeral.CreateSession(ctx, sess, ttl)
}

func (s *Store) GetSession(ctx context.Context, app, id string) (*store.Session, error) {
	return s.Ephemeral.GetSession(ctx, app, id)
}

func (s *Store) TouchSession(ctx context.Context, sess *store.Session, ttl time.Duration) error {
	return s.Ephemeral.TouchSession(ctx, sess, ttl)
}

func (s *Store) DeleteSession(ctx context.Context, app, id string) error {
	return s.Ephemeral.DeleteSession(ctx, app, id)
}

func (s *Store) UserSessions(ctx context.Context, app, userID string) ([]*store.Session, error) {
	return s.Ephemeral.UserSessions(ctx, app, userID)
}

// GetSessionAndRecord is one round trip when the record is Ephemeral's,
// as sessions are; a durable record costs a second one (no key of the
// proxy's is durable).
func (s *Store) GetSessionAndRecord(ctx context.Context, app, id, key string) (*store.Session, []byte, error) {
	if !store.DurableRecord(key) {
		return s.Ephemeral.GetSessionAndRecord(ctx, app, id, key)
	}
	sess, err := s.Ephemeral.GetSession(ctx, app, id)
	if errors.Is(err, store.ErrNotFound) {
		sess, err = nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	v, err := s.Durable.Get(ctx, app, key)
	if errors.Is(err, store.ErrNotFound) {
		return sess, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return sess, v, nil
}

// Broadcasts go through Ephemeral (Redis), which every replica shares.

func (s *Store) Broadcast(ctx context.Context, channel, message string) error {
	return s.Ephemeral.Broadcast(ctx, channel, message)
}

func (s *Store) Subscribe(ctx context.Context, channel string, heartbeat time.Duration, fn func(store.Notice)) {
	s.Ephemeral.Subscribe(ctx, channel, heartbeat, fn)
}

func (s *Store) RateLimit(ctx context.Context, app string, buckets ...store.RateBucket) (store.RateResult, error) {
	return s.Ephemeral.RateLimit(ctx, app, buckets...)
}

// Users are data of record: Durable.

func (s *Store) CreateUser(ctx context.Context, u *store.User, first *store.Identity) error {
	return s.Durable.CreateUser(ctx, u, first)
}

func (s *Store) GetUser(ctx context.Context, app, id string) (*store.User, error) {
	return s.Durable.GetUser(ctx, app, id)
}

func (s *Store) UpdateUser(ctx context.Context, u *store.User) error {
	return s.Durable.UpdateUser(ctx, u)
}

func (s *Store) UserByIdentity(ctx context.Context, app, idp, subject string) (*store.User, *store.Identity, error) {
	return s.Durable.UserByIdentity(ctx, app, idp, subject)
}

// SignInUser reads the user from Durable; the sessions are Ephemeral's,
// uncounted here (the caller reads them for the cap).
func (s *Store) SignInUser(ctx context.Context, app, idp, subject string) (*store.SignIn, error) {
	in, err := s.Durable.SignInUser(ctx, app, idp, subject)
	if in != nil {
		in.Sessions = -1
	}
	return in, err
}

func (s *Store) UsersByVerifiedEmail(ctx context.Context, app, email string) ([]*store.User, error) {
	return s.Durable.UsersByVerifiedEmail(ctx, app, email)
}

func (s *Store) LinkIdentity(ctx context.Context, id *store.Identity) error {
	return s.Durable.LinkIdentity(ctx, id)
}

func (s *Store) UpdateIdentity(ctx context.Context, id *store.Identity) error {
	return s.Durable.UpdateIdentity(ctx, id)
}

func (s *Store) Identities(ctx context.Context, app, userID string) ([]*store.Identity, error) {
	return s.Durable.Identities(ctx, app, userID)
}

var _ store.ConsentLister = (*Store)(nil)

// ListConsents lists the durable backend's consents.
func (s *Store) ListConsents(ctx context.Context, app string) ([]store.Consent, error) {
	l, ok := s.Durable.(store.ConsentLister)
	if !ok {
		return nil, errors.New("combined: the durable store cannot list consents")
	}
	return l.ListConsents(ctx, app)
}

var _ store.Admin = (*Store)(nil)

func (s *Store) durableAdmin() (store.Admin, error) {
	a, ok := s.Durable.(store.Admin)
	if !ok {
		return nil, errors.New("combined: the durable store cannot be administered")
	}
	return a, nil
}

// ListUsers lists the durable backend's users.
func (s *Store) ListUsers(ctx context.Context, app string) ([]*store.User, error) {
	a, err := s.durableAdmin()
	if err != nil {
		return nil, err
	}
	return a.ListUsers(ctx, app)
}

// SetUserDisabled sets the flag in the durable backend.
func (s *Store) SetUserDisabled(ctx context.Context, app, id string, disabled bool) error {
	a, err := s.durableAdmin()
	if err != nil {
		return err
	}
	return a.SetUserDisabled(ctx, app, id, disabled)
}

// DeleteUser deletes the user from the durable backend.
func (s *Store) DeleteUser(ctx context.Context, app, id string) error {
	a, err := s.durableAdmin()
	if err != nil {
		return err
	}
	return a.DeleteUser(ctx, app, id)
}

// ListSessions lists the ephemeral backend's sessions.
func (s *Store) ListSessions(ctx context.Context, app string) ([]*store.Session, error) {
	a, ok := s.Ephemeral.(store.Admin)
	if !ok {
		return nil, errors.New("combined: the ephemeral store cannot be administered")
	}
	return a.ListSessions(ctx, app)
}

// SetKeys lists the sets of both backends (each holds its own kinds).
func (s *Store) SetKeys(ctx context.Context, app, prefix string) ([]string, error) {
	var out []string
	for _, b := range []store.Store{s.Durable, s.Ephemeral} {
		a, ok := b.(store.Admin)
		if !ok {
			return nil, errors.New("combined: a backend cannot be administered")
		}
		keys, err := a.SetKeys(ctx, app, prefix)
		if err != nil {
			return nil, err
		}
		out = append(out, keys...)
	}
	return out, nil
}
