// Package memory is the embedded store: the zero-setup default for a single
// instance and for the quickstart. It is safe for concurrent use, enforces
// expiry on every read, and sweeps expired entries in the background. Its
// state dies with the process, and replicas cannot share it: use
// store/redis for more than one instance.
package memory

import (
	"bytes"
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aero2/aero2/store"
)

var _ store.Store = (*Store)(nil)

// Option configures a Store.
type Option func(*Store)

// WithClock replaces time.Now, so tests can move time forward.
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// WithSweepInterval sets how often expired entries are removed from memory
// (they are invisible from the moment they expire either way). Default 1m.
func WithSweepInterval(d time.Duration) Option { return func(s *Store) { s.sweepEvery = d } }

// Store is the in-memory backend.
type Store struct {
	now        func() time.Time
	sweepEvery time.Duration
	stop       chan struct{}
	closeOnce  sync.Once
	bus        bus

	mu           sync.RWMutex
	records      map[string]record
	sets         map[string]set
	sessions     map[string]session
	userSessions map[string]map[string]struct{} // app/user → session IDs
	users        map[string]*store.User
	identities   map[string]*store.Identity     // app/idp/subject → identity
	userIdents   map[string]map[string]struct{} // app/user → identity keys
	emails       map[string]map[string]struct{} // app/email → user IDs

	// rates are the rate-limit buckets (ratelimit.go), under a lock of
	// their own: every limited request touches one, and none should wait
	// for a sweep of the records.
	rateMu sync.Mutex
	rates  map[string]time.Time
}

type record struct {
	val []byte
	exp time.Time
}

type set struct {
	members map[string]struct{}
	exp     time.Time
}

type session struct {
	s   store.Session
	exp time.Time
}

// New returns an empty store and starts its sweeper; Close stops it.
func New(opts ...Option) *Store {
	s := &Store{
		now:          time.Now,
		sweepEvery:   time.Minute,
		stop:         make(chan struct{}),
		records:      map[string]record{},
		sets:         map[string]set{},
		sessions:     map[string]session{},
		userSessions: map[string]map[string]struct{}{},
		users:        map[string]*store.User{},
		identities:   map[string]*store.Identity{},
		userIdents:   map[string]map[string]struct{}{},
		emails:       map[string]map[string]struct{}{},
		rates:        map[string]time.Time{},
	}
	for _, o := range opts {
		o(s)
	}
	go s.sweeper()
	return s
}

// k joins scope parts with a byte that no application name contains.
func k(parts ...string) string { return strings.Join(parts, "\x00") }

// find is m[k(app, key)] without making the joined string: the key is
// put together in a buffer on the stack, and a map indexed by a
// conversion of bytes to string reads them in place (the compiler's
// rule for m[string(b)]). Every token and proxied request reads the maps
// this way; k made a string for each (15 of the 421 allocations of a
// refresh). Writes keep k: a map keeps its keys.
func find[V any](m map[string]V, app, key string) (V, bool) {
	var buf [192]byte // longer keys are put together on the heap
	b := append(buf[:0], app...)
	b = append(b, 0)
	b = append(b, key...)
	v, ok := m[string(b)]
	return v, ok
}

func (s *Store) live(exp time.Time) bool { return exp.IsZero() || s.now().Before(exp) }

func (s *Store) expiry(ttl time.Duration) time.Time {
	if ttl <= 0 {
		return time.Time{}
	}
	return s.now().Add(ttl)
}

func (s *Store) sweeper() {
	t := time.NewTicker(s.sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.sweep()
			s.sweepRates()
		}
	}
}

func (s *Store) sweep() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for key, r := range s.records {
		if !s.live(r.exp) {
			delete(s.records, key)
		}
	}
	for key, st := range s.sets {
		if !s.live(st.exp) {
			delete(s.sets, key)
		}
	}
	for id, se := range s.sessions {
		if !s.live(se.exp) {
			s.dropSession(id, se)
		}
	}
}

// Ping always succeeds: memory is always reachable.
func (s *Store) Ping(context.Context) error { return nil }

// Close stops the sweeper.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { close(s.stop) })
	return nil
}

// Records.

func (s *Store) Create(_ context.Context, app, key string, value []byte, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := find(s.records, app, key); ok && s.live(r.exp) {
		return store.ErrExists
	}
	s.records[k(app, key)] = record{bytes.Clone(value), s.expiry(ttl)}
	return nil
}

func (s *Store) Put(_ context.Context, app, key string, value []byte, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records[k(app, key)] = record{bytes.Clone(value), s.expiry(ttl)}
	return nil
}

func (s *Store) Get(_ context.Context, app, key string) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := find(s.records, app, key)
	if !ok || !s.live(r.exp) {
		return nil, store.ErrNotFound
	}
	return bytes.Clone(r.val), nil
}

