// Package storetest is the conformance suite every store backend passes.
// A backend's test is a few lines:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return newStore(t) })
//	}
//
// Each subtest gets a fresh store from newStore and works in applications
// of its own random names, so backends that share a server (Redis) need no
// flushing between tests. No backend may skip a test.
package storetest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aero2/aero2/store"
)

// shortTTL is long enough for a round trip to a local Redis and short
// enough to wait out; expiry tests sleep past it.
const (
	shortTTL  = 150 * time.Millisecond
	waitOut   = 400 * time.Millisecond
	longTTL   = time.Hour
	takers    = 64
	takeRound = 20
)

// Run runs every conformance test against stores from newStore.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"RecordsCreateGetPut", testRecordsCreateGetPut},
		{"RecordsTakeIsSingleUse", testRecordsTake},
		{"RecordsDelete", testRecordsDelete},
		{"RecordsExpire", testRecordsExpire},
		{"RecordsScopedByApplication", testRecordsScoped},
		{"Sets", testSets},
		{"SetsExpireAndNeverShorten", testSetsExpire},
		{"Sessions", testSessions},
		{"SessionsExpireAndTouch", testSessionsExpire},
		{"UserSessions", testUserSessions},
		{"SessionAndRecord", testSessionAndRecord},
		{"Users", testUsers},
		{"IdentitiesAreUnique", testIdentityUniqueness},
		{"LinkIdentity", testLinkIdentity},
		{"VerifiedEmailIndex", testEmailIndex},
		{"VerifiedEmailIndexBeyondASCII", testEmailIndexUnicode},
		{"SignInUser", testSignInUser},
		{"NotFound", testNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
	runBatchTests(t, newStore)
	runRateLimitTests(t, newStore)
	t.Run("Concurrency", func(t *testing.T) {
		s := newStore(t)
		t.Cleanup(func() { s.Close() })
		t.Run("TakeHasExactlyOneWinner", func(t *testing.T) { testConcurrentTake(t, s) })
		t.Run("CreateHasExactlyOneWinner", func(t *testing.T) { testConcurrentCreate(t, s) })
		t.Run("CreateUserHasExactlyOneWinner", func(t *testing.T) { testConcurrentCreateUser(t, s) })
	})
}

// App returns a fresh application name, so tests sharing a server never
// see each other's records.
func App(t testing.TB) string {
	return "t-" + rand.Text()[:16]
}

func ctx(t *testing.T) context.Context { return t.Context() }

func mustNil(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func mustIs(t *testing.T, err, want error, what string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got %v, want %v", what, err, want)
	}
}

func testRecordsCreateGetPut(t *testing.T, s store.Store) {
	app := App(t)
	mustNil(t, s.Create(ctx(t), app, "k", []byte("v1"), longTTL), "create")
	mustIs(t, s.Create(ctx(t), app, "k", []byte("v2"), longTTL), store.ErrExists, "second create")
	v, err := s.Get(ctx(t), app, "k")
	mustNil(t, err, "get")
	if string(v) != "v1" {
		t.Fatalf("get after refused create = %q, want v1 (a refused create must change nothing)", v)
	}
	mustNil(t, s.Put(ctx(t), app, "k", []byte("v3"), longTTL), "put")
	v, err = s.Get(ctx(t), app, "k")
	mustNil(t, err, "get")
	if string(v) != "v3" {
		t.Fatalf("get after put = %q, want v3", v)
	}
	// Binary values round-trip unchanged.
	bin := []byte{0, 1, 2, 0xff, '\n', 0}
	mustNil(t, s.Put(ctx(t), app, "bin", bin, 0), "put binary, no expiry")
	v, err = s.Get(ctx(t), app, "bin")
	mustNil(t, err, "get binary")
	if string(v) != string(bin) {
		t.Fatalf("binary value = %x, want %x", v, bin)
	}
}

func testRecordsTake(t *testing.T, s store.Store) {
	app := App(t)
	mustNil(t, s.Create(ctx(t), app, "state", []byte("once"), longTTL), "create")
	v, err := s.Take(ctx(t), app, "state")
	mustNil(t, err, "take")
	if string(v) != "once" {
		t.Fatalf("take = %q", v)
	}
	_, err = s.Take(ctx(t), app, "state")
	mustIs(t, err, store.ErrNotFound, "second take (replay)")
	_, err = s.Get(ctx(t), app, "state")
	mustIs(t, err, store.ErrNotFound, "get after take")
	// The key is free again: taking does not leave a tombstone.
	mustNil(t, s.Create(ctx(t), app, "state", []byte("again"), longTTL), "create after take")
}

