// Package store holds Aero2's state behind small interfaces, with two
// backends: store/memory (one process) and store/redis (shared by
// replicas). store/storetest is the conformance suite both pass.
//
// Every record is scoped by application: the same key in two applications
// names two records, and nothing written for one application can be read
// through another.
package store

import (
	"context"
	"errors"
	"time"
)

var (
	// ErrNotFound: no live record (absent, expired, or already taken).
	ErrNotFound = errors.New("store: not found")
	// ErrExists: a create found a live record with the same key.
	ErrExists = errors.New("store: already exists")
	// ErrUnavailable wraps backend failures (Redis down, timeouts). HTTP
	// handlers answer it with 503; it is never a client's fault.
	ErrUnavailable = errors.New("store: unavailable")
)

// Store is everything Aero2 keeps.
type Store interface {
	Records
	Sets
	Batches
	Sessions
	Users
	RateLimits
	Broadcasts

	// Ping reports whether the backend answers (for /readyz).
	Ping(ctx context.Context) error
	// Close releases connections. The store is unusable afterwards.
	Close() error
}

// Records is an expiring key/value space. A ttl of 0 means "no expiry".
// Keys are opaque strings chosen by the caller (a prefix per kind of record
// keeps kinds apart); values are opaque bytes.
type Records interface {
	// Create stores value only if no live record has key; otherwise it
	// returns ErrExists and changes nothing. Of many concurrent Creates of
	// one key, exactly one succeeds.
	Create(ctx context.Context, app, key string, value []byte, ttl time.Duration) error
	// Put stores value, replacing any record with the same key.
	Put(ctx context.Context, app, key string, value []byte, ttl time.Duration) error
	// Get returns the value, or ErrNotFound.
	Get(ctx context.Context, app, key string) ([]byte, error)
	// Take returns the value and deletes the record in one atomic step
	// (GETDEL on Redis): of many concurrent Takes of one key exactly one
	// gets the value and the rest get ErrNotFound. Single-use records
	// (login state, one-time codes) are read only through Take, so that a
	// replay finds nothing.
	Take(ctx context.Context, app, key string) ([]byte, error)
	// Delete removes the records; absent keys are not an error.
	Delete(ctx context.Context, app string, keys ...string) error
}

// Sets are small expiring sets of strings: indexes such as "the token
// signatures issued for one grant".
type Sets interface {
	// SetAdd adds members and makes the set live for at least ttl from now
	// (0: no expiry). It never shortens a set's life.
	SetAdd(ctx context.Context, app, key string, ttl time.Duration, members ...string) error
	// SetMembers returns the members in no particular order; an absent set
	// is empty, not an error.
	SetMembers(ctx context.Context, app, key string) ([]string, error)
	// SetRemove removes members; absent members are not an error.
	SetRemove(ctx context.Context, app, key string, members ...string) error
}

// Notice is what a subscription delivers: a message, or a heartbeat
// (Message "") saying that the subscription still stands.
type Notice struct {
	Message string
	// Fresh: the subscription was just made, or made again after it was
	// lost; messages broadcast before it may never arrive.
	Fresh bool
}

// Broadcasts are messages to every process that shares the store, at
// once: how a replica tells the others that sessions ended, so that they
// drop cached copies (Redis pub/sub; within the process, for the memory
// store). They are best effort: a subscriber that hears no heartbeat for a
// while must assume it missed messages.
type Broadcasts interface {
	// Broadcast sends message on channel to every subscriber, this
	// process's included; the memory store delivers before it returns.
	Broadcast(ctx context.Context, channel, message string) error
	// Subscribe calls fn with a Fresh notice once subscribed, then with
	// each message on channel and a heartbeat at least every
	// heartbeat, until ctx ends; calls are never concurrent. While the
	// subscription is lost fn hears nothing, and hears a Fresh notice
	// when it stands again. A backend that cannot broadcast (PostgreSQL)
	// never calls fn.
	Subscribe(ctx context.Context, channel string, heartbeat time.Duration, fn func(Notice))
}

// Rate is a rate limit: Burst requests at once, then one more every
// Period/Requests. It is GCRA (the generic cell rate algorithm): a token
// bucket that keeps one timestamp per key, the time at which the bucket
// is full again.
type Rate struct {
	Requests int
	Period   time.Duration
	Burst    int
}

