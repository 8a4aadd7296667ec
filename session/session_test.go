package session_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aero2/aero2/session"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/memory"
	"github.com/aero2/aero2/store/redis/redistest"
	"github.com/aero2/aero2/store/storetest"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// backends runs a test on the memory store and on the real Redis.
func backends(t *testing.T, fn func(t *testing.T, be store.Store)) {
	t.Run("memory", func(t *testing.T) {
		s := memory.New()
		t.Cleanup(func() { s.Close() })
		fn(t, s)
	})
	t.Run("redis", func(t *testing.T) { fn(t, redistest.New(t)) })
}

func newManager(be store.Store, app string, c *clock) *session.Manager {
	return session.New(store.ForApp(be, app), session.Config{
		CookieName: "aero2_session", Secure: true, Path: "/",
		IdleTimeout: time.Hour, AbsoluteTimeout: 4 * time.Hour,
		Keys: [][]byte{[]byte("0123456789abcdef0123456789abcdef")},
		Now:  c.Now,
	})
}

// signIn starts a session and returns the cookie the browser got.
func signIn(t *testing.T, m *session.Manager, r *http.Request) (*store.Session, *http.Cookie) {
	t.Helper()
	if r == nil {
		r = httptest.NewRequest("GET", "https://auth.example.com/rp/callback/dev", nil)
	}
	w := httptest.NewRecorder()
	s, err := m.Start(w, r, "user-1", "dev")
	if err != nil {
		t.Fatal(err)
	}
	cookies := w.Result().Cookies()
	if len(cookies) != 1 {
		t.Fatalf("Start set %d cookies", len(cookies))
	}
	return s, cookies[0]
}

func withCookie(c *http.Cookie) *http.Request {
	r := httptest.NewRequest("GET", "https://auth.example.com/account", nil)
	if c != nil {
		r.AddCookie(c)
	}
	return r
}

func TestCookieFlagsAndOpaqueToken(t *testing.T) {
	backends(t, func(t *testing.T, be store.Store) {
		c := &clock{now: time.Now()}
		m := newManager(be, storetest.App(t), c)
		s, ck := signIn(t, m, nil)
		if ck.Name != "__Host-aero2_session" || !ck.HttpOnly || !ck.Secure || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Domain != "" {
			t.Errorf("cookie flags: %+v", ck)
		}
		if len(ck.Value) != 43 {
			t.Errorf("token length %d, want 43 (256 bits, base64url)", len(ck.Value))
		}
		if s.ID == ck.Value || strings.Contains(s.ID, ck.Value) {
			t.Fatal("the store keeps the cookie token itself")
		}
		// The cookie's value is not a store key; its hash is.
		if _, err := be.GetSession(t.Context(), m.App(), ck.Value); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("session found by raw token: %v", err)
		}
		if id, _ := session.TokenID(ck.Value); id != s.ID {
			t.Errorf("stored ID is not the token's hash")
		}
		got, err := m.Current(withCookie(ck))
		if err != nil || got.ID != s.ID || got.UserID != "user-1" {
			t.Fatalf("Current = %+v, %v", got, err)
		}
	})
}

func TestNoSessionCases(t *testing.T) {
	backends(t, func(t *testing.T, be store.Store) {
		c := &clock{now: time.Now()}
		m := newManager(be, storetest.App(t), c)
		_, ck := signIn(t, m, nil)
		other := newManager(be, storetest.App(t), c)
		for name, r := range map[string]*http.Request{
			"no cookie":           withCookie(nil),
			"empty":               withCookie(&http.Cookie{Name: m.Name(), Value: ""}),
			"malformed":           withCookie(&http.Cookie{Name: m.Name(), Value: "../../etc/passwd"}),
			"wrong length":        withCookie(&http.Cookie{Name: m.Name(), Value: ck.Value + "A"}),
			"unknown token":       withCookie(&http.Cookie{Name: m.Name(), Value: strings.Repeat("A", 43)}),
			"not base64url":       withCookie(&http.Cookie{Name: m.Name(), Value: strings.Repeat("+", 43)}),
			"unprefixed name":     withCookie(&http.Cookie{Name: "aero2_session", Value: ck.Value}),
			"other application":   nil,
			"oversized cookie":    withCookie(&http.Cookie{Name: m.Name(), Value: strings.Repeat("A", 8192)}),
			"stored id as cookie": nil,
		} {
			var err error
			switch name {
			case "other application":
				_, err = other.Current(withCookie(ck))
			case "stored id as cookie":
				s, _ := m.Current(withCookie(ck))
				_, err = m.Current(withCookie(&http.Cookie{Name: m.Name(), Value: s.ID}))
			default:
				_, err = m.Current(r)
			}
			if !errors.Is(err, session.ErrNoSession) {
				t.Errorf("%s: err = %v, want ErrNoSession", name, err)
			}
		}
	})
}

