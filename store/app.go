package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrOtherApp is returned by an App handle given a session, user or
// identity that names another application. It is a programming error,
// never a client's: a handle writes and reads one application's records
// only.
var ErrOtherApp = errors.New("store: record of another application")

// App is a store handle bound to one application. Components are given
// one (or one of the narrow interfaces below that it satisfies) instead of
// the whole Store and an application name: no call through it can name
// another application's records, because no call takes an application at
// all, and records it is given (sessions, users, identities) are checked
// to belong to it, their App filled in when empty.
//
// The zero App is unusable; build one with ForApp.
type App struct {
	st   Store
	name string
}

// ForApp binds st to the application name.
func ForApp(st Store, name string) *App {
	return &App{st: st, name: name}
}

// Name is the application the handle is bound to.
func (a *App) Name() string { return a.name }

// Unbound is the store the handle was made from, for the few parts that
// span applications (the server's wiring, the admin commands).
func (a *App) Unbound() Store { return a.st }

// The narrow views components take, each what one kind of caller uses.
type (
	// AppRecords is Records bound to one application.
	AppRecords interface {
		Create(ctx context.Context, key string, value []byte, ttl time.Duration) error
		Put(ctx context.Context, key string, value []byte, ttl time.Duration) error
		Get(ctx context.Context, key string) ([]byte, error)
		Take(ctx context.Context, key string) ([]byte, error)
		Delete(ctx context.Context, keys ...string) error
	}
	// AppSets is Sets bound to one application.
	AppSets interface {
		SetAdd(ctx context.Context, key string, ttl time.Duration, members ...string) error
		SetMembers(ctx context.Context, key string) ([]string, error)
		SetRemove(ctx context.Context, key string, members ...string) error
	}
	// AppBatches is Batches bound to one application.
	AppBatches interface {
		Apply(ctx context.Context, ops ...Op) error
		GetMany(ctx context.Context, keys ...string) ([][]byte, error)
		GetManyAndUser(ctx context.Context, userID string, keys ...string) (*User, [][]byte, error)
	}
	// AppSessions is Sessions bound to one application.
	AppSessions interface {
		CreateSession(ctx context.Context, s *Session, ttl time.Duration) error
		GetSession(ctx context.Context, id string) (*Session, error)
		TouchSession(ctx context.Context, s *Session, ttl time.Duration) error
		DeleteSession(ctx context.Context, id string) error
		UserSessions(ctx context.Context, userID string) ([]*Session, error)
		GetSessionAndRecord(ctx context.Context, id, key string) (*Session, []byte, error)
	}
	// AppUsers is Users bound to one application.
	AppUsers interface {
		CreateUser(ctx context.Context, u *User, first *Identity) error
		GetUser(ctx context.Context, id string) (*User, error)
		UpdateUser(ctx context.Context, u *User) error
		UserByIdentity(ctx context.Context, idp, subject string) (*User, *Identity, error)
		UsersByVerifiedEmail(ctx context.Context, email string) ([]*User, error)
		LinkIdentity(ctx context.Context, id *Identity) error
		UpdateIdentity(ctx context.Context, id *Identity) error
		Identities(ctx context.Context, userID string) ([]*Identity, error)
		SignInUser(ctx context.Context, idp, subject string) (*SignIn, error)
	}
	// AppRateLimits is RateLimits bound to one application.
	AppRateLimits interface {
		RateLimit(ctx context.Context, buckets ...RateBucket) (RateResult, error)
	}
)

var (
	_ AppRecords    = (*App)(nil)
	_ AppSets       = (*App)(nil)
	_ AppBatches    = (*App)(nil)
	_ AppSessions   = (*App)(nil)
	_ AppUsers      = (*App)(nil)
	_ AppRateLimits = (*App)(nil)
	_ Broadcasts    = (*App)(nil)
)

// own fills an empty App field with the handle's application and refuses
// one that names another.
func (a *App) own(field *string, what string) error {
	switch *field {
	case a.name:
		return nil
	case "":
		*field = a.name
		return nil
	default:
		return fmt.Errorf("%w: a %s of %q given to the handle of %q", ErrOtherApp, what, *field, a.name)
	}
}

func (a *App) Create(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return a.st.Create(ctx, a.name, key, value, ttl)
}

func (a *App) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return a.st.Put(ctx, a.name, key, value, ttl)
}

func (a *App) Get(ctx context.Context, key string) ([]byte, error) {
	return a.st.Get(ctx, a.name, key)
}

func (a *App) Take(ctx context.Context, key string) ([]byte, error) {
	return a.st.Take(ctx, a.name, key)
}

