package session_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aero2/aero2/session"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/storetest"
)

// hookLog records the session IDs the end hook is told, and fails while
// fail is set.
type hookLog struct {
	mu   sync.Mutex
	ids  []string
	fail bool
}

func (h *hookLog) hook(_ context.Context, ids ...string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fail {
		return errors.New("revocation failed")
	}
	h.ids = append(h.ids, ids...)
	return nil
}

// take returns the IDs told since the last call, sorted.
func (h *hookLog) take() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.ids
	h.ids = nil
	slices.Sort(out)
	return out
}

func sorted(ids ...string) []string { slices.Sort(ids); return ids }

// startAs signs userID in on a fresh browser.
func startAs(t *testing.T, m *session.Manager, userID string) *store.Session {
	t.Helper()
	s, err := m.Start(httptest.NewRecorder(), httptest.NewRequest("GET", "https://auth.example.com/rp/callback/dev", nil), userID, "dev")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func gone(t *testing.T, be store.Store, app string, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if _, err := be.GetSession(t.Context(), app, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("session %s is still in the store (%v)", id, err)
		}
	}
}

func present(t *testing.T, be store.Store, app string, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if _, err := be.GetSession(t.Context(), app, id); err != nil {
			t.Errorf("session %s is gone (%v)", id, err)
		}
	}
}

// TestEveryEndingRunsTheHook: each way the manager ends sessions tells the
// end hook exactly the sessions it ended, and deletes exactly those.
func TestEveryEndingRunsTheHook(t *testing.T) {
	backends(t, func(t *testing.T, be store.Store) {
		c := &clock{now: time.Now()}
		app := storetest.App(t)
		m := newManager(be, app, c)
		h := &hookLog{}
		m.OnEnd(h.hook)
		ctx := t.Context()

		// A new sign-in in the same browser ends the old session.
		old, ck := signIn(t, m, nil)
		if got := h.take(); len(got) != 0 {
			t.Fatalf("a first sign-in ended %v", got)
		}
		cur, ck := signIn(t, m, withCookie(ck))
		if got := h.take(); !slices.Equal(got, []string{old.ID}) {
			t.Errorf("new sign-in told the hook %v, want the old session", got)
		}
		gone(t, be, app, old.ID)

		// End: this browser's session.
		if err := m.End(httptest.NewRecorder(), withCookie(ck)); err != nil {
			t.Fatal(err)
		}
		if got := h.take(); !slices.Equal(got, []string{cur.ID}) {
			t.Errorf("End told the hook %v", got)
		}
		gone(t, be, app, cur.ID)

		// EndOther: one other session of the same user, never another
		// user's, never the current one.
		a1, a2 := startAs(t, m, "user-1"), startAs(t, m, "user-1")
		eve := startAs(t, m, "eve")
		for _, id := range []string{eve.ID, a1.ID, "unknown"} {
			if err := m.EndOther(ctx, a1, id); !errors.Is(err, session.ErrNoSession) {
				t.Errorf("EndOther(%s) = %v, want ErrNoSession", id, err)
			}
		}
		if got := h.take(); len(got) != 0 {
			t.Errorf("refused EndOther told the hook %v", got)
		}
		present(t, be, app, eve.ID, a1.ID)
		if err := m.EndOther(ctx, a1, a2.ID); err != nil {
			t.Fatal(err)
		}
		if got := h.take(); !slices.Equal(got, []string{a2.ID}) {
			t.Errorf("EndOther told the hook %v", got)
		}
		gone(t, be, app, a2.ID)

		// EndOthers: all of the user's sessions but this one.
		a3, a4 := startAs(t, m, "user-1"), startAs(t, m, "user-1")
		if n, err := m.EndOthers(ctx, a1); err != nil || n != 2 {
			t.Fatalf("EndOthers = %d, %v", n, err)
		}
		if got := h.take(); !slices.Equal(got, sorted(a3.ID, a4.ID)) {
			t.Errorf("EndOthers told the hook %v", got)
		}
		gone(t, be, app, a3.ID, a4.ID)
		present(t, be, app, a1.ID, eve.ID)

		// EndAll: every session of the user, this one included.
		a5 := startAs(t, m, "user-1")
		if n, err := m.EndAll(ctx, "user-1"); err != nil || n != 2 {
			t.Fatalf("EndAll = %d, %v", n, err)
		}
		if got := h.take(); !slices.Equal(got, sorted(a1.ID, a5.ID)) {
			t.Errorf("EndAll told the hook %v", got)
		}
		gone(t, be, app, a1.ID, a5.ID)
		present(t, be, app, eve.ID)

		// EndSession: with proof of the owner, a live session ends; one
		// that timed out has its hook run all the same; another user's
		// is left alone.
		a6 := startAs(t, m, "user-1")
		if err := m.EndSession(ctx, "user-1", eve.ID); err != nil {
			t.Fatal(err)
		}
		if got := h.take(); len(got) != 0 {
			t.Errorf("EndSession of another user's session told the hook %v", got)
		}
		present(t, be, app, eve.ID)
		if err := m.EndSession(ctx, "user-1", a6.ID); err != nil {
			t.Fatal(err)
		}
		if got := h.take(); !slices.Equal(got, []string{a6.ID}) {
			t.Errorf("EndSession told the hook %v", got)
		}
		gone(t, be, app, a6.ID)
		if err := m.EndSession(ctx, "user-1", "timed-out-session"); err != nil {
			t.Fatal(err)
		}
		if got := h.take(); !slices.Equal(got, []string{"timed-out-session"}) {
			t.Errorf("EndSession of a session no longer stored told the hook %v", got)
		}
	})
}