func TestStartRotatesAndEnds(t *testing.T) {
	backends(t, func(t *testing.T, be store.Store) {
		c := &clock{now: time.Now()}
		m := newManager(be, storetest.App(t), c)
		first, ck1 := signIn(t, m, nil)
		// Signing in again from the same browser replaces the session:
		// a token planted before login (fixation) is worthless after.
		second, ck2 := signIn(t, m, withCookie(ck1))
		if ck1.Value == ck2.Value || first.ID == second.ID {
			t.Fatal("session token not rotated on sign-in")
		}
		if _, err := m.Current(withCookie(ck1)); !errors.Is(err, session.ErrNoSession) {
			t.Errorf("old session still valid after a new sign-in: %v", err)
		}
		w := httptest.NewRecorder()
		if err := m.End(w, withCookie(ck2)); err != nil {
			t.Fatal(err)
		}
		cleared := w.Result().Cookies()
		if len(cleared) != 1 || cleared[0].MaxAge >= 0 || cleared[0].Value != "" {
			t.Errorf("End did not clear the cookie: %+v", cleared)
		}
		if _, err := be.GetSession(t.Context(), m.App(), second.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("End left the session in the store: %v", err)
		}
		if _, err := m.Current(withCookie(ck2)); !errors.Is(err, session.ErrNoSession) {
			t.Errorf("ended session still valid: %v", err)
		}
		if err := m.End(httptest.NewRecorder(), withCookie(nil)); err != nil {
			t.Errorf("End without session: %v", err)
		}
	})
}

func TestIdleAndAbsoluteTimeouts(t *testing.T) {
	backends(t, func(t *testing.T, be store.Store) {
		c := &clock{now: time.Now()}
		m := newManager(be, storetest.App(t), c)

		_, idle := signIn(t, m, nil)
		c.Add(time.Hour + time.Second)
		if _, err := m.Current(withCookie(idle)); !errors.Is(err, session.ErrNoSession) {
			t.Errorf("session alive after the idle timeout: %v", err)
		}

		s, busy := signIn(t, m, nil)
		// Used every 50 minutes, it outlives the idle timeout...
		for range 4 {
			c.Add(50 * time.Minute)
			if _, err := m.Current(withCookie(busy)); err != nil {
				t.Fatalf("used session ended early at %v: %v", c.Now().Sub(s.CreatedAt), err)
			}
		}
		got, _ := be.GetSession(t.Context(), m.App(), s.ID)
		if !got.LastSeen.After(s.LastSeen) {
			t.Error("use was not recorded (last_seen unchanged)")
		}
		// ...but not the absolute timeout (4h).
		c.Add(50 * time.Minute)
		if _, err := m.Current(withCookie(busy)); !errors.Is(err, session.ErrNoSession) {
			t.Errorf("session alive after the absolute timeout: %v", err)
		}
	})
}

func TestCSRFTokens(t *testing.T) {
	c := &clock{now: time.Now()}
	be := memory.New()
	defer be.Close()
	m := newManager(be, "app", c)
	s1, _ := signIn(t, m, nil)
	s2, _ := signIn(t, m, nil)
	tok := m.CSRFToken(s1, "consent")
	if !m.VerifyCSRF(s1, "consent", tok) {
		t.Fatal("valid token refused")
	}
	for name, ok := range map[string]bool{
		"other session": m.VerifyCSRF(s2, "consent", tok),
		"other purpose": m.VerifyCSRF(s1, "logout", tok),
		"empty":         m.VerifyCSRF(s1, "consent", ""),
		"garbage":       m.VerifyCSRF(s1, "consent", "!!!"),
		"truncated":     m.VerifyCSRF(s1, "consent", tok[:len(tok)-2]),
	} {
		if ok {
			t.Errorf("%s: token accepted", name)
		}
	}
	// After key rotation (new key first), old tokens still verify.
	rotated := session.New(store.ForApp(be, "app"), session.Config{CookieName: "x", Secure: true,
		IdleTimeout: time.Hour, AbsoluteTimeout: time.Hour,
		Keys: [][]byte{[]byte("a-new-key-a-new-key-a-new-key-00"), []byte("0123456789abcdef0123456789abcdef")}})
	if !rotated.VerifyCSRF(s1, "consent", tok) {
		t.Error("token from the previous key refused after rotation")
	}
}

