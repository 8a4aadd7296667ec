package proxy

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/aero2/aero2/session"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/memory"
)

// ownSessions is a ProviderSessions whose sessions are all alive: the
// proxy of Aero2's own provider, as far as the record is concerned.
type ownSessions struct{ ended map[string]bool }

func (o *ownSessions) Alive(_ context.Context, sid string) (bool, error) { return !o.ended[sid], nil }
func (o *ownSessions) EndSession(context.Context, string, string) error  { return nil }

// signedIn is what OIDCProvider.Exchange makes of an ID token and
// userinfo: the Identity is the claims'.
func signedIn(sub, sid string, groups ...any) *Tokens {
	c := map[string]any{
		"iss": "https://id.example", "aud": []any{"aero2-proxy"}, "sub": sub, "sid": sid,
		"email": sub + "@example.com", "email_verified": true, "name": "N " + sub, "preferred_username": sub,
		"groups": groups, "auth_time": float64(1796153732), "acr": "mfa", "amr": []any{"pwd", "otp"}, "dept": "eng",
		"nonce": "n-" + sub, "jti": "j-" + sub, "at_hash": "h", "c_hash": "c", "exp": float64(1796157332),
		"iat": float64(1796153732), "nbf": float64(1796153732),
	}
	return &Tokens{Identity: identityFromClaims(c), IDToken: "header.payload-" + sub + ".signature", AccessToken: "at-" + sub,
		RefreshToken: "rt-" + sub, AccessExpiry: time.Now().Add(time.Hour), AccessLifetime: time.Hour}
}

func newTestSessions(st store.Store, alive ProviderSessions) *sessions {
	return &sessions{app: "a", records: store.ForApp(st, "a"), sets: store.ForApp(st, "a"), alive: alive, ttl: time.Minute,
		lifetime: time.Hour, now: time.Now, cache: map[string]*live{}}
}

// TestRecordIsAReference: at Aero2's own provider a proxy session's
// record keeps no ID token and no claim of the one ID token's issuance,
// and what the store gives back is what was cached at sign-in: the same
// identity, the same claims, so that a policy or an identity header reads
// alike whether the session came from the cache or the store. With
// another provider the ID token stays (the logout hint). An Identity that
// is not its claims' (a Provider other than OIDCProvider) survives too.
func TestRecordIsAReference(t *testing.T) {
	st := memory.New()
	defer st.Close()
	for _, own := range []bool{true, false} {
		var alive ProviderSessions
		if own {
			alive = &ownSessions{}
		}
		s := newTestSessions(st, alive)
		tokens := signedIn("alice", "sid-alice", "admins", float64(7), "a,b") // as JSON decodes them
		cookie, l, err := s.create(t.Context(), tokens, "https://app.example")
		if err != nil {
			t.Fatal(err)
		}
		rec, err := s.stored(t.Context(), cookie)
		if err != nil || rec == nil {
			t.Fatalf("own %t: stored: %v %v", own, rec, err)
		}
		if !reflect.DeepEqual(rec, l.rec) {
			t.Errorf("own %t: the store gives back\n%+v\nwhere sign-in cached\n%+v", own, rec, l.rec)
		}
		if got := identityFromClaims(tokens.Identity.Claims); !sameIdentity(&rec.Identity, &got) {
			t.Errorf("own %t: identity %+v, want %+v", own, rec.Identity, got)
		}
		for _, k := range tokenClaims {
			if _, ok := rec.Identity.Claims[k]; ok {
				t.Errorf("own %t: the record keeps the ID token's %q", own, k)
			}
		}
		for _, k := range []string{"iss", "aud", "auth_time", "acr", "amr", "dept", "groups"} {
			if !reflect.DeepEqual(rec.Identity.Claims[k], tokens.Identity.Claims[k]) {
				t.Errorf("own %t: claim %q is %v, want %v", own, k, rec.Identity.Claims[k], tokens.Identity.Claims[k])
			}
		}
		if want := map[bool]string{true: "", false: tokens.IDToken}[own]; rec.IDToken != want {
			t.Errorf("own %t: ID token %q, want %q", own, rec.IDToken, want)
		}
	}

	// Another Provider's Identity, not made from its claims.
	s := newTestSessions(st, &ownSessions{})
	tokens := &Tokens{Identity: Identity{Subject: "u1", Email: "u1@example.com", EmailVerified: true, Groups: []string{"g"}, SessionID: "sid-u1"}}
	cookie, l, err := s.create(t.Context(), tokens, "https://app.example")
	if err != nil {
		t.Fatal(err)
	}
	if rec, err := s.stored(t.Context(), cookie); err != nil || rec == nil || !reflect.DeepEqual(rec, l.rec) || !sameIdentity(&rec.Identity, &tokens.Identity) {
		t.Errorf("an Identity without claims came back as %+v (%v), want %+v", rec, err, tokens.Identity)
	}
}

