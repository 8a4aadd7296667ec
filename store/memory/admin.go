package memory

import (
	"context"
	"strings"

	"github.com/aero2/aero2/store"
)

var _ store.Admin = (*Store)(nil)

func (s *Store) ListUsers(_ context.Context, app string) ([]*store.User, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*store.User
	for _, u := range s.users {
		if u.App == app {
			out = append(out, cloneUser(u))
		}
	}
	return out, nil
}

func (s *Store) SetUserDisabled(_ context.Context, app, id string, disabled bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[k(app, id)]
	if !ok {
		return store.ErrNotFound
	}
	u.Disabled = disabled
	return nil
}

func (s *Store) DeleteUser(_ context.Context, app, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	uk := k(app, id)
	u, ok := s.users[uk]
	if !ok {
		return store.ErrNotFound
	}
	s.unindexEmail(u)
	for ik := range s.userIdents[uk] {
		delete(s.identities, ik)
	}
	delete(s.userIdents, uk)
	delete(s.users, uk)
	return nil
}

func (s *Store) ListSessions(_ context.Context, app string) ([]*store.Session, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*store.Session
	for _, se := range s.sessions {
		if se.s.App == app && s.live(se.exp) {
			out = append(out, cloneSession(&se.s))
		}
	}
	return out, nil
}

func (s *Store) SetKeys(_ context.Context, app, prefix string) ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	full := k(app, prefix)
	var out []string
	for key, st := range s.sets {
		if strings.HasPrefix(key, full) && s.live(st.exp) && len(st.members) > 0 {
			out = append(out, strings.TrimPrefix(key, k(app, "")))
		}
	}
	return out, nil
}