func TestCookieNamePrefixes(t *testing.T) {
	for _, tc := range []struct {
		secure bool
		path   string
		want   string
	}{
		{true, "/", "__Host-s"},
		{true, "", "__Host-s"},
		{true, "/apps/blog", "__Host-s!apps!blog"},
		{true, "/.aero2", "__Host-s!.aero2"},
		{false, "/", "s"},
		{false, "/blog", "s!blog"},
	} {
		if got := session.CookieName("s", tc.secure, tc.path); got != tc.want {
			t.Errorf("CookieName(secure=%v, %q) = %q, want %q", tc.secure, tc.path, got, tc.want)
		}
	}
}

// TestAliveByID: the provider-session check the proxy makes by sid follows
// the same rules as Current, and records use so an active proxy user keeps
// the provider session alive.
func TestAliveByID(t *testing.T) {
	backends(t, func(t *testing.T, be store.Store) {
		c := &clock{now: time.Now()}
		m := newManager(be, storetest.App(t), c)
		s, _ := signIn(t, m, nil)
		ctx := t.Context()
		if ok, err := m.Alive(ctx, s.ID); !ok || err != nil {
			t.Fatalf("live session: %v %v", ok, err)
		}
		for _, id := range []string{"", "unknown", strings.Repeat("A", 43)} {
			if ok, err := m.Alive(ctx, id); ok || err != nil {
				t.Errorf("Alive(%q) = %v, %v", id, ok, err)
			}
		}
		// Checked every 50 minutes, it outlives the idle timeout (1h)...
		for range 3 {
			c.Add(50 * time.Minute)
			if ok, err := m.Alive(ctx, s.ID); !ok || err != nil {
				t.Fatalf("used session ended at %v: %v", c.Now().Sub(s.CreatedAt), err)
			}
		}
		// ...not without use,
		c.Add(time.Hour + time.Second)
		if ok, _ := m.Alive(ctx, s.ID); ok {
			t.Error("alive after the idle timeout")
		}
		// and never past the absolute timeout (4h).
		s2, _ := signIn(t, m, nil)
		for range 5 {
			c.Add(50 * time.Minute)
			m.Alive(ctx, s2.ID)
		}
		if ok, _ := m.Alive(ctx, s2.ID); ok {
			t.Error("alive after the absolute timeout")
		}
	})
}

// TestSiblingCookiesAreNeverAccepted: a session cookie is read under its
// exact __Host- name only. A valid token under a name a sibling host can
// set — no prefix, or __Secure- (which a subdomain sets with Domain= for
// its parent) — or under another application's name on the same host
// signs nobody in; an application whose issuer has a path gets a
// __Host- cookie too, with the path in its name and Path=/.
func TestSiblingCookiesAreNeverAccepted(t *testing.T) {
	backends(t, func(t *testing.T, be store.Store) {
		c := &clock{now: time.Now()}
		app := storetest.App(t)
		blog := session.New(store.ForApp(be, app), session.Config{
			CookieName: "aero2_session", Secure: true, Path: "/apps/blog",
			IdleTimeout: time.Hour, AbsoluteTimeout: 4 * time.Hour,
			Keys: [][]byte{[]byte("0123456789abcdef0123456789abcdef")}, Now: c.Now,
		})
		_, ck := signIn(t, blog, nil)
		if ck.Name != "__Host-aero2_session!apps!blog" || ck.Path != "/" || ck.Domain != "" || !ck.Secure || !ck.HttpOnly {
			t.Errorf("a path application's cookie: %+v", ck)
		}
		if _, err := blog.Current(withCookie(ck)); err != nil {
			t.Fatalf("the cookie itself: %v", err)
		}
		root := newManager(be, app, c)
		for _, name := range []string{
			"aero2_session!apps!blog", "__Secure-aero2_session!apps!blog", "__secure-aero2_session!apps!blog",
			"__Secure-aero2_session", "aero2_session", "__Host-aero2_session", "__host-aero2_session!apps!blog",
		} {
			if _, err := blog.Current(withCookie(&http.Cookie{Name: name, Value: ck.Value})); !errors.Is(err, session.ErrNoSession) {
				t.Errorf("the path application accepted its token as %s: %v", name, err)
			}
		}
		_, rootCk := signIn(t, root, nil)
		for _, name := range []string{"__Secure-aero2_session", "aero2_session", "__host-aero2_session"} {
			if _, err := root.Current(withCookie(&http.Cookie{Name: name, Value: rootCk.Value})); !errors.Is(err, session.ErrNoSession) {
				t.Errorf("the root application accepted its token as %s: %v", name, err)
			}
		}
	})
}