func (s *Store) Take(_ context.Context, app, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := find(s.records, app, key)
	if !ok || !s.live(r.exp) {
		return nil, store.ErrNotFound
	}
	delete(s.records, k(app, key))
	return r.val, nil
}

func (s *Store) Delete(_ context.Context, app string, keys ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, key := range keys {
		delete(s.records, k(app, key))
	}
	return nil
}

// Sets.

func (s *Store) SetAdd(_ context.Context, app, key string, ttl time.Duration, members ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setAddLocked(app, key, ttl, members)
	return nil
}

// setAddLocked is SetAdd with s.mu held.
func (s *Store) setAddLocked(app, key string, ttl time.Duration, members []string) {
	st, ok := find(s.sets, app, key)
	if !ok || !s.live(st.exp) {
		st = set{members: map[string]struct{}{}, exp: s.expiry(ttl)}
	} else if !st.exp.IsZero() {
		if exp := s.expiry(ttl); exp.IsZero() || exp.After(st.exp) {
			st.exp = exp
		}
	}
	for _, m := range members {
		st.members[m] = struct{}{}
	}
	s.sets[k(app, key)] = st
}

func (s *Store) SetMembers(_ context.Context, app, key string) ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st, ok := find(s.sets, app, key)
	if !ok || !s.live(st.exp) {
		return nil, nil
	}
	return slices.Collect(maps.Keys(st.members)), nil
}

func (s *Store) SetRemove(_ context.Context, app, key string, members ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setRemoveLocked(app, key, members)
	return nil
}

// setRemoveLocked is SetRemove with s.mu held.
func (s *Store) setRemoveLocked(app, key string, members []string) {
	if st, ok := find(s.sets, app, key); ok {
		for _, m := range members {
			delete(st.members, m)
		}
		if len(st.members) == 0 {
			delete(s.sets, k(app, key))
		}
	}
}

// Sessions.

func cloneSession(in *store.Session) *store.Session {
	out := *in
	out.Data = maps.Clone(in.Data)
	return &out
}

func (s *Store) CreateSession(_ context.Context, sess *store.Session, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := k(sess.App, sess.ID)
	if old, ok := s.sessions[id]; ok && s.live(old.exp) {
		return store.ErrExists
	}
	s.sessions[id] = session{*cloneSession(sess), s.expiry(ttl)}
	uk := k(sess.App, sess.UserID)
	if s.userSessions[uk] == nil {
		s.userSessions[uk] = map[string]struct{}{}
	}
	s.userSessions[uk][sess.ID] = struct{}{}
	return nil
}

func (s *Store) GetSession(_ context.Context, app, id string) (*store.Session, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	se, ok := find(s.sessions, app, id)
	if !ok || !s.live(se.exp) {
		return nil, store.ErrNotFound
	}
	return cloneSession(&se.s), nil
}

func (s *Store) GetSessionAndRecord(_ context.Context, app, id, key string) (*store.Session, []byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var sess *store.Session
	if se, ok := find(s.sessions, app, id); ok && s.live(se.exp) {
		sess = cloneSession(&se.s)
	}
	var v []byte
	if r, ok := find(s.records, app, key); ok && s.live(r.exp) {
		v = bytes.Clone(r.val)
	}
	return sess, v, nil
}

func (s *Store) TouchSession(_ context.Context, sess *store.Session, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := k(sess.App, sess.ID)
	se, ok := s.sessions[key]
	if !ok || !s.live(se.exp) {
		return store.ErrNotFound
	}
	if !sess.LastSeen.After(se.s.LastSeen) {
		// A touch that read the clock before a concurrent one and came
		// after it: LastSeen never moves back (store.Store).
		return nil
	}
	se.s.LastSeen = sess.LastSeen
	se.exp = s.expiry(ttl)
	s.sessions[key] = se
	return nil
}

func (s *Store) DeleteSession(_ context.Context, app, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if se, ok := find(s.sessions, app, id); ok {
		s.dropSession(k(app, id), se)
	}
	return nil
}

// dropSession removes a session and its index entry; s.mu is held.
func (s *Store) dropSession(key string, se session) {
	delete(s.sessions, key)
	uk := k(se.s.App, se.s.UserID)
	delete(s.userSessions[uk], se.s.ID)
	if len(s.userSessions[uk]) == 0 {
		delete(s.userSessions, uk)
	}
}

func (s *Store) UserSessions(_ context.Context, app, userID string) ([]*store.Session, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*store.Session
	for id := range s.userSessions[k(app, userID)] {
		if se, ok := find(s.sessions, app, id); ok && s.live(se.exp) {
			out = append(out, cloneSession(&se.s))
		}
	}
	return out, nil
}

// Users.

func cloneUser(u *store.User) *store.User {
	out := *u
	out.Groups = slices.Clone(u.Groups)
	return &out
}

