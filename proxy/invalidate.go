package proxy

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aero2/aero2/session"
	"github.com/aero2/aero2/store"
)

// A validated session is trusted for proxy.session_cache, a couple of
// seconds: how long a sign-out on another replica may go unnoticed here.
// With proxy.session_cache_invalidated it is trusted longer while this
// replica hears the store's broadcasts of ended sessions
// (session.EndedChannel), which drop it from the cache at once. What is
// not heard cannot be trusted: the longer life applies only to a session
// validated while the subscription stood, with no broadcast between the
// start of its validation and its caching, and only while heartbeats
// keep arriving (a connection that died silently stops them).
const (
	broadcastHeartbeat = 500 * time.Millisecond
	// broadcastGrace: past this without a notice, the subscription is
	// taken for lost, and session_cache applies again. It bounds how long
	// a missed broadcast can keep an ended session admitted.
	broadcastGrace = 2 * time.Second
)

// invalidations is what this process knows about its subscription.
type invalidations struct {
	// gen counts broadcasts and (re)subscriptions: a validation that
	// saw it change may have missed one that concerns it.
	gen atomic.Uint64
	now func() time.Time

	mu    sync.Mutex
	since time.Time // subscribed continuously since; zero: not yet
	heard time.Time // the last notice
}

func (v *invalidations) notice(n store.Notice) {
	now := v.now()
	v.mu.Lock()
	v.heard = now
	if n.Fresh {
		v.since = now
	}
	v.mu.Unlock()
	if n.Fresh || n.Message != "" {
		v.gen.Add(1)
	}
}

// trusts reports whether an ending of a session validated at checked
// would have been heard by now.
func (v *invalidations) trusts(checked, now time.Time) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return !v.since.IsZero() && !checked.Before(v.since) && now.Sub(v.heard) < broadcastGrace
}

// Run subscribes to the broadcasts of ended sessions until ctx ends, when
// an application caches sessions past session_cache; without it, none
// does. The server runs it with its background work.
func (h *Handler) Run(ctx context.Context) {
	if h.broadcasts == nil {
		return
	}
	for _, ap := range h.order {
		if ap.sessions.longTTL > 0 {
			go h.broadcasts.Subscribe(ctx, session.EndedChannel, broadcastHeartbeat, h.onNotice)
			return
		}
	}
}

func (h *Handler) onNotice(n store.Notice) {
	h.inv.notice(n) // first: a validation under way sees the change
	if n.Message == "" {
		return
	}
	app, kind, id, ok := session.ParseEnded(n.Message)
	ap := h.apps[app]
	if !ok || ap == nil {
		return
	}
	switch kind {
	case session.EndedProxy:
		ap.sessions.forget(id)
	case session.EndedProvider:
		ap.sessions.forgetProviderSession(id)
	}
}

// forgetProviderSession drops the cached sessions that depend on provider
// session sid, and the bearer tokens' check of it, and returns the
// sessions' IDs.
func (s *sessions) forgetProviderSession(sid string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sids, sid)
	ids := make([]string, 0, len(s.bySID[sid]))
	for id := range s.bySID[sid] {
		ids = append(ids, id)
	}
	for _, id := range ids {
		s.drop(id)
	}
	return ids
}

// announce broadcasts that proxy sessions ended, so that every replica
// drops them from its cache.
func (s *sessions) announce(ctx context.Context, ids ...string) error {
	if s.broadcasts == nil || s.longTTL <= 0 {
		return nil
	}
	for _, id := range ids {
		if err := s.broadcasts.Broadcast(ctx, session.EndedChannel, session.EndedMessage(s.app, session.EndedProxy, id)); err != nil {
			return err
		}
	}
	return nil
}
