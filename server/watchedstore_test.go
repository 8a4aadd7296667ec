package server_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aero2/aero2/store"
)

// watchedStore is a store that counts what the provider and the proxy do
// with it, and can hold some of it back to line concurrent requests up.
//
// It recognises records by the key prefixes of the packages that write
// them: oauthstore's refresh tokens ("oauth:rt:<hash>", read with their
// "oauth:rt-used:<hash>" marker; a redemption commits by creating the
// marker) and the proxy's sessions ("proxy-session:<id>") and refresh
// locks ("proxy-refresh-lock:<id>"). Should those names change, the counts
// stay at zero and the tests that expect one fail: they cannot pass
// without seeing the operations they count.
type watchedStore struct {
	store.Store

	mu sync.Mutex
	// refreshReads: refresh grants that read their refresh token (one per
	// refresh request reaching the store), presented by token.
	refreshReads int
	presented    map[string]int
	// reused: reads that found the token already redeemed (the provider
	// then revokes the family).
	reused int
	// redeemed: redemptions committed; raced: redemptions refused at
	// commit because another redemption of the same token committed first.
	redeemed, raced int
	// contended: attempts to take a proxy refresh lock that another holder
	// had.
	contended int
	// sessionReads: proxy session records read; providerSessionReads:
	// provider sessions read (the proxy's liveness check).
	sessionReads, providerSessionReads int

	// holdRefresh lines up concurrent refreshes: the first redemption
	// waits until a second refresher is under way (waiting for the lock,
	// or — without one — at the provider), and a second redemption waits
	// until the first has committed.
	holdRefresh bool
	// holdSession holds the first proxy session read until release is
	// closed, so that concurrent requests pile up behind it.
	holdSession chan struct{}
	held        bool
	// problems found while holding (a wait that timed out).
	problems []string
}

func newWatchedStore(st store.Store) *watchedStore {
	return &watchedStore{Store: st, presented: map[string]int{}}
}

// reset clears the counts.
func (w *watchedStore) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.refreshReads, w.reused, w.redeemed, w.raced, w.contended = 0, 0, 0, 0, 0
	w.sessionReads, w.providerSessionReads = 0, 0
	w.presented = map[string]int{}
	w.held = false
	w.problems = nil
}

// await polls cond (called with w.mu held) for at most 10s.
func (w *watchedStore) await(what string, cond func() bool) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		w.mu.Lock()
		ok := cond()
		if !ok && time.Now().After(deadline) {
			w.problems = append(w.problems, "timed out waiting until "+what)
			ok = true
		}
		w.mu.Unlock()
		if ok {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// check fails the test on problems met while holding.
func (w *watchedStore) check(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range w.problems {
		t.Error(p)
	}
}

func (w *watchedStore) GetMany(ctx context.Context, app string, keys ...string) ([][]byte, error) {
	if len(keys) == 0 || !strings.HasPrefix(keys[0], "oauth:rt:") {
		return w.Store.GetMany(ctx, app, keys...)
	}
	w.refreshRead(keys)
	vals, err := w.Store.GetMany(ctx, app, keys...)
	w.readRefresh(vals, err)
	return vals, err
}

// GetManyAndUser is how a refresh token that names its user is read
// (with its marker and the user).
func (w *watchedStore) GetManyAndUser(ctx context.Context, app, userID string, keys ...string) (*store.User, [][]byte, error) {
	if len(keys) == 0 || !strings.HasPrefix(keys[0], "oauth:rt:") {
		return w.Store.GetManyAndUser(ctx, app, userID, keys...)
	}
	w.refreshRead(keys)
	u, vals, err := w.Store.GetManyAndUser(ctx, app, userID, keys...)
	w.readRefresh(vals, err)
	return u, vals, err
}

// refreshRead counts a read of a refresh token, and holds it back as
// holdRefresh says.
func (w *watchedStore) refreshRead(keys []string) {
	w.mu.Lock()
	w.refreshReads++
	w.presented[keys[0]]++
	n, hold := w.refreshReads, w.holdRefresh
	w.mu.Unlock()
	if hold {
		switch n {
		case 1:
			w.await("a second refresher is under way", func() bool { return w.contended > 0 || w.refreshReads > 1 })
		case 2:
			w.await("the first redemption has committed", func() bool { return w.redeemed+w.raced > 0 })
		}
	}
}

// readRefresh counts a refresh token read that found it redeemed.
func (w *watchedStore) readRefresh(vals [][]byte, err error) {
	if err == nil && len(vals) > 1 && vals[0] != nil && vals[1] != nil {
		w.mu.Lock()
		w.reused++
		w.mu.Unlock()
	}
}

func (w *watchedStore) Apply(ctx context.Context, app string, ops ...store.Op) error {
	redemption := false
	for _, op := range ops {
		redemption = redemption || (op.Kind == store.OpCreate && strings.HasPrefix(op.Key, "oauth:rt-used:"))
	}
	err := w.Store.Apply(ctx, app, ops...)
	if redemption {
		w.mu.Lock()
		switch {
		case err == nil:
			w.redeemed++
		case errors.Is(err, store.ErrExists):
			w.raced++
		}
		w.mu.Unlock()
	}
	return err
}

func (w *watchedStore) Create(ctx context.Context, app, key string, value []byte, ttl time.Duration) error {
	err := w.Store.Create(ctx, app, key, value, ttl)
	if errors.Is(err, store.ErrExists) && strings.HasPrefix(key, "proxy-refresh-lock:") {
		w.mu.Lock()
		w.contended++
		w.mu.Unlock()
	}
	return err
}

func (w *watchedStore) Get(ctx context.Context, app, key string) ([]byte, error) {
	w.sessionRead(key)
	return w.Store.Get(ctx, app, key)
}

// sessionRead counts a read of key if it is a proxy session record, and
// holds the first one back while holdSession is set.
func (w *watchedStore) sessionRead(key string) {
	if !strings.HasPrefix(key, "proxy-session:") {
		return
	}
	w.mu.Lock()
	w.sessionReads++
	release := w.holdSession
	first := release != nil && !w.held
	w.held = w.held || first
	w.mu.Unlock()
	if first {
		select {
		case <-release:
		case <-time.After(10 * time.Second):
			w.mu.Lock()
			w.problems = append(w.problems, "the held session read was never released")
			w.mu.Unlock()
		}
	}
}

// GetSessionAndRecord is a read of both (the proxy's liveness check of a
// session not in its cache).
func (w *watchedStore) GetSessionAndRecord(ctx context.Context, app, id, key string) (*store.Session, []byte, error) {
	w.sessionRead(key)
	w.mu.Lock()
	w.providerSessionReads++
	w.mu.Unlock()
	return w.Store.GetSessionAndRecord(ctx, app, id, key)
}

func (w *watchedStore) GetSession(ctx context.Context, app, id string) (*store.Session, error) {
	w.mu.Lock()
	w.providerSessionReads++
	w.mu.Unlock()
	return w.Store.GetSession(ctx, app, id)
}