// Interval is the time one request's token takes to come back (at least
// 1µs, the resolution both backends count in).
func (r Rate) Interval() time.Duration {
	if r.Requests <= 0 {
		return r.Period
	}
	return max(r.Period/time.Duration(r.Requests), time.Microsecond)
}

// RateResult is a rate limit's answer.
type RateResult struct {
	// Allowed: the requests were spent (or, when only looking, one more
	// would be).
	Allowed bool
	// Remaining is how many requests the bucket allows now, after this
	// spend (of several buckets, the fewest).
	Remaining int
	// RetryAfter is, when not allowed, how long until the requests would
	// be.
	RetryAfter time.Duration
}

// RateBucket is one bucket of a RateLimit call: N requests (0: only
// look) from the bucket Key of Rate.
type RateBucket struct {
	Key  string
	Rate Rate
	N    int
}

// RateLimits are rate-limit buckets shared by every replica.
type RateLimits interface {
	// RateLimit spends from every bucket, or from none: in one atomic
	// step (one round trip), it checks that each bucket has room for its
	// N requests (for one more, where N is 0), and only if all have
	// spends them. Of many concurrent spends, no more succeed than a
	// bucket holds; a refused call changes nothing. The result is
	// Allowed when all had room, the smallest Remaining, and the longest
	// RetryAfter of those without. A bucket expires once it is full
	// again; it needs no cleaning up.
	RateLimit(ctx context.Context, app string, buckets ...RateBucket) (RateResult, error)
}

// Session is a browser session. ID is the hash of the cookie's value, never
// the value itself, so the store cannot be replayed into cookies.
type Session struct {
	ID     string `json:"id"`
	App    string `json:"app"`
	UserID string `json:"user_id"`
	// IDP is the identity provider the user signed in with.
	IDP string `json:"idp"`
	// AuthTime is when the user last authenticated (OIDC auth_time).
	AuthTime  time.Time `json:"auth_time"`
	CreatedAt time.Time `json:"created_at"`
	LastSeen  time.Time `json:"last_seen"`
	// ExpiresAt is the absolute end of the session.
	ExpiresAt time.Time `json:"expires_at"`
	IP        string    `json:"ip,omitempty"`
	UserAgent string    `json:"user_agent,omitempty"`
	// Data holds small values other packages attach to a session.
	Data map[string]string `json:"data,omitempty"`
}

// Sessions keeps browser sessions, indexed by user so that a user's
// sessions can be listed and ended together. Only session.Manager ends
// sessions (it runs the provider's revocation first): there is no bulk
// delete here that could skip it.
type Sessions interface {
	// CreateSession stores s (ErrExists if its ID is taken) for ttl.
	CreateSession(ctx context.Context, s *Session, ttl time.Duration) error
	// GetSession returns the live session, or ErrNotFound.
	GetSession(ctx context.Context, app, id string) (*Session, error)
	// TouchSession records s.LastSeen and extends the session's life to ttl
	// from now. ErrNotFound if it has ended. Only LastSeen is written, and
	// nothing when the stored LastSeen is not earlier: of two concurrent
	// touches the one with the older clock reading may arrive last, and
	// LastSeen never moves back (the idle deadline is counted from it).
	TouchSession(ctx context.Context, s *Session, ttl time.Duration) error
	// DeleteSession ends one session; an absent one is not an error.
	DeleteSession(ctx context.Context, app, id string) error
	// UserSessions lists the user's live sessions.
	UserSessions(ctx context.Context, app, userID string) ([]*Session, error)
	// GetSessionAndRecord reads the live session id and the live record
	// key (Records) in one round trip: nil for either that is absent,
	// not an error. A proxy session not in its replica's cache is its
	// record and the provider session it depends on, and two sequential
	// round trips were a seventh of the proxy's CPU on a cache miss.
	GetSessionAndRecord(ctx context.Context, app, id, key string) (*Session, []byte, error)
}