func testRecordsDelete(t *testing.T, s store.Store) {
	app := App(t)
	for _, k := range []string{"a", "b", "c"} {
		mustNil(t, s.Put(ctx(t), app, k, []byte(k), longTTL), "put")
	}
	mustNil(t, s.Delete(ctx(t), app, "a", "b", "absent"), "delete")
	for _, k := range []string{"a", "b"} {
		_, err := s.Get(ctx(t), app, k)
		mustIs(t, err, store.ErrNotFound, "get deleted "+k)
	}
	_, err := s.Get(ctx(t), app, "c")
	mustNil(t, err, "get kept c")
	mustNil(t, s.Delete(ctx(t), app), "delete nothing")
}

func testRecordsExpire(t *testing.T, s store.Store) {
	app := App(t)
	mustNil(t, s.Create(ctx(t), app, "short", []byte("x"), shortTTL), "create short")
	mustNil(t, s.Put(ctx(t), app, "put-short", []byte("x"), shortTTL), "put short")
	mustNil(t, s.Put(ctx(t), app, "forever", []byte("x"), 0), "put forever")
	if _, err := s.Get(ctx(t), app, "short"); err != nil {
		t.Fatalf("record gone before its ttl: %v", err)
	}
	time.Sleep(waitOut)
	_, err := s.Get(ctx(t), app, "short")
	mustIs(t, err, store.ErrNotFound, "get expired")
	_, err = s.Take(ctx(t), app, "put-short")
	mustIs(t, err, store.ErrNotFound, "take expired")
	_, err = s.Get(ctx(t), app, "forever")
	mustNil(t, err, "ttl 0 never expires")
	mustNil(t, s.Create(ctx(t), app, "short", []byte("y"), longTTL), "create over an expired record")
}

func testRecordsScoped(t *testing.T, s store.Store) {
	a, b := App(t), App(t)
	mustNil(t, s.Create(ctx(t), a, "k", []byte("a"), longTTL), "create in a")
	mustNil(t, s.Create(ctx(t), b, "k", []byte("b"), longTTL), "create same key in b")
	_, err := s.Take(ctx(t), b, "k")
	mustNil(t, err, "take in b")
	v, err := s.Get(ctx(t), a, "k")
	mustNil(t, err, "get in a")
	if string(v) != "a" {
		t.Fatalf("a's record = %q after b's take", v)
	}
}

func sorted(ss []string) []string {
	ss = slices.Clone(ss)
	sort.Strings(ss)
	return ss
}

func testSets(t *testing.T, s store.Store) {
	app := App(t)
	m, err := s.SetMembers(ctx(t), app, "family")
	mustNil(t, err, "members of absent set")
	if len(m) != 0 {
		t.Fatalf("absent set has members %v", m)
	}
	mustNil(t, s.SetAdd(ctx(t), app, "family", longTTL, "a", "b"), "add")
	mustNil(t, s.SetAdd(ctx(t), app, "family", longTTL, "b", "c"), "add again")
	m, err = s.SetMembers(ctx(t), app, "family")
	mustNil(t, err, "members")
	if got := sorted(m); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("members = %v", got)
	}
	mustNil(t, s.SetRemove(ctx(t), app, "family", "a", "zzz"), "remove")
	m, _ = s.SetMembers(ctx(t), app, "family")
	if got := sorted(m); !slices.Equal(got, []string{"b", "c"}) {
		t.Fatalf("members after remove = %v", got)
	}
	other := App(t)
	m, _ = s.SetMembers(ctx(t), other, "family")
	if len(m) != 0 {
		t.Fatalf("set visible from another application: %v", m)
	}
	// Sets and records are separate spaces.
	if _, err := s.Get(ctx(t), app, "family"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("set readable as a record: %v", err)
	}
}

func testSetsExpire(t *testing.T, s store.Store) {
	app := App(t)
	mustNil(t, s.SetAdd(ctx(t), app, "short", shortTTL, "x"), "add short")
	mustNil(t, s.SetAdd(ctx(t), app, "long", longTTL, "x"), "add long")
	// A shorter ttl later must not shorten the set's life.
	mustNil(t, s.SetAdd(ctx(t), app, "long", shortTTL, "y"), "add to long with short ttl")
	mustNil(t, s.SetAdd(ctx(t), app, "forever", 0, "x"), "add forever")
	mustNil(t, s.SetAdd(ctx(t), app, "forever", shortTTL, "y"), "add to forever with short ttl")
	time.Sleep(waitOut)
	if m, _ := s.SetMembers(ctx(t), app, "short"); len(m) != 0 {
		t.Fatalf("expired set has members %v", m)
	}
	if m, _ := s.SetMembers(ctx(t), app, "long"); len(m) != 2 {
		t.Fatalf("long set shortened by a later short ttl: %v", m)
	}
	if m, _ := s.SetMembers(ctx(t), app, "forever"); len(m) != 2 {
		t.Fatalf("set without expiry expired: %v", m)
	}
}

