package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/aero2/aero2/audit"
	"github.com/aero2/aero2/authz"
	"github.com/aero2/aero2/authz/keys"
	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/store"
)

// ErrNoSuchUser, ErrNoSuchSession: what an admin command names is not in
// the store.
var (
	ErrNoSuchUser    = errors.New("no such user")
	ErrNoSuchSession = errors.New("no such session")
	// ErrNoSuchApplication: --app names no application of the
	// configuration.
	ErrNoSuchApplication = errors.New("no application named")
)

// Admin is what the admin commands (`aero2 users`, `aero2 sessions`,
// `aero2 consents`, `aero2 keys list`) work with: every application built
// as a server builds it — so that sessions end through each application's
// session.Manager, which revokes what the provider issued in them, and
// the proxy sessions that depend on them end at their next check — on the
// store the running servers share. Nothing listens and no background work
// starts.
type Admin struct {
	srv *Server
	adm store.Admin
}

// memoryStoreAdmin explains why the memory store cannot be administered.
const memoryStoreAdmin = "needs the store the servers share (store.type: redis, postgres or combined): the memory store lives inside the one server process that uses it, and no command can reach it from outside"

// OpenAdmin connects to the configured store and builds the applications.
// The memory store is refused with an error that says why; so is a store
// that does not implement store.Admin. The applications write their audit
// events (session.ended, consent.removed) to log, as the servers do; nil
// writes none.
func OpenAdmin(ctx context.Context, cfg *config.Config, log audit.Logger) (*Admin, error) {
	if cfg.Store.Type == "memory" {
		return nil, errors.New(memoryStoreAdmin)
	}
	st, err := OpenStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	adm, ok := st.(store.Admin)
	if !ok {
		st.Close()
		return nil, fmt.Errorf("store.type %s cannot be administered yet: it does not list users and sessions", cfg.Store.Type)
	}
	srv, err := build(ctx, cfg, st, Options{Logger: slog.New(slog.DiscardHandler), Connectors: Connectors(), Audit: log})
	if err != nil {
		st.Close()
		return nil, err
	}
	return &Admin{srv: srv, adm: adm}, nil
}

// Close releases the store.
func (a *Admin) Close() error { return a.srv.store.Close() }

// apps returns the application named app, or every one for "".
func (a *Admin) apps(app string) ([]*application, error) {
	if app == "" {
		return a.srv.apps, nil
	}
	if x := a.srv.app(app); x != nil {
		return []*application{x}, nil
	}
	return nil, fmt.Errorf("%w %q (known: %s)", ErrNoSuchApplication, app, strings.Join(a.appNames(), ", "))
}

func (a *Admin) appNames() []string {
	var names []string
	for _, x := range a.srv.apps {
		names = append(names, x.name)
	}
	slices.Sort(names)
	return names
}

