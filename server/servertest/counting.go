package servertest

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/aero2/aero2/store"
)

// CountingStore records every call made through it to the store it
// wraps: one call is one round trip on Redis (a batch is one script,
// GetMany one MGET, GetSessionAndRecord one pipeline). Tests of "how many
// round trips does this request cost" read it.
//
// The store is a named field, not embedded: CountingStore implements
// every store.Store method itself, so a method added to store.Store
// cannot pass through uncounted; the compiler refuses the wrapper until
// it counts it.
type CountingStore struct {
	// Store is the wrapped store, for a test's own calls that are not to
	// be counted.
	Store store.Store
	mu    sync.Mutex
	calls Calls
}

var _ store.Store = (*CountingStore)(nil)

// Call is one store call: the method and the keys (or IDs) it named.
type Call struct {
	Op   string
	Keys []string
}

func (c Call) String() string { return c.Op + " " + strings.Join(c.Keys, ",") }

// Calls are store calls in the order they were made.
type Calls []Call

// Count is the number of calls of each method.
func (cs Calls) Count() map[string]int {
	m := map[string]int{}
	for _, c := range cs {
		m[c.Op]++
	}
	return m
}

// Without returns the calls that are not of op, and how many were.
func (cs Calls) Without(op string) (Calls, int) {
	var out Calls
	for _, c := range cs {
		if c.Op != op {
			out = append(out, c)
		}
	}
	return out, len(cs) - len(out)
}

// Strings are the calls as "Op key,key".
func (cs Calls) Strings() []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.String()
	}
	return out
}

// NewCountingStore wraps st.
func NewCountingStore(st store.Store) *CountingStore { return &CountingStore{Store: st} }

// Drain returns the calls since the last Drain, and forgets them.
func (c *CountingStore) Drain() Calls {
	c.mu.Lock()
	defer c.mu.Unlock()
	calls := c.calls
	c.calls = nil
	return calls
}

func (c *CountingStore) note(op string, keys ...string) {
	c.mu.Lock()
	c.calls = append(c.calls, Call{Op: op, Keys: keys})
	c.mu.Unlock()
}

func (c *CountingStore) Create(ctx context.Context, app, key string, v []byte, ttl time.Duration) error {
	c.note("Create", key)
	return c.Store.Create(ctx, app, key, v, ttl)
}

func (c *CountingStore) Put(ctx context.Context, app, key string, v []byte, ttl time.Duration) error {
	c.note("Put", key)
	return c.Store.Put(ctx, app, key, v, ttl)
}

func (c *CountingStore) Get(ctx context.Context, app, key string) ([]byte, error) {
	c.note("Get", key)
	return c.Store.Get(ctx, app, key)
}

func (c *CountingStore) Take(ctx context.Context, app, key string) ([]byte, error) {
	c.note("Take", key)
	return c.Store.Take(ctx, app, key)
}

func (c *CountingStore) Delete(ctx context.Context, app string, keys ...string) error {
	c.note("Delete", keys...)
	return c.Store.Delete(ctx, app, keys...)
}

func (c *CountingStore) SetAdd(ctx context.Context, app, key string, ttl time.Duration, m ...string) error {
	c.note("SetAdd", key)
	return c.Store.SetAdd(ctx, app, key, ttl, m...)
}

func (c *CountingStore) SetMembers(ctx context.Context, app, key string) ([]string, error) {
	c.note("SetMembers", key)
	return c.Store.SetMembers(ctx, app, key)
}

func (c *CountingStore) SetRemove(ctx context.Context, app, key string, m ...string) error {
	c.note("SetRemove", key)
	return c.Store.SetRemove(ctx, app, key, m...)
}

func (c *CountingStore) Apply(ctx context.Context, app string, ops ...store.Op) error {
	keys := make([]string, len(ops))
	for i, op := range ops {
		keys[i] = op.Key
	}
	c.note("Apply", keys...)
	return c.Store.Apply(ctx, app, ops...)
}

func (c *CountingStore) GetMany(ctx context.Context, app string, keys ...string) ([][]byte, error) {
	c.note("GetMany", keys...)
	return c.Store.GetMany(ctx, app, keys...)
}

func (c *CountingStore) GetManyAndUser(ctx context.Context, app, userID string, keys ...string) (*store.User, [][]byte, error) {
	c.note("GetManyAndUser", keys...)
	return c.Store.GetManyAndUser(ctx, app, userID, keys...)
}