func newSession(app, user string) *store.Session {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return &store.Session{
		ID: "sess-" + rand.Text(), App: app, UserID: user, IDP: "dev",
		AuthTime: now, CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(longTTL),
		IP: "192.0.2.1", UserAgent: "test", Data: map[string]string{"k": "v"},
	}
}

func sameSession(t *testing.T, got, want *store.Session) {
	t.Helper()
	if got.ID != want.ID || got.App != want.App || got.UserID != want.UserID || got.IDP != want.IDP ||
		!got.AuthTime.Equal(want.AuthTime) || !got.CreatedAt.Equal(want.CreatedAt) ||
		!got.LastSeen.Equal(want.LastSeen) || !got.ExpiresAt.Equal(want.ExpiresAt) ||
		got.IP != want.IP || got.UserAgent != want.UserAgent || got.Data["k"] != want.Data["k"] {
		t.Fatalf("session round trip:\n got %+v\nwant %+v", got, want)
	}
}

func testSessions(t *testing.T, s store.Store) {
	app := App(t)
	sess := newSession(app, "u1")
	mustNil(t, s.CreateSession(ctx(t), sess, longTTL), "create session")
	mustIs(t, s.CreateSession(ctx(t), sess, longTTL), store.ErrExists, "create same ID")
	got, err := s.GetSession(ctx(t), app, sess.ID)
	mustNil(t, err, "get session")
	sameSession(t, got, sess)

	got.Data["k"] = "mutated"
	again, _ := s.GetSession(ctx(t), app, sess.ID)
	if again.Data["k"] != "v" {
		t.Fatal("mutating a returned session changed the stored one")
	}

	_, err = s.GetSession(ctx(t), App(t), sess.ID)
	mustIs(t, err, store.ErrNotFound, "session from another application")

	touched := *sess
	touched.LastSeen = sess.LastSeen.Add(time.Minute)
	touched.UserAgent = "not written by touch"
	mustNil(t, s.TouchSession(ctx(t), &touched, longTTL), "touch")
	got, _ = s.GetSession(ctx(t), app, sess.ID)
	if !got.LastSeen.Equal(touched.LastSeen) || got.UserAgent != "test" {
		t.Fatalf("after touch: last_seen %v (want %v), user agent %q", got.LastSeen, touched.LastSeen, got.UserAgent)
	}

	// Two uses of a session touch it concurrently; the one that read the
	// clock first may write last. Its LastSeen is older and must not win:
	// the idle deadline is LastSeen's, and a proxy trusts a cached
	// session until a Deadline it computed from the newer one.
	late := touched
	late.LastSeen = touched.LastSeen.Add(-30 * time.Second)
	mustNil(t, s.TouchSession(ctx(t), &late, longTTL), "late touch")
	got, _ = s.GetSession(ctx(t), app, sess.ID)
	if !got.LastSeen.Equal(touched.LastSeen) {
		t.Fatalf("a late touch moved last_seen back: %v, want %v", got.LastSeen, touched.LastSeen)
	}

	mustNil(t, s.DeleteSession(ctx(t), app, sess.ID), "delete")
	_, err = s.GetSession(ctx(t), app, sess.ID)
	mustIs(t, err, store.ErrNotFound, "get deleted session")
	mustNil(t, s.DeleteSession(ctx(t), app, sess.ID), "delete twice")
	mustIs(t, s.TouchSession(ctx(t), sess, longTTL), store.ErrNotFound, "touch deleted session")
}

