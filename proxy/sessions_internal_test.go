package proxy

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aero2/aero2/session"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/memory"
)

// TestSessionsKeepTokensOnlyWhenSent: without a route that sends the
// access token upstream, a session keeps neither it nor the refresh
// token; if a reload then adds such a route, the session has no token to
// send and its browser signs in again, rather than an empty token going
// upstream.
func TestSessionsKeepTokensOnlyWhenSent(t *testing.T) {
	st := memory.New()
	defer st.Close()
	tokens := &Tokens{Identity: Identity{Subject: "u1"}, IDToken: "id.token.x", AccessToken: "access.token.x", RefreshToken: "refresh-x",
		AccessExpiry: time.Now().Add(time.Hour), AccessLifetime: time.Hour}
	for _, keep := range []bool{false, true} {
		s := &sessions{app: "a", records: store.ForApp(st, "a"), ttl: time.Second, lifetime: time.Hour, now: time.Now, cache: map[string]*live{}, keepTokens: keep}
		cookie, _, err := s.create(t.Context(), tokens, "https://app.example")
		if err != nil {
			t.Fatal(err)
		}
		rec, err := s.stored(t.Context(), cookie)
		if err != nil || rec == nil {
			t.Fatalf("keep %t: stored record: %v %v", keep, rec, err)
		}
		if got := rec.AccessToken != "" || rec.RefreshToken != ""; got != keep {
			t.Errorf("keep %t: the record holds access %q and refresh %q", keep, rec.AccessToken, rec.RefreshToken)
		}
		if rec.IDToken != tokens.IDToken {
			t.Errorf("keep %t: the ID token (the logout hint) was not kept", keep)
		}
		// As a reloaded configuration would: a route now sends the token.
		s.keepTokens = true
		l, err := s.load(t.Context(), cookie, "https://app.example")
		if err != nil {
			t.Fatal(err)
		}
		at, err := s.accessToken(t.Context(), cookie, l)
		switch {
		case keep && (err != nil || at != tokens.AccessToken):
			t.Errorf("with tokens kept: %q %v", at, err)
		case !keep && !errors.Is(err, errNoSession):
			t.Errorf("a session without tokens, asked for one: %q %v; want errNoSession (sign in again)", at, err)
		}
	}
}

// TestCacheIndexByProviderSession: the cache's index by provider session
// follows every way in and out of the cache, so that a broadcast ending
// drops exactly the sessions that depend on it.
func TestCacheIndexByProviderSession(t *testing.T) {
	s := &sessions{ttl: time.Minute, now: time.Now, cache: map[string]*live{}}
	rec := func(sid string) *record {
		return &record{Identity: Identity{SessionID: sid}, ExpiresAt: time.Now().Add(time.Hour)}
	}
	now := time.Now()
	s.remember(&live{id: "a", rec: rec("s1"), checked: now})
	s.remember(&live{id: "b", rec: rec("s1"), checked: now})
	s.remember(&live{id: "c", rec: rec("s2"), checked: now})
	s.remember(&live{id: "b", rec: rec("s2"), checked: now}) // refreshed: b now names s2
	s.forgetProviderSession("s1")
	if s.cached("a", now) != nil || s.cached("b", now) == nil || s.cached("c", now) == nil {
		t.Fatalf("after s1 ended: a %v, b %v, c %v; want only a gone", s.cached("a", now) != nil, s.cached("b", now) != nil, s.cached("c", now) != nil)
	}
	s.forget("c")
	s.forgetProviderSession("s2")
	if len(s.cache) != 0 || len(s.bySID) != 0 {
		t.Fatalf("left behind: cache %v, index %v", s.cache, s.bySID)
	}
}