func (c *CountingStore) Broadcast(ctx context.Context, channel, message string) error {
	c.note("Broadcast", channel)
	return c.Store.Broadcast(ctx, channel, message)
}

// Subscribe is one call for the life of a subscription, not per request.
func (c *CountingStore) Subscribe(ctx context.Context, channel string, heartbeat time.Duration, fn func(store.Notice)) {
	c.Store.Subscribe(ctx, channel, heartbeat, fn)
}

func (c *CountingStore) RateLimit(ctx context.Context, app string, b ...store.RateBucket) (store.RateResult, error) {
	keys := make([]string, len(b))
	for i, bk := range b {
		keys[i] = bk.Key
	}
	c.note("RateLimit", keys...)
	return c.Store.RateLimit(ctx, app, b...)
}

func (c *CountingStore) CreateSession(ctx context.Context, s *store.Session, ttl time.Duration) error {
	c.note("CreateSession", s.ID)
	return c.Store.CreateSession(ctx, s, ttl)
}

func (c *CountingStore) GetSession(ctx context.Context, app, id string) (*store.Session, error) {
	c.note("GetSession", id)
	return c.Store.GetSession(ctx, app, id)
}

func (c *CountingStore) TouchSession(ctx context.Context, s *store.Session, ttl time.Duration) error {
	c.note("TouchSession", s.ID)
	return c.Store.TouchSession(ctx, s, ttl)
}

func (c *CountingStore) DeleteSession(ctx context.Context, app, id string) error {
	c.note("DeleteSession", id)
	return c.Store.DeleteSession(ctx, app, id)
}

func (c *CountingStore) UserSessions(ctx context.Context, app, userID string) ([]*store.Session, error) {
	c.note("UserSessions", userID)
	return c.Store.UserSessions(ctx, app, userID)
}

func (c *CountingStore) GetSessionAndRecord(ctx context.Context, app, id, key string) (*store.Session, []byte, error) {
	c.note("GetSessionAndRecord", id, key)
	return c.Store.GetSessionAndRecord(ctx, app, id, key)
}

func (c *CountingStore) CreateUser(ctx context.Context, u *store.User, first *store.Identity) error {
	c.note("CreateUser", u.ID)
	return c.Store.CreateUser(ctx, u, first)
}

func (c *CountingStore) GetUser(ctx context.Context, app, id string) (*store.User, error) {
	c.note("GetUser", id)
	return c.Store.GetUser(ctx, app, id)
}

func (c *CountingStore) UpdateUser(ctx context.Context, u *store.User) error {
	c.note("UpdateUser", u.ID)
	return c.Store.UpdateUser(ctx, u)
}

func (c *CountingStore) UserByIdentity(ctx context.Context, app, idp, subject string) (*store.User, *store.Identity, error) {
	c.note("UserByIdentity", idp+":"+subject)
	return c.Store.UserByIdentity(ctx, app, idp, subject)
}

func (c *CountingStore) UsersByVerifiedEmail(ctx context.Context, app, email string) ([]*store.User, error) {
	c.note("UsersByVerifiedEmail")
	return c.Store.UsersByVerifiedEmail(ctx, app, email)
}

func (c *CountingStore) LinkIdentity(ctx context.Context, id *store.Identity) error {
	c.note("LinkIdentity", id.UserID)
	return c.Store.LinkIdentity(ctx, id)
}

func (c *CountingStore) UpdateIdentity(ctx context.Context, id *store.Identity) error {
	c.note("UpdateIdentity", id.UserID)
	return c.Store.UpdateIdentity(ctx, id)
}

func (c *CountingStore) SignInUser(ctx context.Context, app, idp, subject string) (*store.SignIn, error) {
	c.note("SignInUser", idp+":"+subject)
	return c.Store.SignInUser(ctx, app, idp, subject)
}

func (c *CountingStore) Identities(ctx context.Context, app, userID string) ([]*store.Identity, error) {
	c.note("Identities", userID)
	return c.Store.Identities(ctx, app, userID)
}

func (c *CountingStore) Ping(ctx context.Context) error {
	c.note("Ping")
	return c.Store.Ping(ctx)
}

func (c *CountingStore) Close() error { return c.Store.Close() }