// testSessionAndRecord: GetSessionAndRecord answers what GetSession and
// Get would, absence being nil for either, and within one application.
func testSessionAndRecord(t *testing.T, s store.Store) {
	app := App(t)
	sess := newSession(app, "u1")
	mustNil(t, s.CreateSession(ctx(t), sess, longTTL), "create session")
	mustNil(t, s.Put(ctx(t), app, "proxy-session:x", []byte("rec"), longTTL), "put record")
	got, v, err := s.GetSessionAndRecord(ctx(t), app, sess.ID, "proxy-session:x")
	mustNil(t, err, "both")
	if got == nil || string(v) != "rec" {
		t.Fatalf("both present: session %v, record %q", got, v)
	}
	sameSession(t, got, sess)
	got, v, err = s.GetSessionAndRecord(ctx(t), app, "absent", "proxy-session:x")
	if err != nil || got != nil || string(v) != "rec" {
		t.Fatalf("no session: %v %q %v", got, v, err)
	}
	got, v, err = s.GetSessionAndRecord(ctx(t), app, sess.ID, "proxy-session:absent")
	if err != nil || got == nil || v != nil {
		t.Fatalf("no record: %v %q %v", got, v, err)
	}
	got, v, err = s.GetSessionAndRecord(ctx(t), App(t), sess.ID, "proxy-session:x")
	if err != nil || got != nil || v != nil {
		t.Fatalf("another application read %v %q %v", got, v, err)
	}
	mustNil(t, s.DeleteSession(ctx(t), app, sess.ID), "delete")
	if got, _, err = s.GetSessionAndRecord(ctx(t), app, sess.ID, "proxy-session:x"); err != nil || got != nil {
		t.Fatalf("deleted session: %v %v", got, err)
	}
}

func testSessionsExpire(t *testing.T, s store.Store) {
	app := App(t)
	short := newSession(app, "u1")
	kept := newSession(app, "u1")
	mustNil(t, s.CreateSession(ctx(t), short, shortTTL), "create short")
	mustNil(t, s.CreateSession(ctx(t), kept, shortTTL), "create kept")
	// Touching extends the session's life; the other one expires.
	kept.LastSeen = kept.LastSeen.Add(time.Second)
	mustNil(t, s.TouchSession(ctx(t), kept, longTTL), "touch kept")
	time.Sleep(waitOut)
	_, err := s.GetSession(ctx(t), app, short.ID)
	mustIs(t, err, store.ErrNotFound, "get expired session")
	mustIs(t, s.TouchSession(ctx(t), short, longTTL), store.ErrNotFound, "touch expired session")
	_, err = s.GetSession(ctx(t), app, kept.ID)
	mustNil(t, err, "touched session")
	list, err := s.UserSessions(ctx(t), app, "u1")
	mustNil(t, err, "list")
	if len(list) != 1 || list[0].ID != kept.ID {
		t.Fatalf("user sessions after expiry = %d, want only the touched one", len(list))
	}
	// The expired one can never come back, even by ID.
	mustNil(t, s.CreateSession(ctx(t), short, longTTL), "re-create expired ID")
}

func testUserSessions(t *testing.T, s store.Store) {
	app := App(t)
	var mine []string
	for range 3 {
		sess := newSession(app, "alice")
		mine = append(mine, sess.ID)
		mustNil(t, s.CreateSession(ctx(t), sess, longTTL), "create")
	}
	bobs := newSession(app, "bob")
	mustNil(t, s.CreateSession(ctx(t), bobs, longTTL), "create bob's")
	list, err := s.UserSessions(ctx(t), app, "alice")
	mustNil(t, err, "list")
	var ids []string
	for _, l := range list {
		ids = append(ids, l.ID)
	}
	if !slices.Equal(sorted(ids), sorted(mine)) {
		t.Fatalf("alice's sessions = %v, want %v", ids, mine)
	}
	mustNil(t, s.DeleteSession(ctx(t), app, mine[0]), "delete one")
	list, _ = s.UserSessions(ctx(t), app, "alice")
	if len(list) != 2 {
		t.Fatalf("after deleting one: %d sessions", len(list))
	}
	for _, id := range mine[1:] {
		mustNil(t, s.DeleteSession(ctx(t), app, id), "delete the others")
	}
	for _, id := range mine {
		_, err := s.GetSession(ctx(t), app, id)
		mustIs(t, err, store.ErrNotFound, "alice's session after sign-out everywhere")
	}
	if list, _ := s.UserSessions(ctx(t), app, "alice"); len(list) != 0 {
		t.Fatalf("sessions listed after deleting all: %d", len(list))
	}
	_, err = s.GetSession(ctx(t), app, bobs.ID)
	mustNil(t, err, "bob's session survives alice's sign-out")
	if list, err := s.UserSessions(ctx(t), app, "nobody"); err != nil || len(list) != 0 {
		t.Fatalf("sessions of a user with none: %d, %v", len(list), err)
	}
}

func newUser(app, id, email string, verified bool) (*store.User, *store.Identity) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	u := &store.User{ID: id, App: app, Name: "User " + id, Email: email, EmailVerified: verified,
		Groups: []string{"dev", "ops"}, CreatedAt: now, LastLogin: now}
	ident := &store.Identity{App: app, IDP: "github", Subject: "gh-" + id, UserID: id,
		Email: email, EmailVerified: verified, Groups: []string{"acme:dev"}, LinkedAt: now, LastLogin: now}
	return u, ident
}