// TestAliveUntilReportsTheDeadline: the provider-session check reports
// the session's deadline as it read it, LastSeen after its own touch:
// min(ExpiresAt, LastSeen+IdleTimeout), and when a use would next be
// recorded (LastSeen plus the touch gap, 5m of the idle timeout 1h). The
// proxy bounds its cache by both (proxy.trustUntil). AliveWithRecord
// reports the same, and nothing for a record that names another session.
func TestAliveUntilReportsTheDeadline(t *testing.T) {
	backends(t, func(t *testing.T, be store.Store) {
		c := &clock{now: time.Now()}
		app := storetest.App(t)
		m := newManager(be, app, c)
		s, _ := signIn(t, m, nil)
		ctx := t.Context()
		start := s.LastSeen
		want := func(what string, d session.Deadline, ends, touch time.Time) {
			t.Helper()
			if !d.Live() || !d.Ends.Equal(ends) || !d.Touch.Equal(touch) {
				t.Errorf("%s: ends %v, touch %v; want %v, %v", what, d.Ends, d.Touch, ends, touch)
			}
		}
		check := func(what string, ends, touch time.Time) {
			t.Helper()
			d, err := m.AliveUntil(ctx, s.ID)
			if err != nil {
				t.Fatal(err)
			}
			want(what, d, ends, touch)
		}
		check("at sign-in", start.Add(time.Hour), start.Add(5*time.Minute))
		c.Add(4 * time.Minute) // within the touch gap: nothing recorded
		check("4m later", start.Add(time.Hour), start.Add(5*time.Minute))
		c.Add(2 * time.Minute) // past it: touched, and the deadline with it
		seen := c.Now().UTC()
		check("6m later", seen.Add(time.Hour), seen.Add(5*time.Minute))

		key := "proxy-session:deadline"
		if err := store.ForApp(be, app).Put(ctx, key, []byte("names s"), time.Hour); err != nil {
			t.Fatal(err)
		}
		d, rec, err := m.AliveWithRecord(ctx, s.ID, key, func([]byte) bool { return true })
		if err != nil || string(rec) != "names s" {
			t.Fatalf("AliveWithRecord: %q %v", rec, err)
		}
		want("with the record", d, seen.Add(time.Hour), seen.Add(5*time.Minute))
		if d, _, err := m.AliveWithRecord(ctx, s.ID, key, func([]byte) bool { return false }); d.Live() || err != nil {
			t.Errorf("a record naming another session: %+v %v, want the zero Deadline", d, err)
		}

		// Used every 50 minutes, the idle deadline passes the absolute
		// one (4h after sign-in), which is then the deadline.
		for c.Now().Add(50 * time.Minute).Before(s.ExpiresAt) {
			c.Add(50 * time.Minute)
			if d, err := m.AliveUntil(ctx, s.ID); !d.Live() || err != nil {
				t.Fatalf("used session ended at %v: %v", c.Now().Sub(start), err)
			}
		}
		seen = c.Now().UTC()
		check("near the absolute timeout", s.ExpiresAt, seen.Add(5*time.Minute))
		c.Add(s.ExpiresAt.Sub(c.Now()))
		if d, err := m.AliveUntil(ctx, s.ID); d.Live() || err != nil {
			t.Errorf("at the absolute timeout: %+v %v, want the zero Deadline", d, err)
		}
	})
}