func (a *App) Delete(ctx context.Context, keys ...string) error {
	return a.st.Delete(ctx, a.name, keys...)
}

func (a *App) SetAdd(ctx context.Context, key string, ttl time.Duration, members ...string) error {
	return a.st.SetAdd(ctx, a.name, key, ttl, members...)
}

func (a *App) SetMembers(ctx context.Context, key string) ([]string, error) {
	return a.st.SetMembers(ctx, a.name, key)
}

func (a *App) SetRemove(ctx context.Context, key string, members ...string) error {
	return a.st.SetRemove(ctx, a.name, key, members...)
}

func (a *App) Apply(ctx context.Context, ops ...Op) error {
	return a.st.Apply(ctx, a.name, ops...)
}

func (a *App) GetMany(ctx context.Context, keys ...string) ([][]byte, error) {
	return a.st.GetMany(ctx, a.name, keys...)
}

func (a *App) GetManyAndUser(ctx context.Context, userID string, keys ...string) (*User, [][]byte, error) {
	return a.st.GetManyAndUser(ctx, a.name, userID, keys...)
}

func (a *App) RateLimit(ctx context.Context, buckets ...RateBucket) (RateResult, error) {
	return a.st.RateLimit(ctx, a.name, buckets...)
}

func (a *App) CreateSession(ctx context.Context, s *Session, ttl time.Duration) error {
	if err := a.own(&s.App, "session"); err != nil {
		return err
	}
	return a.st.CreateSession(ctx, s, ttl)
}

func (a *App) GetSession(ctx context.Context, id string) (*Session, error) {
	return a.st.GetSession(ctx, a.name, id)
}

func (a *App) TouchSession(ctx context.Context, s *Session, ttl time.Duration) error {
	if err := a.own(&s.App, "session"); err != nil {
		return err
	}
	return a.st.TouchSession(ctx, s, ttl)
}

func (a *App) DeleteSession(ctx context.Context, id string) error {
	return a.st.DeleteSession(ctx, a.name, id)
}

func (a *App) UserSessions(ctx context.Context, userID string) ([]*Session, error) {
	return a.st.UserSessions(ctx, a.name, userID)
}

func (a *App) GetSessionAndRecord(ctx context.Context, id, key string) (*Session, []byte, error) {
	return a.st.GetSessionAndRecord(ctx, a.name, id, key)
}

// Broadcast and Subscribe pass through: channels are shared by every
// process on the store, not kept per application, and a message names
// its application itself (session.EndedMessage).
func (a *App) Broadcast(ctx context.Context, channel, message string) error {
	return a.st.Broadcast(ctx, channel, message)
}

func (a *App) Subscribe(ctx context.Context, channel string, heartbeat time.Duration, fn func(Notice)) {
	a.st.Subscribe(ctx, channel, heartbeat, fn)
}

func (a *App) CreateUser(ctx context.Context, u *User, first *Identity) error {
	if err := a.own(&u.App, "user"); err != nil {
		return err
	}
	if err := a.own(&first.App, "identity"); err != nil {
		return err
	}
	return a.st.CreateUser(ctx, u, first)
}

func (a *App) GetUser(ctx context.Context, id string) (*User, error) {
	return a.st.GetUser(ctx, a.name, id)
}

func (a *App) UpdateUser(ctx context.Context, u *User) error {
	if err := a.own(&u.App, "user"); err != nil {
		return err
	}
	return a.st.UpdateUser(ctx, u)
}

func (a *App) UserByIdentity(ctx context.Context, idp, subject string) (*User, *Identity, error) {
	return a.st.UserByIdentity(ctx, a.name, idp, subject)
}

func (a *App) UsersByVerifiedEmail(ctx context.Context, email string) ([]*User, error) {
	return a.st.UsersByVerifiedEmail(ctx, a.name, email)
}

func (a *App) LinkIdentity(ctx context.Context, id *Identity) error {
	if err := a.own(&id.App, "identity"); err != nil {
		return err
	}
	return a.st.LinkIdentity(ctx, id)
}

func (a *App) UpdateIdentity(ctx context.Context, id *Identity) error {
	if err := a.own(&id.App, "identity"); err != nil {
		return err
	}
	return a.st.UpdateIdentity(ctx, id)
}

func (a *App) Identities(ctx context.Context, userID string) ([]*Identity, error) {
	return a.st.Identities(ctx, a.name, userID)
}

func (a *App) SignInUser(ctx context.Context, idp, subject string) (*SignIn, error) {
	return a.st.SignInUser(ctx, a.name, idp, subject)
}