// TestCacheSweepsWhatItNoLongerTrusts: entries past session_cache (and
// past session_cache_invalidated for a watched one) leave the cache at the
// next remember after sweepEvery, with their index entries; before, they
// stayed until the cache held maxCachedSessions, one decoded session per
// sign-in (TestSignInHeapOnMemoryStore in server).
func TestCacheSweepsWhatItNoLongerTrusts(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	s := &sessions{ttl: 2 * time.Second, longTTL: time.Minute, inv: &invalidations{now: clock}, now: clock, cache: map[string]*live{}}
	rec := func(sid string) *record {
		return &record{Identity: Identity{SessionID: sid}, ExpiresAt: now.Add(time.Hour)}
	}
	s.remember(&live{id: "old", rec: rec("s1"), checked: now})
	s.remember(&live{id: "watched", rec: rec("s2"), checked: now, watched: true})
	now = now.Add(s.sweepEvery() - time.Millisecond)
	s.remember(&live{id: "new", rec: rec("s3"), checked: now})
	if len(s.cache) != 3 {
		t.Fatalf("swept before sweepEvery: %d entries left, want 3", len(s.cache))
	}
	now = now.Add(2 * time.Millisecond)
	s.remember(&live{id: "newer", rec: rec("s4"), checked: now})
	_, old := s.cache["old"]
	_, watched := s.cache["watched"]
	if old || !watched || len(s.cache) != 3 || s.bySID["s1"] != nil {
		t.Fatalf("after sweepEvery: old kept %v, watched kept %v, %d entries, index of s1 %v; want only old gone", old, watched, len(s.cache), s.bySID["s1"])
	}
}

// TestRecordsCarryTheGroupsHeader: a record made from tokens whose
// identity came through JSON (a handoff), or read back from the store
// with an identity of its own, carries the groups header's value, so a
// request of the session does not join the groups again.
func TestRecordsCarryTheGroupsHeader(t *testing.T) {
	id := Identity{Subject: "u", Groups: []string{"admins", "engineering"}}
	now := time.Now()
	fromHandoff := newRecord(&Tokens{Identity: id}, false, "https://app.example", now, time.Hour)
	stored := &wireRecord{Identity: &id, ExpiresAt: now.Add(time.Hour).Unix()}
	for name, rec := range map[string]*record{"new": fromHandoff, "stored": stored.record()} {
		if got := rec.Identity.groupsValue(); got != "admins,engineering" {
			t.Errorf("%s: groups header %q", name, got)
		}
		if n := testing.AllocsPerRun(50, func() { rec.Identity.groupsValue() }); n != 0 {
			t.Errorf("%s: the groups header is joined on every request (%v allocations)", name, n)
		}
	}
}

// deadlineSessions is Aero2's own provider as the proxy sees it (a
// recordReader): every provider session alive until d.
type deadlineSessions struct {
	ownSessions
	records store.AppRecords
	d       session.Deadline
}

func (o *deadlineSessions) AliveWithRecord(ctx context.Context, sid, key string, depends func([]byte) bool) (session.Deadline, []byte, error) {
	raw, err := o.records.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		raw, err = nil, nil
	}
	if err != nil || !depends(raw) {
		return session.Deadline{}, raw, err
	}
	return o.d, raw, nil
}

func (o *deadlineSessions) AliveUntil(context.Context, string) (session.Deadline, error) {
	return o.d, nil
}

// refreshing is a Provider that only refreshes.
type refreshing struct{ Provider }

func (refreshing) Refresh(context.Context, string) (*Tokens, error) {
	return &Tokens{AccessToken: "at-2", RefreshToken: "rt-2", AccessExpiry: time.Now().Add(2 * time.Hour), AccessLifetime: time.Hour}, nil
}

