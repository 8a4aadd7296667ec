package store

import "context"

// Admin is what the admin commands (`aero2 users`, `aero2 sessions`,
// `aero2 consents`) need from a store beyond Store: listing what sign-ins
// wrote, and disabling or deleting users. It is not part of Store, so that
// a backend can exist before it implements Admin; the commands refuse a
// store that does not. storetest.RunAdmin holds every implementation to
// this contract.
//
// store/memory implements it for the conformance suite and in-process
// tests only: its state lives inside one server process, which no command
// run from a shell can reach.
type Admin interface {
	// ListUsers returns every user of the application, in no particular
	// order.
	ListUsers(ctx context.Context, app string) ([]*User, error)
	// SetUserDisabled sets the user's Disabled flag. ErrNotFound if the
	// user is absent. It is the only writer of the flag: UpdateUser keeps
	// the stored one, so a sign-in racing an administrator's disable
	// cannot enable the user again by writing back the profile it read.
	SetUserDisabled(ctx context.Context, app, id string, disabled bool) error
	// DeleteUser removes the user, the identities linked to it and its
	// verified-email index entry, in one atomic step. ErrNotFound if the
	// user is absent. Sessions are not touched: end them through
	// session.Manager first, which revokes what they issued.
	DeleteUser(ctx context.Context, app, id string) error
	// ListSessions returns every live session of the application, in no
	// particular order.
	ListSessions(ctx context.Context, app string) ([]*Session, error)
	// SetKeys returns the keys of the application's live sets that begin
	// with prefix, in no particular order.
	SetKeys(ctx context.Context, app, prefix string) ([]string, error)
}
