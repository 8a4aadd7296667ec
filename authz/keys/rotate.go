package keys

import (
	"cmp"
	"context"
	"errors"
	"time"

	"github.com/go-jose/go-jose/v3"

	"github.com/aero2/aero2/store"
)

const (
	lockKey = "signing-keys-lock"
	// lockTTL outlives a rotation (one key generation and two store
	// writes) and frees the lock if the process dies half-way.
	lockTTL = 30 * time.Second
)

// ErrRotationInProgress: another replica or command holds the rotation lock.
var ErrRotationInProgress = errors.New("keys: another rotation is in progress")

// Rotate retires the current key, makes next current and generates a new
// next key. The retired key stays published for Options.Retention, so
// tokens it signed keep verifying until they expire; keys retired longer
// ago are dropped. The set is read from the store under a lock (a record
// created with Create, which has one winner), so concurrent rotations from
// several replicas or commands cannot lose one another's keys.
func (m *Manager) Rotate(ctx context.Context) (*Set, error) {
	return m.rotate(ctx, 0)
}

// RotateIfDue rotates when the current key has been current for at least
// period; it reports whether it rotated. Replicas may all call it: the
// lock and the re-check under it make one of them do the work.
func (m *Manager) RotateIfDue(ctx context.Context, period time.Duration) (bool, error) {
	s, err := m.Set(ctx)
	if err != nil {
		return false, err
	}
	if m.opts.Now().Sub(s.Current.ActivatedAt) < period {
		return false, nil
	}
	_, err = m.rotate(ctx, period)
	if errors.Is(err, ErrRotationInProgress) || errors.Is(err, errNotDue) {
		return false, nil
	}
	return err == nil, err
}

var errNotDue = errors.New("keys: rotation not due")

func (m *Manager) rotate(ctx context.Context, onlyIfOlder time.Duration) (*Set, error) {
	if err := m.opts.Store.Create(ctx, lockKey, []byte("1"), lockTTL); err != nil {
		if errors.Is(err, store.ErrExists) {
			return nil, ErrRotationInProgress
		}
		return nil, err
	}
	defer m.opts.Store.Delete(context.WithoutCancel(ctx), lockKey)

	m.mu.Lock()
	defer m.mu.Unlock()
	ss, err := m.readStored(ctx)
	if errors.Is(err, store.ErrNotFound) {
		// Nothing to rotate yet: the first keys are the fresh ones.
		if ss, err = m.generateStored(); err != nil {
			return nil, err
		}
		return m.storeSet(ctx, ss)
	}
	if err != nil {
		return nil, err
	}
	now := m.opts.Now().UTC()
	if onlyIfOlder > 0 && now.Sub(ss.Current.ActivatedAt) < onlyIfOlder {
		return nil, errNotDue
	}
	next, err := m.newStoredKey()
	if err != nil {
		return nil, err
	}
	retired := ss.Current
	retired.RetiredAt = now
	prev := []storedKey{retired}
	for _, p := range ss.Previous {
		if now.Sub(p.RetiredAt) < m.opts.Retention {
			prev = append(prev, p)
		}
	}
	ns := &storedSet{Version: 1, Current: ss.Next, Next: next, Previous: prev}
	ns.Current.ActivatedAt = now
	return m.storeSet(ctx, ns)
}

// replaceNext replaces the next key with one of Options.Algorithm, under
// the rotation lock; a next key already of that algorithm is kept. The
// next key has signed nothing (it becomes current only by rotation, under
// the same lock), so nothing it signed can stop verifying.
func (m *Manager) replaceNext(ctx context.Context) error {
	if err := m.opts.Store.Create(ctx, lockKey, []byte("1"), lockTTL); err != nil {
		if errors.Is(err, store.ErrExists) {
			return ErrRotationInProgress
		}
		return err
	}
	defer m.opts.Store.Delete(context.WithoutCancel(ctx), lockKey)

	m.mu.Lock()
	defer m.mu.Unlock()
	ss, err := m.readStored(ctx)
	if err != nil {
		return err
	}
	if alg := cmp.Or(ss.Next.Alg, string(jose.RS256)); alg == string(m.opts.Algorithm) {
		return nil
	}
	if ss.Next, err = m.newStoredKey(); err != nil {
		return err
	}
	m.opts.Logger.Info("signing keys: the next key is of the configured algorithm", "app", m.opts.Store.Name(), "alg", m.opts.Algorithm, "next", ss.Next.ID)
	_, err = m.storeSet(ctx, ss)
	return err
}

// storeSet writes ns and makes it the cached set; m.mu is held.
func (m *Manager) storeSet(ctx context.Context, ns *storedSet) (*Set, error) {
	sealed, err := m.sealer.seal(ns)
	if err != nil {
		return nil, err
	}
	if err := m.opts.Store.Put(ctx, recordKey, sealed, 0); err != nil {
		return nil, err
	}
	s, err := m.parse(ns)
	if err != nil {
		return nil, err
	}
	m.set.Store(s)
	m.loadedAt.Store(m.opts.Now().UnixNano())
	m.opts.Logger.Info("signing keys: rotated", "app", m.opts.Store.Name(), "current", s.Current.ID, "next", s.Next.ID, "previous", len(s.Previous))
	return s, nil
}

// Schedule rotates the keys every period until ctx ends, checking a few
// times per period. A period of 0 does nothing.
func (m *Manager) Schedule(ctx context.Context, period time.Duration) {
	if period <= 0 {
		return
	}
	every := min(period/10, 10*time.Minute)
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if _, err := m.RotateIfDue(ctx, period); err != nil && ctx.Err() == nil {
					m.opts.Logger.Warn("signing keys: scheduled rotation failed", "app", m.opts.Store.Name(), "err", err)
				}
			}
		}
	}()
}
