package proxy

import (
	"context"
	"time"

	"github.com/aero2/aero2/session"
)

// A bearer token of Aero2's own provider names its provider session (the
// sid claim) and admits only while that session lives (authenticate).
// The token's verification is cached (token_cache), but the session was
// read for every request: a store round trip per API call, where a
// browser's requests cost none while its session is cached. A live answer
// is now kept as a cookie session's validation is: for session_cache, or
// session_cache_invalidated while the broadcasts of endings are heard;
// never past the provider session's deadline or next touch (trustUntil),
// so its timeouts are noticed at the first request after them and an API
// client's use is recorded once per touch gap, as a browser's is; and
// dropped when its ending is broadcast or a back-channel logout names it
// (forgetProviderSession). An ended session is not kept: the answer is
// final, and its tokens are refused.
type liveSID struct {
	checked time.Time
	// watched and gen as live's: validated under a subscription, with
	// gen the broadcast count from before the read began.
	watched bool
	gen     uint64
	until   time.Time // trustUntil; zero: no bound but the cache's
}

// providerAlive reports whether provider session sid, named by a bearer
// token, is alive: from the cache when a check of it is still trusted,
// otherwise read (one read for concurrent requests of one session).
func (s *sessions) providerAlive(ctx context.Context, sid string) (bool, error) {
	if s.sidCached(sid, s.now()) {
		return true, nil
	}
	// "sid " cannot begin a cookie token's ID (base64url), the group's
	// other keys.
	v, err, _ := s.group.Do("sid "+sid, func() (any, error) {
		if s.sidCached(sid, s.now()) {
			return true, nil
		}
		// Shared by every request of the session waiting here: not
		// failed because the one that started it went away.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		return s.checkSID(ctx, sid)
	})
	if err != nil {
		return false, err
	}
	return v.(bool), nil
}

func (s *sessions) checkSID(ctx context.Context, sid string) (bool, error) {
	// Before the read: the cache's time counts from before what it read
	// could have changed.
	watched, gen := s.watch()
	checked := s.now()
	var d session.Deadline
	var ok bool
	var err error
	if rr, own := s.alive.(recordReader); own {
		d, err = rr.AliveUntil(ctx, sid)
		ok = d.Live()
	} else {
		ok, err = s.alive.Alive(ctx, sid)
	}
	if err != nil || !ok {
		return false, err
	}
	s.rememberSID(sid, liveSID{checked: checked, watched: watched, gen: gen, until: trustUntil(d)})
	return true, nil
}

func (s *sessions) sidCached(sid string, now time.Time) bool {
	s.mu.RLock()
	e, ok := s.sids[sid]
	s.mu.RUnlock()
	return ok && (e.until.IsZero() || now.Before(e.until)) && s.trusted(e.checked, e.watched, now)
}

func (s *sessions) rememberSID(sid string, e liveSID) {
	// Only an ID the provider makes (sidHint: at most 64 bytes) takes a
	// place in the cache; the token is the provider's, but its claims
	// are not this cache's to size.
	if s.ttl <= 0 && s.longTTL <= 0 || !sidHint(sid) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e.watched = e.watched && s.inv != nil && s.inv.gen.Load() == e.gen
	if now := s.now(); now.Sub(s.sidsSwept) >= s.sweepEvery() || len(s.sids) >= maxCachedSessions {
		s.sidsSwept = now
		for k, v := range s.sids {
			if s.outlived(v.checked, v.watched, v.until, now) {
				delete(s.sids, k)
			}
		}
		if len(s.sids) >= maxCachedSessions {
			clear(s.sids)
		}
	}
	if s.sids == nil {
		s.sids = map[string]liveSID{}
	}
	s.sids[sid] = e
}