func testUsers(t *testing.T, s store.Store) {
	app := App(t)
	u, ident := newUser(app, "u1", "Alice@Example.com", true)
	mustNil(t, s.CreateUser(ctx(t), u, ident), "create user")
	got, err := s.GetUser(ctx(t), app, "u1")
	mustNil(t, err, "get user")
	if got.Name != u.Name || got.Email != u.Email || !got.EmailVerified || !slices.Equal(got.Groups, u.Groups) || !got.CreatedAt.Equal(u.CreatedAt) {
		t.Fatalf("user round trip: got %+v want %+v", got, u)
	}
	got.Groups[0] = "mutated"
	if again, _ := s.GetUser(ctx(t), app, "u1"); again.Groups[0] != "dev" {
		t.Fatal("mutating a returned user changed the stored one")
	}
	bu, bi, err := s.UserByIdentity(ctx(t), app, "github", "gh-u1")
	mustNil(t, err, "user by identity")
	if bu.ID != "u1" || bi.UserID != "u1" || bi.Subject != "gh-u1" || !slices.Equal(bi.Groups, []string{"acme:dev"}) {
		t.Fatalf("by identity: %+v %+v", bu, bi)
	}
	bi.Groups[0] = "mutated"
	if _, again, _ := s.UserByIdentity(ctx(t), app, "github", "gh-u1"); again.Groups[0] != "acme:dev" {
		t.Fatal("mutating a returned identity changed the stored one")
	}
	u.Name = "Alice Renamed"
	u.Groups = nil
	mustNil(t, s.UpdateUser(ctx(t), u), "update")
	got, _ = s.GetUser(ctx(t), app, "u1")
	if got.Name != "Alice Renamed" || len(got.Groups) != 0 {
		t.Fatalf("after update: %+v", got)
	}
	ghost, _ := newUser(app, "ghost", "", false)
	mustIs(t, s.UpdateUser(ctx(t), ghost), store.ErrNotFound, "update absent user")
	_, err = s.GetUser(ctx(t), app, "ghost")
	mustIs(t, err, store.ErrNotFound, "update must not create")

	ident.Email = "new@example.com"
	ident.LastLogin = ident.LastLogin.Add(time.Hour)
	ident.Groups = []string{"acme:ops", "acme:dev"}
	mustNil(t, s.UpdateIdentity(ctx(t), ident), "update identity")
	_, bi, _ = s.UserByIdentity(ctx(t), app, "github", "gh-u1")
	if bi.Email != "new@example.com" || !bi.LastLogin.Equal(ident.LastLogin) || !slices.Equal(bi.Groups, ident.Groups) {
		t.Fatalf("identity after update: %+v", bi)
	}
	ident.Groups = nil // the provider reports none now
	mustNil(t, s.UpdateIdentity(ctx(t), ident), "update identity without groups")
	if _, bi, _ = s.UserByIdentity(ctx(t), app, "github", "gh-u1"); len(bi.Groups) != 0 {
		t.Fatalf("groups after an update without groups: %v", bi.Groups)
	}
	moved := *ident
	moved.UserID = "someone-else"
	mustIs(t, s.UpdateIdentity(ctx(t), &moved), store.ErrNotFound, "update identity into another user")
	_, bi, _ = s.UserByIdentity(ctx(t), app, "github", "gh-u1")
	if bi.UserID != "u1" {
		t.Fatal("UpdateIdentity moved an identity to another user")
	}
	_, _, err = s.UserByIdentity(ctx(t), App(t), "github", "gh-u1")
	mustIs(t, err, store.ErrNotFound, "identity from another application")
}

