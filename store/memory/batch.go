package memory

import (
	"bytes"
	"context"
	"fmt"

	"github.com/aero2/aero2/store"
)

// Apply runs the ops under the store's lock: no reader sees half of them,
// and the guards are checked before anything is written.
func (s *Store) Apply(_ context.Context, app string, ops ...store.Op) error {
	for _, op := range ops {
		if op.Kind < store.OpPut || op.Kind > store.OpTake {
			return fmt.Errorf("memory: unknown batch op %d", op.Kind)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, op := range ops {
		r, ok := find(s.records, app, op.Key)
		live := ok && s.live(r.exp)
		if (op.Kind == store.OpCreate || op.Kind == store.OpAbsent) && live || op.Kind == store.OpTake && !live {
			return store.ErrExists
		}
	}
	for _, op := range ops {
		switch op.Kind {
		case store.OpPut, store.OpCreate:
			s.records[k(app, op.Key)] = record{bytes.Clone(op.Value), s.expiry(op.TTL)}
		case store.OpDelete, store.OpTake:
			delete(s.records, k(app, op.Key))
		case store.OpSetAdd:
			s.setAddLocked(app, op.Key, op.TTL, op.Members)
		case store.OpSetRemove:
			s.setRemoveLocked(app, op.Key, op.Members)
		}
	}
	return nil
}

// GetMany reads the records in one locked step.
func (s *Store) GetMany(_ context.Context, app string, keys ...string) ([][]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.getManyLocked(app, keys), nil
}

// getManyLocked is GetMany's read; s.mu is held.
func (s *Store) getManyLocked(app string, keys []string) [][]byte {
	out := make([][]byte, len(keys))
	for i, key := range keys {
		if r, ok := find(s.records, app, key); ok && s.live(r.exp) {
			out[i] = bytes.Clone(r.val)
		}
	}
	return out
}

// GetManyAndUser reads the records and the user in one locked step.
func (s *Store) GetManyAndUser(_ context.Context, app, userID string, keys ...string) (*store.User, [][]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := s.getManyLocked(app, keys)
	var u *store.User
	if got, ok := find(s.users, app, userID); ok {
		u = cloneUser(got)
	}
	return u, out, nil
}