// Users lists the users of app (of every application for "").
func (a *Admin) Users(ctx context.Context, app string) ([]*store.User, error) {
	apps, err := a.apps(app)
	if err != nil {
		return nil, err
	}
	var out []*store.User
	for _, x := range apps {
		us, err := a.adm.ListUsers(ctx, x.name)
		if err != nil {
			return nil, fmt.Errorf("application %s: %w", x.name, err)
		}
		out = append(out, us...)
	}
	slices.SortFunc(out, func(a, b *store.User) int {
		return cmp.Or(cmp.Compare(a.App, b.App), a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// UserDetail is what `aero2 users show` prints.
type UserDetail struct {
	*store.User
	Identities []*store.Identity     `json:"identities"`
	Sessions   []*store.Session      `json:"sessions"`
	Consents   []authz.ConsentRecord `json:"consents"`
}

// findUser finds user id in app, or in whichever application has it for
// "" (user IDs are random: two applications do not share one).
func (a *Admin) findUser(ctx context.Context, app, id string) (*application, *store.User, error) {
	apps, err := a.apps(app)
	if err != nil {
		return nil, nil, err
	}
	var found []*application
	var user *store.User
	for _, x := range apps {
		u, err := a.srv.store.GetUser(ctx, x.name, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		found, user = append(found, x), u
	}
	switch len(found) {
	case 0:
		return nil, nil, fmt.Errorf("%w %q", ErrNoSuchUser, id)
	case 1:
		return found[0], user, nil
	}
	var names []string
	for _, x := range found {
		names = append(names, x.name)
	}
	return nil, nil, fmt.Errorf("user %q exists in applications %s: pass --app", id, strings.Join(names, ", "))
}

// User returns one user with its identities, sessions and consents.
func (a *Admin) User(ctx context.Context, app, id string) (*UserDetail, error) {
	x, u, err := a.findUser(ctx, app, id)
	if err != nil {
		return nil, err
	}
	d := &UserDetail{User: u}
	if d.Identities, err = a.srv.store.Identities(ctx, x.name, id); err != nil {
		return nil, err
	}
	slices.SortFunc(d.Identities, func(a, b *store.Identity) int { return a.LinkedAt.Compare(b.LinkedAt) })
	if d.Sessions, err = a.srv.store.UserSessions(ctx, x.name, id); err != nil {
		return nil, err
	}
	sortSessions(d.Sessions)
	if d.Consents, err = authz.ListConsents(ctx, a.consents(), x.name, id); err != nil {
		return nil, err
	}
	return d, nil
}

// DisableUser disables the user and then ends every session of theirs
// (and, through the session manager, every token issued in them). In that
// order: a sign-in racing the command is refused once the flag is set, and
// a session it created before is among those ended — or, created in
// between, is refused at its next use (session.Manager.CurrentUser and the
// token endpoint check the flag). It returns the application and how many
// sessions ended.
func (a *Admin) DisableUser(ctx context.Context, app, id string) (string, int, error) {
	x, _, err := a.findUser(ctx, app, id)
	if err != nil {
		return "", 0, err
	}
	if err := a.adm.SetUserDisabled(ctx, x.name, id, true); err != nil {
		return "", 0, err
	}
	n, err := x.sessions.EndAll(ctx, id)
	return x.name, n, err
}

// EnableUser lets a disabled user sign in again. Nothing that disabling
// ended comes back.
func (a *Admin) EnableUser(ctx context.Context, app, id string) (string, error) {
	x, _, err := a.findUser(ctx, app, id)
	if err != nil {
		return "", err
	}
	return x.name, a.adm.SetUserDisabled(ctx, x.name, id, false)
}

// DeleteUser disables the user, ends their sessions (as DisableUser),
// removes their consents, then the user and their linked identities: the
// next sign-in with one of those identities creates a new user.
func (a *Admin) DeleteUser(ctx context.Context, app, id string) (string, int, error) {
	name, n, err := a.DisableUser(ctx, app, id)
	if err != nil {
		return "", 0, err
	}
	cs, err := authz.ListConsents(ctx, a.consents(), name, id)
	if err != nil {
		return "", n, err
	}
	x := a.srv.app(name)
	for _, c := range cs {
		if err := x.provider.RemoveConsent(ctx, id, c.ClientID); err != nil {
			return "", n, err
		}
		a.consentRemoved(ctx, name, id, c.ClientID)
	}
	return name, n, a.adm.DeleteUser(ctx, name, id)
}

// Sessions lists the live sessions of app (every application for ""), of
// one user when userID is set.
func (a *Admin) Sessions(ctx context.Context, app, userID string) ([]*store.Session, error) {
	apps, err := a.apps(app)
	if err != nil {
		return nil, err
	}
	var out []*store.Session
	for _, x := range apps {
		var ss []*store.Session
		if userID != "" {
			ss, err = a.srv.store.UserSessions(ctx, x.name, userID)
		} else {
			ss, err = a.adm.ListSessions(ctx, x.name)
		}
		if err != nil {
			return nil, fmt.Errorf("application %s: %w", x.name, err)
		}
		out = append(out, ss...)
	}
	sortSessions(out)
	return out, nil
}

func sortSessions(ss []*store.Session) {
	slices.SortFunc(ss, func(a, b *store.Session) int {
		return cmp.Or(cmp.Compare(a.App, b.App), cmp.Compare(a.UserID, b.UserID), a.CreatedAt.Compare(b.CreatedAt))
	})
}

// RevokeSession ends one session by its store ID (what `aero2 sessions
// list` shows), through the session manager. It returns the application.
func (a *Admin) RevokeSession(ctx context.Context, app, id string) (string, error) {
	apps, err := a.apps(app)
	if err != nil {
		return "", err
	}
	for _, x := range apps {
		s, err := a.srv.store.GetSession(ctx, x.name, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return "", err
		}
		return x.name, x.sessions.EndSession(ctx, s.UserID, id)
	}
	return "", fmt.Errorf("%w %q", ErrNoSuchSession, id)
}

// RevokeUserSessions ends every session of a user, through the session
// manager, and says how many ended.
func (a *Admin) RevokeUserSessions(ctx context.Context, app, userID string) (string, int, error) {
	x, _, err := a.findUser(ctx, app, userID)
	if err != nil {
		return "", 0, err
	}
	n, err := x.sessions.EndAll(ctx, userID)
	return x.name, n, err
}

func (a *Admin) consents() authz.ConsentStore {
	return struct {
		store.Sets
		store.Admin
	}{a.srv.store, a.adm}
}

// Consents lists the consents of app (every application for ""), of one
// user when userID is set.
func (a *Admin) Consents(ctx context.Context, app, userID string) ([]authz.ConsentRecord, error) {
	apps, err := a.apps(app)
	if err != nil {
		return nil, err
	}
	var out []authz.ConsentRecord
	for _, x := range apps {
		cs, err := authz.ListConsents(ctx, a.consents(), x.name, userID)
		if err != nil {
			return nil, fmt.Errorf("application %s: %w", x.name, err)
		}
		out = append(out, cs...)
	}
	return out, nil
}

// RevokeConsent forgets what the user allowed the client, as Remove
// access on the account page does (authz.Provider.RemoveConsent): the
// tokens the client holds for the user are revoked, and its next
// authorization request asks again. It reports whether there was one.
func (a *Admin) RevokeConsent(ctx context.Context, app, userID, clientID string) (string, bool, error) {
	x, _, err := a.findUser(ctx, app, userID)
	if err != nil {
		return "", false, err
	}
	cs, err := authz.ListConsents(ctx, a.consents(), x.name, userID)
	if err != nil {
		return "", false, err
	}
	had := slices.ContainsFunc(cs, func(c authz.ConsentRecord) bool { return c.ClientID == clientID })
	if err := x.provider.RemoveConsent(ctx, userID, clientID); err != nil {
		return x.name, had, err
	}
	if had {
		a.consentRemoved(ctx, x.name, userID, clientID)
	}
	return x.name, had, nil
}

// consentRemoved is the consent.removed audit event, as the account
// page's Remove access writes it (Reason admin: a command removed it).
func (a *Admin) consentRemoved(ctx context.Context, app, userID, clientID string) {
	audit.Log(ctx, a.srv.audit, audit.Event{Type: audit.ConsentRemoved, App: app, User: userID, Client: clientID, Reason: "admin"})
}

// KeyInfo is one signing key, as `aero2 keys list` prints it.
type KeyInfo struct {
	App         string    `json:"app"`
	ID          string    `json:"kid"`
	State       string    `json:"state"` // current, next or previous
	CreatedAt   time.Time `json:"created_at"`
	ActivatedAt time.Time `json:"activated_at,omitzero"`
	RetiredAt   time.Time `json:"retired_at,omitzero"`
}

// Keys lists the signing keys of app (every application for "") as the
// store holds them. An application that never started has none.
func (a *Admin) Keys(ctx context.Context, app string) ([]KeyInfo, error) {
	apps, err := a.apps(app)
	if err != nil {
		return nil, err
	}
	var out []KeyInfo
	for _, x := range apps {
		set, err := x.keys.Stored(ctx)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("application %s: %w", x.name, err)
		}
		out = append(out, keyInfo(x.name, "current", set.Current), keyInfo(x.name, "next", set.Next))
		for _, k := range set.Previous {
			out = append(out, keyInfo(x.name, "previous", k))
		}
	}
	return out, nil
}

func keyInfo(app, state string, k *keys.Key) KeyInfo {
	return KeyInfo{App: app, ID: k.ID, State: state, CreatedAt: k.CreatedAt, ActivatedAt: k.ActivatedAt, RetiredAt: k.RetiredAt}
}

// ClientInfo is one OAuth client, as `aero2 clients list` prints it: what
// the configuration says, never its secret.
type ClientInfo struct {
	App          string   `json:"app"`
	ID           string   `json:"client_id"`
	Name         string   `json:"name,omitempty"`
	AuthMethod   string   `json:"token_endpoint_auth_method"`
	GrantTypes   []string `json:"grant_types"`
	Scopes       []string `json:"scopes"`
	RedirectURIs []string `json:"redirect_uris,omitempty"`
	FirstParty   bool     `json:"first_party,omitempty"`
	Introspector bool     `json:"introspector,omitempty"`
	// Derived: the proxy's own client, which the server makes when the
	// configuration does not define it (config `proxy:`).
	Derived bool `json:"derived,omitempty"`
}

// Clients lists the clients of app (every application for ""), as the
// servers would register them: the proxy's derived client included. It
// reads only the configuration.
func Clients(cfg *config.Config, app string) ([]ClientInfo, error) {
	var out []ClientInfo
	found := app == ""
	for _, a := range cfg.Apps() {
		if app != "" && a.Name != app {
			continue
		}
		found = true
		configured := map[string]bool{}
		for _, c := range a.Clients {
			configured[c.ID] = true
		}
		for _, c := range withProxyClient(cfg, a) {
			out = append(out, ClientInfo{
				App: a.Name, ID: c.ID, Name: c.Name, AuthMethod: c.TokenEndpointAuthMethod,
				GrantTypes: c.GrantTypes, Scopes: c.Scopes, RedirectURIs: c.RedirectURIs,
				FirstParty: c.FirstParty, Introspector: c.Introspector, Derived: !configured[c.ID],
			})
		}
	}
	if !found {
		return nil, fmt.Errorf("%w %q", ErrNoSuchApplication, app)
	}
	return out, nil
}