func testIdentityUniqueness(t *testing.T, s store.Store) {
	app := App(t)
	u1, id1 := newUser(app, "u1", "a@example.com", true)
	mustNil(t, s.CreateUser(ctx(t), u1, id1), "create u1")
	u2, id2 := newUser(app, "u2", "b@example.com", true)
	id2.Subject = id1.Subject // the same GitHub account
	mustIs(t, s.CreateUser(ctx(t), u2, id2), store.ErrExists, "second user with the same identity")
	_, err := s.GetUser(ctx(t), app, "u2")
	mustIs(t, err, store.ErrNotFound, "refused user half-written")
	if users, _ := s.UsersByVerifiedEmail(ctx(t), app, "b@example.com"); len(users) != 0 {
		t.Fatal("refused user left in the email index")
	}
	u3, id3 := newUser(app, "u1", "c@example.com", true) // same user ID, new identity
	id3.Subject = "other"
	mustIs(t, s.CreateUser(ctx(t), u3, id3), store.ErrExists, "user ID taken")
	_, _, err = s.UserByIdentity(ctx(t), app, "github", "other")
	mustIs(t, err, store.ErrNotFound, "identity of a refused user half-written")

	// The same subject at another identity provider, or in another
	// application, is another identity.
	u4, id4 := newUser(app, "u4", "", false)
	id4.Subject, id4.IDP = id1.Subject, "gitlab"
	mustNil(t, s.CreateUser(ctx(t), u4, id4), "same subject, other idp")
	otherApp := App(t)
	u5, id5 := newUser(otherApp, "u1", "a@example.com", true)
	mustNil(t, s.CreateUser(ctx(t), u5, id5), "same user and identity in another application")
}

func testLinkIdentity(t *testing.T, s store.Store) {
	app := App(t)
	u, first := newUser(app, "u1", "a@example.com", true)
	mustNil(t, s.CreateUser(ctx(t), u, first), "create")
	second := &store.Identity{App: app, IDP: "google", Subject: "g-1", UserID: "u1", Groups: []string{"admins"}, LinkedAt: time.Now()}
	mustNil(t, s.LinkIdentity(ctx(t), second), "link")
	mustIs(t, s.LinkIdentity(ctx(t), second), store.ErrExists, "link twice")
	stolen := *second
	stolen.UserID = "u2"
	mustIs(t, s.LinkIdentity(ctx(t), &stolen), store.ErrExists, "link another user's identity")
	orphan := &store.Identity{App: app, IDP: "google", Subject: "g-2", UserID: "absent"}
	mustIs(t, s.LinkIdentity(ctx(t), orphan), store.ErrNotFound, "link to absent user")
	_, _, err := s.UserByIdentity(ctx(t), app, "google", "g-2")
	mustIs(t, err, store.ErrNotFound, "refused link half-written")

	ids, err := s.Identities(ctx(t), app, "u1")
	mustNil(t, err, "identities")
	var names []string
	for _, i := range ids {
		names = append(names, i.IDP+"/"+i.Subject+"/"+strings.Join(i.Groups, ","))
	}
	// Each identity keeps its own provider's groups.
	if got := sorted(names); !slices.Equal(got, []string{"github/gh-u1/acme:dev", "google/g-1/admins"}) {
		t.Fatalf("identities = %v", got)
	}
	bu, _, err := s.UserByIdentity(ctx(t), app, "google", "g-1")
	mustNil(t, err, "user by linked identity")
	if bu.ID != "u1" {
		t.Fatalf("linked identity resolves to %q", bu.ID)
	}
}

func userIDs(us []*store.User) []string {
	var out []string
	for _, u := range us {
		out = append(out, u.ID)
	}
	return sorted(out)
}

func testEmailIndex(t *testing.T, s store.Store) {
	app := App(t)
	u1, i1 := newUser(app, "u1", "Shared@Example.com", true)
	u2, i2 := newUser(app, "u2", "shared@example.com", false)
	mustNil(t, s.CreateUser(ctx(t), u1, i1), "create verified")
	mustNil(t, s.CreateUser(ctx(t), u2, i2), "create unverified")
	got, err := s.UsersByVerifiedEmail(ctx(t), app, "SHARED@example.COM")
	mustNil(t, err, "by email")
	if ids := userIDs(got); !slices.Equal(ids, []string{"u1"}) {
		t.Fatalf("verified email lookup = %v, want only u1 (unverified emails are not indexed)", ids)
	}
	// Verifying u2 indexes it; changing u1's email un-indexes the old one.
	u2.EmailVerified = true
	mustNil(t, s.UpdateUser(ctx(t), u2), "verify u2")
	u1.Email = "moved@example.com"
	mustNil(t, s.UpdateUser(ctx(t), u1), "move u1")
	got, _ = s.UsersByVerifiedEmail(ctx(t), app, "shared@example.com")
	if ids := userIDs(got); !slices.Equal(ids, []string{"u2"}) {
		t.Fatalf("after updates = %v, want [u2]", ids)
	}
	got, _ = s.UsersByVerifiedEmail(ctx(t), app, "moved@example.com")
	if ids := userIDs(got); !slices.Equal(ids, []string{"u1"}) {
		t.Fatalf("new email = %v, want [u1]", ids)
	}
	u1.EmailVerified = false
	mustNil(t, s.UpdateUser(ctx(t), u1), "unverify u1")
	if got, _ := s.UsersByVerifiedEmail(ctx(t), app, "moved@example.com"); len(got) != 0 {
		t.Fatalf("unverified email still indexed: %v", userIDs(got))
	}
	if got, _ := s.UsersByVerifiedEmail(ctx(t), App(t), "shared@example.com"); len(got) != 0 {
		t.Fatal("email index crosses applications")
	}
}