// TestForgedRecordReferencesSelectNobody: what selects a proxy session is
// the cookie's token alone, the key of its record's seal. The cookie is
// the client's: another user's provider session named after the '.', a
// token of the right shape that names no record, the store ID of a
// session (its hash) in place of its token, a record moved under another
// session's key (a store written by someone else), or a record of the
// format before this one: none of them is anyone's session, and none
// touches the session it names.
func TestForgedRecordReferencesSelectNobody(t *testing.T) {
	st := memory.New()
	defer st.Close()
	s := newTestSessions(st, &ownSessions{})
	const origin = "https://app.example"
	alice, _, err := s.create(t.Context(), signedIn("alice", "sid-alice", "admins"), origin)
	if err != nil {
		t.Fatal(err)
	}
	bob, _, err := s.create(t.Context(), signedIn("bob", "sid-bob"), origin)
	if err != nil {
		t.Fatal(err)
	}
	aliceToken, _ := splitCookie(alice)
	bobToken, _ := splitCookie(bob)
	aliceID, _ := session.TokenID(aliceToken)
	bobID, _ := session.TokenID(bobToken)
	b := make([]byte, 32)
	rand.Read(b)
	stranger := base64.RawURLEncoding.EncodeToString(b)

	// Cold: every load below reads the store.
	clear(s.cache)
	clear(s.bySID)
	for name, cookie := range map[string]string{
		"an unknown token with alice's session named": stranger + ".sid-alice",
		"alice's store ID as the token":               aliceID + ".sid-alice",
		"alice's token cut short":                     aliceToken[:len(aliceToken)-1] + ".sid-alice",
		"alice's token, one character changed":        flip(aliceToken) + ".sid-alice",
	} {
		if l, err := s.load(t.Context(), cookie, origin); err == nil {
			t.Errorf("%s: admitted as %q", name, l.rec.Identity.Subject)
		}
	}
	// bob's cookie naming alice's provider session is bob.
	if l, err := s.load(t.Context(), bobToken+".sid-alice", origin); err != nil || l.rec.Identity.Subject != "bob" {
		t.Errorf("bob's token with alice's session named: %v %v", l, err)
	}

	// alice's record moved under bob's key: bob's token cannot open it.
	raw, err := s.records.Get(t.Context(), recordKey(aliceID))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.records.Put(t.Context(), recordKey(bobID), raw, time.Hour); err != nil {
		t.Fatal(err)
	}
	clear(s.cache)
	clear(s.bySID)
	if l, err := s.load(t.Context(), bob, origin); err == nil {
		t.Errorf("bob's cookie opened alice's record, moved under bob's key, as %q", l.rec.Identity.Subject)
	}

	// A record of the format before wireRecord, under a key of its own.
	old, _ := json.Marshal(map[string]any{"identity": map[string]any{"sub": "alice", "sid": "sid-alice"}, "expires_at": time.Now().Add(time.Hour), "origin": origin})
	var plain map[string]any
	_ = json.Unmarshal(old, &plain)
	sealed, err := sealJSON("session record", stranger, plain)
	if err != nil {
		t.Fatal(err)
	}
	strangerID, _ := session.TokenID(stranger)
	if err := s.records.Put(t.Context(), recordKey(strangerID), sealed, time.Hour); err != nil {
		t.Fatal(err)
	}
	if l, err := s.load(t.Context(), stranger+".sid-alice", origin); err == nil {
		t.Errorf("a record of the old format opened, as %q", l.rec.Identity.Subject)
	}

	// Through all of it alice's session stands.
	if l, err := s.load(t.Context(), alice, origin); err != nil || l.rec.Identity.Subject != "alice" {
		t.Errorf("alice after the forgeries: %v %v", l, err)
	}
}

func flip(token string) string {
	b := []byte(token)
	if b[3] == 'A' {
		b[3] = 'B'
	} else {
		b[3] = 'A'
	}
	return string(b)
}

