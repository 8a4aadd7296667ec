package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/memory"
)

// TestAppHandleIsolates: two handles on one store see only their own
// application's records, and a handle refuses a session, user or
// identity that names another application, writing nothing.
func TestAppHandleIsolates(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	defer st.Close()
	a, b := store.ForApp(st, "a"), store.ForApp(st, "b")
	if a.Name() != "a" || a.Unbound() != store.Store(st) {
		t.Fatalf("handle %q", a.Name())
	}

	if err := a.Create(ctx, "k", []byte("va"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("b reads a's record: %v", err)
	}
	if err := b.Create(ctx, "k", []byte("vb"), time.Minute); err != nil {
		t.Fatalf("b cannot create its own k: %v", err)
	}
	if v, err := st.Get(ctx, "a", "k"); err != nil || string(v) != "va" {
		t.Fatalf("a's record through the store: %q %v", v, err)
	}
	if v, err := b.Take(ctx, "k"); err != nil || string(v) != "vb" {
		t.Fatalf("b takes %q %v", v, err)
	}
	if v, err := a.Get(ctx, "k"); err != nil || string(v) != "va" {
		t.Fatalf("b's take reached a's record: %q %v", v, err)
	}

	// A user with an empty App is a's; one naming b is refused.
	u := &store.User{ID: "u1"}
	id := &store.Identity{IDP: "dev", Subject: "s1", UserID: "u1"}
	if err := a.CreateUser(ctx, u, id); err != nil {
		t.Fatal(err)
	}
	if u.App != "a" || id.App != "a" {
		t.Fatalf("App not filled: user %q identity %q", u.App, id.App)
	}
	if _, _, err := b.UserByIdentity(ctx, "dev", "s1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("b finds a's identity: %v", err)
	}
	other := &store.User{ID: "u2", App: "b"}
	if err := a.CreateUser(ctx, other, &store.Identity{IDP: "dev", Subject: "s2", UserID: "u2"}); !errors.Is(err, store.ErrOtherApp) {
		t.Fatalf("a created b's user: %v", err)
	}
	if _, err := st.GetUser(ctx, "b", "u2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the refused user was written: %v", err)
	}
	if err := a.UpdateUser(ctx, &store.User{ID: "u1", App: "b"}); !errors.Is(err, store.ErrOtherApp) {
		t.Fatalf("update with another App: %v", err)
	}
	if err := a.LinkIdentity(ctx, &store.Identity{App: "b", IDP: "x", Subject: "s", UserID: "u1"}); !errors.Is(err, store.ErrOtherApp) {
		t.Fatalf("link with another App: %v", err)
	}

	// Sessions alike.
	s := &store.Session{ID: "s1", UserID: "u1", ExpiresAt: time.Now().Add(time.Hour)}
	if err := a.CreateSession(ctx, s, time.Hour); err != nil || s.App != "a" {
		t.Fatalf("create session: %v, App %q", err, s.App)
	}
	if _, err := b.GetSession(ctx, "s1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("b reads a's session: %v", err)
	}
	if err := b.TouchSession(ctx, s, time.Hour); !errors.Is(err, store.ErrOtherApp) {
		t.Fatalf("b touches a's session: %v", err)
	}
	if got, err := a.UserSessions(ctx, "u1"); err != nil || len(got) != 1 {
		t.Fatalf("a's user sessions: %d %v", len(got), err)
	}
	if err := b.DeleteSession(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.GetSession(ctx, "s1"); err != nil {
		t.Fatalf("b's delete ended a's session: %v", err)
	}
}