// testEmailIndexUnicode: addresses whose case differs beyond ASCII (the
// index lower-cases as Go does, and a backend's own lower-casing, such
// as Lua's, does not), and hostile characters in them: the entry follows
// each update, never left under an address the user no longer has.
func testEmailIndexUnicode(t *testing.T, s store.Store) {
	app := App(t)
	u, id := newUser(app, "u1", "ÜNÏ{x}:*@Example.com", true)
	id.Subject = "{gh}:*?[u1]"
	mustNil(t, s.CreateUser(ctx(t), u, id), "create")
	lookup := func(email string) []string {
		t.Helper()
		got, err := s.UsersByVerifiedEmail(ctx(t), app, email)
		mustNil(t, err, "by email")
		return userIDs(got)
	}
	if got := lookup("ünï{x}:*@example.com"); !slices.Equal(got, []string{"u1"}) {
		t.Fatalf("lookup in other case = %v, want [u1]", got)
	}
	u.Email = "ünï{x}:*@example.com" // the same mailbox, in other case
	mustNil(t, s.UpdateUser(ctx(t), u), "update to other case")
	if got := lookup("ÜNÏ{X}:*@EXAMPLE.COM"); !slices.Equal(got, []string{"u1"}) {
		t.Fatalf("after a change of case = %v, want [u1]", got)
	}
	u.Email = "Ærø@example.com"
	mustNil(t, s.UpdateUser(ctx(t), u), "move")
	if got := lookup("ünï{x}:*@example.com"); len(got) != 0 {
		t.Fatalf("old address still names %v", got)
	}
	if got := lookup("ærø@EXAMPLE.com"); !slices.Equal(got, []string{"u1"}) {
		t.Fatalf("new address = %v, want [u1]", got)
	}
	in, err := s.SignInUser(ctx(t), app, id.IDP, id.Subject)
	mustNil(t, err, "sign-in read of a subject with braces")
	if in.User.ID != "u1" || in.User.Email != "Ærø@example.com" {
		t.Fatalf("sign-in read: %+v", in.User)
	}
}

// testSignInUser: SignInUser reads what UserByIdentity and Identities
// read, and counts at least the user's live sessions (or says it did
// not); nothing of another identity, user or application.
func testSignInUser(t *testing.T, s store.Store) {
	app := App(t)
	u, first := newUser(app, "u1", "a@example.com", true)
	mustNil(t, s.CreateUser(ctx(t), u, first), "create")
	other, otherID := newUser(app, "u2", "b@example.com", true)
	mustNil(t, s.CreateUser(ctx(t), other, otherID), "create another user")
	in, err := s.SignInUser(ctx(t), app, first.IDP, first.Subject)
	mustNil(t, err, "sign-in read")
	if in.User.ID != "u1" || in.Identity.Subject != first.Subject || in.Identity.UserID != "u1" || len(in.Identities) != 1 || in.Identities[0].Subject != first.Subject {
		t.Fatalf("sign-in read of a user with one identity: %+v %+v %v", in.User, in.Identity, in.Identities)
	}
	if in.Sessions != 0 && in.Sessions != -1 {
		t.Fatalf("sessions of a user without any: %d", in.Sessions)
	}
	second := &store.Identity{App: app, IDP: "google", Subject: "g-1", UserID: "u1", Groups: []string{"admins"}, LinkedAt: time.Now()}
	mustNil(t, s.LinkIdentity(ctx(t), second), "link")
	for range 3 {
		mustNil(t, s.CreateSession(ctx(t), newSession(app, "u1"), time.Hour), "session")
	}
	mustNil(t, s.CreateSession(ctx(t), newSession(app, "u2"), time.Hour), "another user's session")
	in, err = s.SignInUser(ctx(t), app, "google", "g-1")
	mustNil(t, err, "sign-in read by the second identity")
	var names []string
	for _, x := range in.Identities {
		names = append(names, x.IDP+"/"+x.Subject+"/"+strings.Join(x.Groups, ","))
	}
	if in.User.ID != "u1" || in.Identity.Subject != "g-1" || !slices.Equal(sorted(names), []string{"github/gh-u1/acme:dev", "google/g-1/admins"}) {
		t.Fatalf("sign-in read of a user with two identities: %+v %+v %v", in.User, in.Identity, names)
	}
	if in.Sessions != -1 && in.Sessions < 3 {
		t.Fatalf("sessions: %d, want at least 3 (or -1, uncounted)", in.Sessions)
	}
	in.Identities[0].Groups = append(in.Identities[0].Groups[:0], "mutated")
	in.Identity.Groups = []string{"mutated"}
	again, _ := s.Identities(ctx(t), app, "u1")
	for _, x := range again {
		if slices.Contains(x.Groups, "mutated") {
			t.Fatal("mutating a read identity changed the stored one")
		}
	}
	_, err = s.SignInUser(ctx(t), app, "google", "g-absent")
	mustIs(t, err, store.ErrNotFound, "absent identity")
	_, err = s.SignInUser(ctx(t), App(t), "google", "g-1")
	mustIs(t, err, store.ErrNotFound, "identity of another application")
}

