package storetest

import (
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/aero2/aero2/store"
)

// AdminStore is a store that operators can administer.
type AdminStore interface {
	store.Store
	store.Admin
}

// RunAdmin runs the conformance tests of store.Admin against stores from
// newStore. Every backend that implements Admin runs them next to Run.
func RunAdmin(t *testing.T, newStore func(t *testing.T) AdminStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s AdminStore)
	}{
		{"ListUsers", testListUsers},
		{"DisableIsKeptByUpdateUser", testDisable},
		{"DisableIsKeptByConcurrentUpdates", testDisableConcurrent},
		{"DeleteUser", testDeleteUser},
		{"ListSessions", testListSessions},
		{"SetKeys", testSetKeys},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
}

func testListUsers(t *testing.T, s AdminStore) {
	app, other := App(t), App(t)
	got, err := s.ListUsers(ctx(t), app)
	mustNil(t, err, "list users of an empty application")
	if len(got) != 0 {
		t.Fatalf("empty application lists %d users", len(got))
	}
	for _, id := range []string{"u1", "u2", "u:3*"} { // SCAN patterns are quoted
		u, ident := newUser(app, id, id+"@example.com", true)
		mustNil(t, s.CreateUser(ctx(t), u, ident), "create "+id)
	}
	u, ident := newUser(other, "u9", "", false)
	mustNil(t, s.CreateUser(ctx(t), u, ident), "create in another application")
	got, err = s.ListUsers(ctx(t), app)
	mustNil(t, err, "list users")
	if ids := userIDs(got); !slices.Equal(ids, []string{"u1", "u2", "u:3*"}) {
		t.Fatalf("listed %v", ids)
	}
	for _, u := range got {
		if u.Name != "User "+u.ID || !slices.Equal(u.Groups, []string{"dev", "ops"}) {
			t.Fatalf("listed user without its profile: %+v", u)
		}
	}
}

func testDisable(t *testing.T, s AdminStore) {
	app := App(t)
	u, ident := newUser(app, "u1", "a@example.com", true)
	mustNil(t, s.CreateUser(ctx(t), u, ident), "create")
	mustNil(t, s.SetUserDisabled(ctx(t), app, "u1", true), "disable")
	// The token endpoint reads the flag with the refresh token.
	if with, _, err := s.GetManyAndUser(ctx(t), app, "u1", "x"); err != nil || with == nil || !with.Disabled {
		t.Fatalf("GetManyAndUser of a disabled user: %+v %v", with, err)
	}
	got, _ := s.GetUser(ctx(t), app, "u1")
	if !got.Disabled || got.Name != u.Name {
		t.Fatalf("after disable: %+v", got)
	}
	// A sign-in that read the user before the disable writes back its
	// profile: the user stays disabled.
	u.Name, u.Disabled = "Renamed", false
	mustNil(t, s.UpdateUser(ctx(t), u), "update profile")
	got, _ = s.GetUser(ctx(t), app, "u1")
	if !got.Disabled || got.Name != "Renamed" {
		t.Fatalf("UpdateUser changed the disabled flag or missed the profile: %+v", got)
	}
	if bu, _, _ := s.UserByIdentity(ctx(t), app, "github", "gh-u1"); !bu.Disabled {
		t.Fatal("UserByIdentity does not see the flag")
	}
	if in, err := s.SignInUser(ctx(t), app, "github", "gh-u1"); err != nil || !in.User.Disabled {
		t.Fatalf("SignInUser does not see the flag: %v", err)
	}
	mustNil(t, s.SetUserDisabled(ctx(t), app, "u1", false), "enable")
	got, _ = s.GetUser(ctx(t), app, "u1")
	if got.Disabled {
		t.Fatal("still disabled after enable")
	}
	u.Disabled = true
	mustNil(t, s.UpdateUser(ctx(t), u), "update claiming disabled")
	if got, _ = s.GetUser(ctx(t), app, "u1"); got.Disabled {
		t.Fatal("UpdateUser disabled the user")
	}
	mustIs(t, s.SetUserDisabled(ctx(t), app, "ghost", true), store.ErrNotFound, "disable absent user")
	_, err := s.GetUser(ctx(t), app, "ghost")
	mustIs(t, err, store.ErrNotFound, "disable must not create")
	mustIs(t, s.SetUserDisabled(ctx(t), App(t), "u1", true), store.ErrNotFound, "disable in another application")
}