// TestCacheTrustEndsAtTheProviderDeadline: at Aero2's own provider a
// session is not cached at sign-in (its provider session's deadline is
// not known there); once validated it is trusted, under session_cache
// and session_cache_invalidated alike, until the provider session's
// next touch or its end, whichever comes first (trustUntil), and not
// after; an access token's refresh does not move that bound. Without a
// deadline (another provider's sessions) only the caches' own limits
// apply.
func TestCacheTrustEndsAtTheProviderDeadline(t *testing.T) {
	st := memory.New()
	defer st.Close()
	now := time.Now()
	clock := func() time.Time { return now }
	own := &deadlineSessions{records: store.ForApp(st, "a")}
	s := newTestSessions(st, own)
	s.ttl, s.longTTL, s.now, s.keepTokens, s.provider = 2*time.Second, time.Hour, clock, true, refreshing{}
	// Heard all along: every heartbeat arrives (heard is the last).
	s.inv = &invalidations{now: clock, since: now, heard: now.Add(2 * time.Hour)}
	tokens := signedIn("alice", "sid-alice")
	tokens.AccessExpiry = now.Add(10 * time.Second) // due: the first refresh redeems the refresh token
	cookie, _, err := s.create(t.Context(), tokens, "https://app.example")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.cache) != 0 {
		t.Fatal("a session of Aero2's own provider was cached at sign-in, before its provider session's deadline was read")
	}
	token, _ := splitCookie(cookie)
	id, _ := session.TokenID(token)
	for _, c := range []struct {
		name  string
		d     session.Deadline
		bound time.Duration // after the validation
	}{
		{"within session_cache (and refreshed)", session.Deadline{Ends: now.Add(time.Second), Touch: now.Add(time.Minute)}, time.Second},
		{"the touch first", session.Deadline{Ends: now.Add(10 * time.Minute), Touch: now.Add(time.Minute)}, time.Minute},
		{"the end first", session.Deadline{Ends: now.Add(30 * time.Second), Touch: now.Add(time.Minute)}, 30 * time.Second},
	} {
		s.forget(id)
		own.d = c.d
		l, err := s.load(t.Context(), cookie, "https://app.example")
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if s.cached(id, now.Add(c.bound-time.Millisecond)) == nil {
			t.Errorf("%s: not trusted until %v", c.name, c.bound)
		}
		if s.cached(id, now.Add(c.bound)) != nil {
			t.Errorf("%s: trusted past %v", c.name, c.bound)
		}
		// A refresh keeps the bound: only the access token is new (the
		// first case's redeems the refresh token; the others find the
		// stored record refreshed).
		if at, err := s.accessToken(t.Context(), cookie, l); err != nil || at != "at-2" {
			t.Fatalf("%s: refresh: %q %v", c.name, at, err)
		}
		// (What a refresh caches is trusted for session_cache only.)
		within := now.Add(min(c.bound, s.ttl) - time.Millisecond)
		if s.cached(id, within) == nil || s.cached(id, now.Add(c.bound)) != nil {
			t.Errorf("%s: after a refresh, trusted at %v? %v; at %v? %v", c.name, within.Sub(now),
				s.cached(id, within) != nil, c.bound, s.cached(id, now.Add(c.bound)) != nil)
		}
	}
	// Another provider's session: no deadline, the caches' own limits.
	other := newTestSessions(st, nil)
	other.ttl, other.longTTL, other.now, other.inv = 2*time.Second, time.Hour, clock, &invalidations{now: clock, since: now, heard: now.Add(2 * time.Hour)}
	ck, _, err := other.create(t.Context(), signedIn("bob", "sid-bob"), "https://app.example")
	if err != nil {
		t.Fatal(err)
	}
	l, err := other.load(t.Context(), ck, "https://app.example")
	if err != nil || !l.until.IsZero() || other.cached(l.id, now.Add(59*time.Minute)) == nil {
		t.Errorf("another provider's session: %v, until %v, trusted for session_cache_invalidated %v", err, l.until, other.cached(l.id, now.Add(59*time.Minute)) != nil)
	}
}

// TestCachedKeyIsCached: the cache looked up by a session.Key finds what
// the lookup by its string finds, and makes no string of the key.
func TestCachedKeyIsCached(t *testing.T) {
	s := &sessions{ttl: time.Minute, now: time.Now, cache: map[string]*live{}}
	token := strings.Repeat("A", 43)
	key, ok := session.TokenKey(token)
	id, _ := session.TokenID(token)
	if !ok {
		t.Fatal("TokenKey refused a token")
	}
	now := time.Now()
	if s.cachedKey(&key, now) != nil {
		t.Fatal("found in an empty cache")
	}
	l := &live{id: id, rec: &record{ExpiresAt: now.Add(time.Hour)}, checked: now}
	s.remember(l)
	if got := s.cachedKey(&key, now); got != l || s.cached(id, now) != l {
		t.Fatalf("cachedKey %v, cached %v; want the entry", got, s.cached(id, now))
	}
	if got := s.cachedKey(&key, now.Add(time.Minute)); got != nil {
		t.Fatal("served past session_cache")
	}
	if n := testing.AllocsPerRun(100, func() { s.cachedKey(&key, now) }); n != 0 {
		t.Errorf("cachedKey allocates %v times, want none", n)
	}
}