// TestFailedHookEndsNothing: when what a session issued cannot be revoked,
// the session is not ended either (and keeps its cookie), so that the user
// can try again; ending it anyway would leave live tokens that nothing
// could name again.
func TestFailedHookEndsNothing(t *testing.T) {
	backends(t, func(t *testing.T, be store.Store) {
		c := &clock{now: time.Now()}
		app := storetest.App(t)
		m := newManager(be, app, c)
		h := &hookLog{fail: true}
		m.OnEnd(h.hook)
		ctx := t.Context()
		s, ck := signIn(t, m, nil)
		other := startAs(t, m, "user-1")

		w := httptest.NewRecorder()
		if err := m.End(w, withCookie(ck)); err == nil {
			t.Error("End succeeded although the hook failed")
		}
		if len(w.Result().Cookies()) != 0 {
			t.Error("a failed End cleared the cookie")
		}
		if _, err := m.Start(httptest.NewRecorder(), withCookie(ck), "user-1", "dev"); err == nil {
			t.Error("a new sign-in replaced a session whose tokens could not be revoked")
		}
		if err := m.EndOther(ctx, s, other.ID); err == nil {
			t.Error("EndOther succeeded although the hook failed")
		}
		if _, err := m.EndOthers(ctx, s); err == nil {
			t.Error("EndOthers succeeded although the hook failed")
		}
		if _, err := m.EndAll(ctx, "user-1"); err == nil {
			t.Error("EndAll succeeded although the hook failed")
		}
		if err := m.EndSession(ctx, "user-1", s.ID); err == nil {
			t.Error("EndSession succeeded although the hook failed")
		}
		present(t, be, app, s.ID, other.ID)
		if _, err := m.Current(withCookie(ck)); err != nil {
			t.Errorf("the session did not survive the failed endings: %v", err)
		}

		// Once revocation works again, the same request succeeds.
		h.mu.Lock()
		h.fail = false
		h.mu.Unlock()
		if err := m.End(httptest.NewRecorder(), withCookie(ck)); err != nil {
			t.Fatal(err)
		}
		gone(t, be, app, s.ID)
	})
}

// TestSessionsPerUserAreBounded: signing in again and again without the
// cookie (a script) keeps at most MaxSessionsPerUser live sessions for the
// user: each sign-in past the bound ends the least recently used, through
// the hooks, and never the one it just started nor another user's.
func TestSessionsPerUserAreBounded(t *testing.T) {
	backends(t, func(t *testing.T, be store.Store) {
		c := &clock{now: time.Now()}
		app := storetest.App(t)
		m := newManager(be, app, c)
		h := &hookLog{}
		m.OnEnd(h.hook)
		eve := startAs(t, m, "eve")
		var started []*store.Session
		for range session.MaxSessionsPerUser + 5 {
			c.Add(time.Second) // each a second later: a strict order of use
			started = append(started, startAs(t, m, "user-1"))
		}
		live, err := be.UserSessions(t.Context(), app, "user-1")
		if err != nil {
			t.Fatal(err)
		}
		if len(live) != session.MaxSessionsPerUser {
			t.Fatalf("%d live sessions, want %d", len(live), session.MaxSessionsPerUser)
		}
		var evicted []string
		for _, s := range started[:5] {
			evicted = append(evicted, s.ID)
			gone(t, be, app, s.ID)
		}
		slices.Sort(evicted)
		if got := h.take(); !slices.Equal(got, evicted) {
			t.Errorf("the hook heard %d sessions end, want the 5 least recently used", len(got))
		}
		for _, s := range started[5:] {
			present(t, be, app, s.ID)
		}
		present(t, be, app, eve.ID)
	})
}

// TestStartCountedKeepsTheBound: a sign-in that counted the user's
// sessions beforehand (store.SignIn.Sessions) skips the cap's read only
// while the new session keeps them within it; counts past the cap, and
// counts that make no sense (negative, as a backend's "not counted", or
// huge), read them and end the least recently used, as Start does.
func TestStartCountedKeepsTheBound(t *testing.T) {
	for _, count := range []struct {
		name string
		of   func(live int) int
	}{
		{"exact", func(live int) int { return live }},
		{"negative", func(int) int { return -7 }},
		{"huge", func(int) int { return 1 << 40 }},
	} {
		t.Run(count.name, func(t *testing.T) {
			backends(t, func(t *testing.T, be store.Store) {
				c := &clock{now: time.Now()}
				app := storetest.App(t)
				m := newManager(be, app, c)
				h := &hookLog{}
				m.OnEnd(h.hook)
				var started []*store.Session
				for range session.MaxSessionsPerUser + 5 {
					c.Add(time.Second)
					live, err := be.UserSessions(t.Context(), app, "user-1")
					if err != nil {
						t.Fatal(err)
					}
					s, err := m.StartCounted(httptest.NewRecorder(), httptest.NewRequest("GET", "https://auth.example.com/rp/callback/dev", nil), "user-1", "dev", count.of(len(live)))
					if err != nil {
						t.Fatal(err)
					}
					started = append(started, s)
				}
				live, err := be.UserSessions(t.Context(), app, "user-1")
				if err != nil {
					t.Fatal(err)
				}
				if len(live) != session.MaxSessionsPerUser {
					t.Fatalf("%d live sessions, want %d", len(live), session.MaxSessionsPerUser)
				}
				gone(t, be, app, ids(started[:5])...)
				present(t, be, app, ids(started[5:])...)
				if got := h.take(); len(got) != 5 {
					t.Errorf("the hook heard %d sessions end, want the 5 least recently used", len(got))
				}
			})
		})
	}
}

func ids(ss []*store.Session) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.ID
	}
	return out
}