func testDeleteUser(t *testing.T, s AdminStore) {
	app := App(t)
	u, ident := newUser(app, "u1", "a@example.com", true)
	mustNil(t, s.CreateUser(ctx(t), u, ident), "create")
	second := *ident
	second.IDP, second.Subject = "google", "g-u1"
	mustNil(t, s.LinkIdentity(ctx(t), &second), "link")
	keep, keepID := newUser(app, "u2", "b@example.com", true)
	mustNil(t, s.CreateUser(ctx(t), keep, keepID), "create another")

	mustIs(t, s.DeleteUser(ctx(t), App(t), "u1"), store.ErrNotFound, "delete from another application")
	mustNil(t, s.DeleteUser(ctx(t), app, "u1"), "delete")
	_, err := s.GetUser(ctx(t), app, "u1")
	mustIs(t, err, store.ErrNotFound, "deleted user")
	for _, sub := range [][2]string{{"github", "gh-u1"}, {"google", "g-u1"}} {
		_, _, err := s.UserByIdentity(ctx(t), app, sub[0], sub[1])
		mustIs(t, err, store.ErrNotFound, "identity of a deleted user")
	}
	if byEmail, _ := s.UsersByVerifiedEmail(ctx(t), app, "a@example.com"); len(byEmail) != 0 {
		t.Fatalf("email index names a deleted user: %v", userIDs(byEmail))
	}
	if ids, _ := s.Identities(ctx(t), app, "u1"); len(ids) != 0 {
		t.Fatalf("a deleted user has %d identities", len(ids))
	}
	mustIs(t, s.DeleteUser(ctx(t), app, "u1"), store.ErrNotFound, "delete twice")
	if got, _ := s.GetUser(ctx(t), app, "u2"); got == nil {
		t.Fatal("delete removed another user")
	}
	// The identity is free again: the same account signs up anew.
	again, againID := newUser(app, "u3", "a@example.com", true)
	againID.Subject = "gh-u1"
	mustNil(t, s.CreateUser(ctx(t), again, againID), "the deleted user's identity signs up again")
}

func testListSessions(t *testing.T, s AdminStore) {
	app := App(t)
	a1, a2, b := newSession(app, "alice"), newSession(app, "alice"), newSession(app, "bob")
	short := newSession(app, "carol")
	for _, se := range []*store.Session{a1, a2, b} {
		mustNil(t, s.CreateSession(ctx(t), se, longTTL), "create session")
	}
	mustNil(t, s.CreateSession(ctx(t), short, shortTTL), "create short session")
	mustNil(t, s.CreateSession(ctx(t), newSession(App(t), "alice"), longTTL), "create in another application")
	time.Sleep(waitOut)
	got, err := s.ListSessions(ctx(t), app)
	mustNil(t, err, "list sessions")
	var ids []string
	for _, se := range got {
		ids = append(ids, se.ID)
		if se.ID == a1.ID {
			sameSession(t, se, a1)
		}
	}
	want := []string{a1.ID, a2.ID, b.ID}
	sort.Strings(want)
	if !slices.Equal(sorted(ids), want) {
		t.Fatalf("listed %v, want %v (the expired one and the other application's left out)", sorted(ids), want)
	}
	mustNil(t, s.DeleteSession(ctx(t), app, a2.ID), "delete session")
	if got, _ = s.ListSessions(ctx(t), app); len(got) != 2 {
		t.Fatalf("after a delete: %d sessions", len(got))
	}
}

func testSetKeys(t *testing.T, s AdminStore) {
	app := App(t)
	for _, k := range []string{"c:1:a", "c:1:b", "c:2:a", "d:1", "c*:x"} {
		mustNil(t, s.SetAdd(ctx(t), app, k, longTTL, "m"), "set add "+k)
	}
	mustNil(t, s.SetAdd(ctx(t), app, "c:short", shortTTL, "m"), "set add short")
	mustNil(t, s.SetAdd(ctx(t), App(t), "c:1:z", longTTL, "m"), "set add in another application")
	mustNil(t, s.Put(ctx(t), app, "c:record", []byte("v"), longTTL), "a record is not a set")
	time.Sleep(waitOut)
	got, err := s.SetKeys(ctx(t), app, "c:")
	mustNil(t, err, "set keys")
	if !slices.Equal(sorted(got), []string{"c:1:a", "c:1:b", "c:2:a"}) {
		t.Fatalf("set keys c: %v", sorted(got))
	}
	if got, _ = s.SetKeys(ctx(t), app, "c*"); !slices.Equal(got, []string{"c*:x"}) {
		t.Fatalf("a prefix with a glob character: %v", got)
	}
	mustNil(t, s.SetRemove(ctx(t), app, "c:1:a", "m"), "empty a set")
	if got, _ = s.SetKeys(ctx(t), app, "c:1:"); !slices.Equal(got, []string{"c:1:b"}) {
		t.Fatalf("after emptying a set: %v", got)
	}
}

// testDisableConcurrent: sign-ins of one user in parallel (16 writers of
// its profile) while an administrator disables it: every update
// succeeds, none retried into failure, and none undoes the disable.
func testDisableConcurrent(t *testing.T, s AdminStore) {
	app := App(t)
	u, ident := newUser(app, "u1", "a@example.com", true)
	mustNil(t, s.CreateUser(ctx(t), u, ident), "create")
	const writers, each = 16, 20
	errs := make(chan error, writers*each)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				nu := *u
				nu.Name = fmt.Sprintf("writer %d, update %d", w, i)
				errs <- s.UpdateUser(ctx(t), &nu)
			}
		})
	}
	mustNil(t, s.SetUserDisabled(ctx(t), app, "u1", true), "disable")
	wg.Wait()
	close(errs)
	for err := range errs {
		mustNil(t, err, "concurrent update")
	}
	if got, _ := s.GetUser(ctx(t), app, "u1"); !got.Disabled {
		t.Fatalf("a concurrent profile update undid the disable: %+v", got)
	}
}
