package session

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/aero2/aero2/audit"
	"github.com/aero2/aero2/store"
)

// EndHook is told the store IDs of sessions that are ending (the `sid`
// the provider puts in ID tokens), so that what was issued in them — the
// provider's tokens — ends with them. It must be idempotent: a session
// whose ending failed half-way is ended again, and the hook runs again.
type EndHook func(ctx context.Context, ids ...string) error

// OnEnd registers hook to run whenever the manager ends sessions. The
// server registers the provider's revocation here while it wires the
// application, before the manager serves any request; the manager is the
// only place that ends sessions, so no way of ending one skips the hook.
func (m *Manager) OnEnd(hook EndHook) {
	m.hooks = append(m.hooks, hook)
}

// Sessions end by the idle and absolute timeouts (the store forgets them,
// or check deletes one it finds expired) without the hooks: what a
// session issued is not tied to its lifetime, only to its ending early.
//
// Every other ending runs the hooks first and deletes the sessions only
// when they succeeded. A failure then leaves the session in place, so the
// user sees an error and can try again: the other order would leave live
// tokens of a session that no longer exists, which nothing could name
// again to revoke them.

// Why a session ended: the audit log's reasons (docs/audit.md).
const (
	EndSignOut   = "sign_out"           // the user signed out (End)
	EndLogout    = "logout"             // RP-initiated logout with an ID token hint (EndSession)
	EndReplaced  = "replaced"           // a new sign-in in the same browser (Start)
	EndByUser    = "ended_from_account" // the user ended it from another session (EndOther, EndOthers)
	EndAllOfUser = "all_sessions_ended" // every session of the user at once (EndAll)
	EndExpired   = "expired"            // found past its idle or absolute timeout
	EndTooMany   = "too_many_sessions"  // the user's least recently used, past MaxSessionsPerUser (Start)
)

// MaxSessionsPerUser bounds a user's live sessions in one application. A
// sign-in past it ends the least recently used ones, hooks and all, as
// any ending. Every session is records in the store, and the account page
// and a user's disabling read them all: a script that signs in over and
// over without its cookie (each sign-in a new session, each living until
// its idle timeout) must not grow them without end. Fifty is more
// browsers and devices than a person signs in from.
const MaxSessionsPerUser = 50

// evict ends userID's least recently used sessions beyond
// MaxSessionsPerUser, never keep (the one just started).
func (m *Manager) evict(ctx context.Context, userID, keep string) error {
	all, err := m.be.UserSessions(ctx, userID)
	if err != nil || len(all) <= MaxSessionsPerUser {
		return err
	}
	slices.SortFunc(all, func(a, b *store.Session) int {
		if c := a.LastSeen.Compare(b.LastSeen); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	ids := make([]string, 0, len(all)-MaxSessionsPerUser)
	for _, s := range all {
		if len(all)-len(ids) <= MaxSessionsPerUser {
			break
		}
		if s.ID != keep {
			ids = append(ids, s.ID)
		}
	}
	return m.end(ctx, EndTooMany, userID, ids...)
}

// end runs the hooks for ids (sessions of userID), then deletes them from
// the store, and records why each ended.
func (m *Manager) end(ctx context.Context, reason, userID string, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	if err := m.runHooks(ctx, ids...); err != nil {
		return err
	}
	for _, id := range ids {
		if err := m.be.DeleteSession(ctx, id); err != nil {
			return err
		}
		audit.Log(ctx, m.cfg.Audit, audit.Event{Type: audit.SessionEnded, App: m.app, User: userID, Session: id, Reason: reason})
	}
	// Once they are gone from the store, so that a replica that reads
	// them again after the message finds them ended: every replica drops
	// its cached proxy sessions that depend on them. A failure is the
	// caller's (a sign-out that answers 503 is tried again).
	return m.announce(ctx, ids...)
}

func (m *Manager) runHooks(ctx context.Context, ids ...string) error {
	for _, h := range m.hooks {
		if err := h(ctx, ids...); err != nil {
			return fmt.Errorf("session: ending %d session(s): %w", len(ids), err)
		}
	}
	return nil
}

// End ends the request's session, if it has one, and clears the cookie.
// On an error the cookie stays, so that the browser can try again.
func (m *Manager) End(w http.ResponseWriter, r *http.Request) error {
	s, err := m.lookup(r)
	switch {
	case errors.Is(err, ErrNoSession):
	case err != nil:
		return err
	default:
		if err := m.end(r.Context(), EndSignOut, s.UserID, s.ID); err != nil {
			return err
		}
	}
	m.clearCookie(w)
	return nil
}

// EndOther ends one of cur's user's other sessions, by its store ID (the
// handle the account page shows). A session of another user is left
// alone, and reported as ErrNoSession exactly like an unknown one, so that
// a handle reveals nothing. cur's own ID is refused (ErrNoSession too):
// End ends it, together with its cookie.
func (m *Manager) EndOther(ctx context.Context, cur *store.Session, id string) error {
	if id == cur.ID {
		return ErrNoSession
	}
	other, err := m.be.GetSession(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && other.UserID != cur.UserID) {
		return ErrNoSession
	}
	if err != nil {
		return err
	}
	return m.end(ctx, EndByUser, cur.UserID, id)
}

// EndOthers ends every session of cur's user except cur, and says how
// many ended. A session that starts while it runs is not among them: it
// began after the user asked.
func (m *Manager) EndOthers(ctx context.Context, cur *store.Session) (int, error) {
	return m.endUser(ctx, EndByUser, cur.UserID, cur.ID)
}

// EndAll ends every session of the user, and says how many ended. The
// request's cookie, if it named one of them, is not cleared: call End for
// that.
func (m *Manager) EndAll(ctx context.Context, userID string) (int, error) {
	return m.endUser(ctx, EndAllOfUser, userID, "")
}

func (m *Manager) endUser(ctx context.Context, reason, userID, keep string) (int, error) {
	all, err := m.be.UserSessions(ctx, userID)
	if err != nil {
		return 0, err
	}
	ids := make([]string, 0, len(all))
	for _, s := range all {
		if s.ID != keep {
			ids = append(ids, s.ID)
		}
	}
	if err := m.end(ctx, reason, userID, ids...); err != nil {
		return 0, err
	}
	return len(ids), nil
}

// EndSession ends session id of user userID for a caller that holds
// proof that the session was the user's: an ID token the provider signed
// with both (RP-initiated logout's id_token_hint). A live session of
// another user is left alone. One that is no longer in the store (it
// timed out) has the hooks run all the same, since what was issued in it
// may outlive it. Without such proof, use EndOther.
func (m *Manager) EndSession(ctx context.Context, userID, id string) error {
	if id == "" {
		return nil
	}
	s, err := m.be.GetSession(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if err := m.runHooks(ctx, id); err != nil {
			return err
		}
		return m.announce(ctx, id) // it may have timed out, but be cached still
	case err != nil:
		return err
	case s.UserID != userID:
		return nil
	}
	return m.end(ctx, EndLogout, userID, id)
}
