package proxy

import (
	"errors"
	"testing"
	"time"

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