// User is a local account. Users are per application.
type User struct {
	ID                string    `json:"id"`
	App               string    `json:"app"`
	Name              string    `json:"name,omitempty"`
	PreferredUsername string    `json:"preferred_username,omitempty"`
	Email             string    `json:"email,omitempty"`
	EmailVerified     bool      `json:"email_verified,omitempty"`
	Groups            []string  `json:"groups,omitempty"`
	Picture           string    `json:"picture,omitempty"`
	CreatedAt         time.Time `json:"created_at"`
	LastLogin         time.Time `json:"last_login"`
	// Disabled users cannot sign in, and their sessions and tokens have
	// ended (`aero2 users disable`). Only Admin.SetUserDisabled writes it.
	Disabled bool `json:"disabled,omitempty"`
}

// Identity links a user to an account at an identity provider. It is unique
// on (App, IDP, Subject). Groups are the groups the provider reported at the
// identity's last sign-in; the user's Groups are derived from its
// identities' (federation).
type Identity struct {
	App           string    `json:"app"`
	IDP           string    `json:"idp"`
	Subject       string    `json:"subject"`
	UserID        string    `json:"user_id"`
	Username      string    `json:"username,omitempty"`
	Email         string    `json:"email,omitempty"`
	EmailVerified bool      `json:"email_verified,omitempty"`
	Groups        []string  `json:"groups,omitempty"` // as its provider last said; nil in older records
	LinkedAt      time.Time `json:"linked_at"`
	LastLogin     time.Time `json:"last_login"`
}

// Users keeps local users and their linked identities.
type Users interface {
	// CreateUser stores u together with its first identity, in one atomic
	// step. ErrExists if the identity is already linked (to anyone) or the
	// user ID is taken; nothing is written then.
	CreateUser(ctx context.Context, u *User, first *Identity) error
	// GetUser returns the user, or ErrNotFound.
	GetUser(ctx context.Context, app, id string) (*User, error)
	// UpdateUser replaces a stored user's profile. ErrNotFound if absent.
	// The stored Disabled flag is kept, whatever u says (Admin).
	UpdateUser(ctx context.Context, u *User) error
	// UserByIdentity finds the user linked to (idp, subject).
	UserByIdentity(ctx context.Context, app, idp, subject string) (*User, *Identity, error)
	// UsersByVerifiedEmail lists users whose verified email equals email
	// (compared case-insensitively). Unverified emails are not indexed.
	UsersByVerifiedEmail(ctx context.Context, app, email string) ([]*User, error)
	// LinkIdentity links another identity to an existing user. ErrExists if
	// (idp, subject) is linked already; ErrNotFound if the user is absent.
	LinkIdentity(ctx context.Context, id *Identity) error
	// UpdateIdentity replaces a linked identity's details (email, groups,
	// last login). ErrNotFound if it is not linked to id.UserID.
	UpdateIdentity(ctx context.Context, id *Identity) error
	// Identities lists the identities linked to a user.
	Identities(ctx context.Context, app, userID string) ([]*Identity, error)
	// SignInUser reads what a returning user's sign-in needs, in as few
	// round trips as the backend can: what UserByIdentity and then
	// Identities of its user would return, and a bound on the user's
	// sessions for the session cap (session.MaxSessionsPerUser).
	// ErrNotFound as UserByIdentity. On Redis it is two round trips
	// where those calls and the cap's read of every session were six.
	SignInUser(ctx context.Context, app, idp, subject string) (*SignIn, error)
}

// SignIn is what SignInUser reads.
type SignIn struct {
	User     *User
	Identity *Identity
	// Identities are every identity linked to User, Identity's stored
	// copy among them.
	Identities []*Identity
	// Sessions is at least the number of User's live sessions (an index
	// may still count some that have expired), or -1 when the backend
	// did not count them: the caller reads them (UserSessions) before it
	// can know the cap is not reached.
	Sessions int
}

// ReadSignIn is SignInUser made of UserByIdentity and Identities, for
// backends with nothing faster; it does not count sessions.
func ReadSignIn(ctx context.Context, st Users, app, idp, subject string) (*SignIn, error) {
	u, id, err := st.UserByIdentity(ctx, app, idp, subject)
	if err != nil {
		return nil, err
	}
	idents, err := st.Identities(ctx, app, u.ID)
	if err != nil {
		return nil, err
	}
	return &SignIn{User: u, Identity: id, Identities: idents, Sessions: -1}, nil
}