func cloneIdentity(id *store.Identity) *store.Identity {
	out := *id
	out.Groups = slices.Clone(id.Groups)
	return &out
}

func emailKey(app, email string) string { return k(app, strings.ToLower(email)) }

func (s *Store) indexEmail(u *store.User) {
	if !u.EmailVerified || u.Email == "" {
		return
	}
	ek := emailKey(u.App, u.Email)
	if s.emails[ek] == nil {
		s.emails[ek] = map[string]struct{}{}
	}
	s.emails[ek][u.ID] = struct{}{}
}

func (s *Store) unindexEmail(u *store.User) {
	ek := emailKey(u.App, u.Email)
	delete(s.emails[ek], u.ID)
	if len(s.emails[ek]) == 0 {
		delete(s.emails, ek)
	}
}

func (s *Store) CreateUser(_ context.Context, u *store.User, first *store.Identity) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ik := k(first.App, first.IDP, first.Subject)
	if _, ok := s.identities[ik]; ok {
		return store.ErrExists
	}
	if _, ok := find(s.users, u.App, u.ID); ok {
		return store.ErrExists
	}
	s.users[k(u.App, u.ID)] = cloneUser(u)
	s.indexEmail(u)
	s.identities[ik] = cloneIdentity(first)
	s.userIdents[k(u.App, u.ID)] = map[string]struct{}{ik: {}}
	return nil
}

func (s *Store) GetUser(_ context.Context, app, id string) (*store.User, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := find(s.users, app, id)
	if !ok {
		return nil, store.ErrNotFound
	}
	return cloneUser(u), nil
}

func (s *Store) UpdateUser(_ context.Context, u *store.User) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := find(s.users, u.App, u.ID)
	if !ok {
		return store.ErrNotFound
	}
	s.unindexEmail(old)
	nu := cloneUser(u)
	nu.Disabled = old.Disabled // store.Admin.SetUserDisabled's alone
	s.users[k(u.App, u.ID)] = nu
	s.indexEmail(nu)
	return nil
}

func (s *Store) UserByIdentity(_ context.Context, app, idp, subject string) (*store.User, *store.Identity, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, ok := s.identities[k(app, idp, subject)]
	if !ok {
		return nil, nil, store.ErrNotFound
	}
	u, ok := find(s.users, app, id.UserID)
	if !ok {
		return nil, nil, store.ErrNotFound
	}
	return cloneUser(u), cloneIdentity(id), nil
}

// SignInUser reads under one lock; Sessions counts the live ones.
func (s *Store) SignInUser(_ context.Context, app, idp, subject string) (*store.SignIn, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, ok := s.identities[k(app, idp, subject)]
	if !ok {
		return nil, store.ErrNotFound
	}
	u, ok := find(s.users, app, id.UserID)
	if !ok {
		return nil, store.ErrNotFound
	}
	in := &store.SignIn{User: cloneUser(u), Identity: cloneIdentity(id)}
	for ik := range s.userIdents[k(app, u.ID)] {
		if x, ok := s.identities[ik]; ok {
			in.Identities = append(in.Identities, cloneIdentity(x))
		}
	}
	for sid := range s.userSessions[k(app, u.ID)] {
		if se, ok := find(s.sessions, app, sid); ok && s.live(se.exp) {
			in.Sessions++
		}
	}
	return in, nil
}

func (s *Store) UsersByVerifiedEmail(_ context.Context, app, email string) ([]*store.User, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*store.User
	for uid := range s.emails[emailKey(app, email)] {
		if u, ok := find(s.users, app, uid); ok {
			out = append(out, cloneUser(u))
		}
	}
	return out, nil
}

func (s *Store) LinkIdentity(_ context.Context, id *store.Identity) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ik := k(id.App, id.IDP, id.Subject)
	if _, ok := s.identities[ik]; ok {
		return store.ErrExists
	}
	uk := k(id.App, id.UserID)
	if _, ok := s.users[uk]; !ok {
		return store.ErrNotFound
	}
	s.identities[ik] = cloneIdentity(id)
	s.userIdents[uk][ik] = struct{}{}
	return nil
}

func (s *Store) UpdateIdentity(_ context.Context, id *store.Identity) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ik := k(id.App, id.IDP, id.Subject)
	old, ok := s.identities[ik]
	if !ok || old.UserID != id.UserID {
		return store.ErrNotFound
	}
	s.identities[ik] = cloneIdentity(id)
	return nil
}

func (s *Store) Identities(_ context.Context, app, userID string) ([]*store.Identity, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*store.Identity
	for ik := range s.userIdents[k(app, userID)] {
		if id, ok := s.identities[ik]; ok {
			out = append(out, cloneIdentity(id))
		}
	}
	return out, nil
}

// Len counts the entries held in memory, expired or not (for tests and
// metrics).
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.records) + len(s.sets) + len(s.sessions) + len(s.userSessions)
}