func testNotFound(t *testing.T, s store.Store) {
	app := App(t)
	_, err := s.Get(ctx(t), app, "absent")
	mustIs(t, err, store.ErrNotFound, "Get")
	_, err = s.Take(ctx(t), app, "absent")
	mustIs(t, err, store.ErrNotFound, "Take")
	_, err = s.GetSession(ctx(t), app, "absent")
	mustIs(t, err, store.ErrNotFound, "GetSession")
	_, err = s.GetUser(ctx(t), app, "absent")
	mustIs(t, err, store.ErrNotFound, "GetUser")
	_, _, err = s.UserByIdentity(ctx(t), app, "github", "absent")
	mustIs(t, err, store.ErrNotFound, "UserByIdentity")
	mustIs(t, s.UpdateIdentity(ctx(t), &store.Identity{App: app, IDP: "x", Subject: "y", UserID: "z"}), store.ErrNotFound, "UpdateIdentity")
	list, err := s.UserSessions(ctx(t), app, "absent")
	mustNil(t, err, "UserSessions of nobody")
	ids, err := s.Identities(ctx(t), app, "absent")
	mustNil(t, err, "Identities of nobody")
	users, err := s.UsersByVerifiedEmail(ctx(t), app, "absent@example.com")
	mustNil(t, err, "UsersByVerifiedEmail of nobody")
	if len(list)+len(ids)+len(users) != 0 {
		t.Fatal("lists of nothing are not empty")
	}
	mustNil(t, s.Ping(ctx(t)), "Ping")
}

// race runs fn from n goroutines released at once and counts successes.
func race(n int, fn func() error) (wins int, errs []error) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			err := fn()
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				wins++
			} else {
				errs = append(errs, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	return wins, errs
}

func testConcurrentTake(t *testing.T, s store.Store) {
	app := App(t)
	for round := range takeRound {
		key := fmt.Sprintf("state-%d", round)
		mustNil(t, s.Create(ctx(t), app, key, []byte("v"), longTTL), "create")
		wins, errs := race(takers, func() error {
			_, err := s.Take(ctx(t), app, key)
			return err
		})
		if wins != 1 {
			t.Fatalf("round %d: %d of %d concurrent takers won, want exactly 1", round, wins, takers)
		}
		for _, err := range errs {
			mustIs(t, err, store.ErrNotFound, "losing taker")
		}
	}
}

func testConcurrentCreate(t *testing.T, s store.Store) {
	app := App(t)
	for round := range takeRound {
		key := fmt.Sprintf("used-%d", round)
		wins, errs := race(takers, func() error {
			return s.Create(ctx(t), app, key, []byte("v"), longTTL)
		})
		if wins != 1 {
			t.Fatalf("round %d: %d concurrent creates succeeded, want exactly 1", round, wins)
		}
		for _, err := range errs {
			mustIs(t, err, store.ErrExists, "losing create")
		}
	}
}

func testConcurrentCreateUser(t *testing.T, s store.Store) {
	app := App(t)
	var n int
	var mu sync.Mutex
	wins, errs := race(takers, func() error {
		mu.Lock()
		n++
		id := fmt.Sprintf("u%d", n)
		mu.Unlock()
		u, ident := newUser(app, id, "", false)
		ident.Subject = "the-same-account"
		return s.CreateUser(ctx(t), u, ident)
	})
	if wins != 1 {
		t.Fatalf("%d users created for one identity, want exactly 1", wins)
	}
	for _, err := range errs {
		mustIs(t, err, store.ErrExists, "losing CreateUser")
	}
}