// TestOwnProviderIndexesNothing: at Aero2's own provider a proxy session
// is indexed neither under its provider session nor its subject: it is a
// reference to its provider session, which every validation checks. A
// logout token with sid drops the sessions of that sid this replica
// caches and deletes their records, and no other user's; one with sub
// alone drops the subject's cached sessions and leaves the records; and
// a session of an ended provider session that this replica has not
// cached (validated on another, or evicted) is refused at its next load
// and its record deleted. Another provider keeps both indexes, which its
// logout tokens need.
func TestOwnProviderIndexesNothing(t *testing.T) {
	st := memory.New()
	defer st.Close()
	own := &ownSessions{ended: map[string]bool{}}
	const origin = "https://app.example"
	for _, alive := range []ProviderSessions{own, nil} {
		s := newTestSessions(st, alive)
		s.app = "own"
		if alive == nil {
			s.app = "other"
		}
		s.records, s.sets = store.ForApp(st, s.app), store.ForApp(st, s.app)
		cookie, l, err := s.create(t.Context(), signedIn("alice", "sid-1"), origin)
		if err != nil {
			t.Fatal(err)
		}
		bySub, _ := s.sets.SetMembers(t.Context(), subIndexKey("alice"))
		bySID, _ := s.sets.SetMembers(t.Context(), sidIndexKey("sid-1"))
		if want := map[bool]int{true: 0, false: 1}[alive != nil]; len(bySID) != want || len(bySub) != want {
			t.Errorf("%s: indexed by sid %v, by sub %v; want %d each", s.app, bySID, bySub, want)
		}
		if alive == nil {
			continue
		}
		// By subject: dropped from the cache, the record left.
		if n, err := s.endFor(t.Context(), "", "alice"); err != nil || n != 1 {
			t.Errorf("logout by sub: %d %v, want the one cached session", n, err)
		}
		if s.cached(l.id, time.Now()) != nil {
			t.Error("logout by sub: the session is still cached")
		}
		if _, err := s.records.Get(t.Context(), recordKey(l.id)); err != nil {
			t.Errorf("logout by sub deleted the record: %v", err)
		}
		// Its provider session ends: the next load refuses it.
		own.ended["sid-1"] = true
		if _, err := s.load(t.Context(), cookie, origin); err == nil {
			t.Error("admitted after its provider session ended")
		}

		// By sid: the cached sessions of that sid go, records and all;
		// bob's, of another provider session, stays.
		cookie2, l2, err := s.create(t.Context(), signedIn("alice", "sid-2"), origin)
		if err != nil {
			t.Fatal(err)
		}
		bob, lb, err := s.create(t.Context(), signedIn("bob", "sid-bob"), origin)
		if err != nil {
			t.Fatal(err)
		}
		own.ended["sid-2"] = true // the provider ends it, then sends the token
		if n, err := s.endFor(t.Context(), "sid-2", "alice"); err != nil || n != 1 {
			t.Errorf("logout by sid: %d %v", n, err)
		}
		if s.cached(l2.id, time.Now()) != nil {
			t.Error("logout by sid: the session is still cached")
		}
		if _, err := s.records.Get(t.Context(), recordKey(l2.id)); err == nil {
			t.Error("logout by sid left the record of a session it had cached")
		}
		if _, err := s.load(t.Context(), cookie2, origin); err == nil {
			t.Error("admitted after its logout by sid")
		}
		if s.cached(lb.id, time.Now()) == nil {
			t.Error("logout by alice's sid dropped bob's cached session")
		}
		if l, err := s.load(t.Context(), bob, origin); err != nil || l.rec.Identity.Subject != "bob" {
			t.Errorf("bob after alice's logout: %v %v", l, err)
		}

		// Not cached here: the logout token finds nothing to drop, and
		// the next load (from the store) refuses the session and deletes
		// its record.
		cookie3, l3, err := s.create(t.Context(), signedIn("alice", "sid-3"), origin)
		if err != nil {
			t.Fatal(err)
		}
		s.forget(l3.id)
		own.ended["sid-3"] = true
		if n, err := s.endFor(t.Context(), "sid-3", "alice"); err != nil || n != 0 {
			t.Errorf("logout by sid of an uncached session: %d %v", n, err)
		}
		if _, err := s.load(t.Context(), cookie3, origin); err == nil {
			t.Error("an uncached session of an ended provider session was admitted")
		}
		if _, err := s.records.Get(t.Context(), recordKey(l3.id)); err == nil {
			t.Error("the refused record is still there")
		}
	}
}
