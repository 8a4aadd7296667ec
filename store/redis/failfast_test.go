package redis_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/redis/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// TestCallsFailOnceAndFast: a store call fails within one timeout — never
// retried, never dialled twice — and once a call of a request (a
// store.FailFast context) has found Redis unavailable, the request's later
// calls fail at once without asking Redis again. Redis's own error replies
// trip nothing.
func TestCallsFailOnceAndFast(t *testing.T) {
	p := redistest.PrivateServer(t)
	st := p.Open(t)
	bg := context.Background()
	const app = "a"
	if err := st.Put(bg, app, "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	earlier := func(err error) bool { return err != nil && strings.Contains(err.Error(), "an earlier call") }

	for _, o := range []struct {
		name       string
		fail, back func(*redistest.Private, testing.TB)
	}{
		{"stopped", (*redistest.Private).Stop, (*redistest.Private).Start},
		{"stalled", (*redistest.Private).Stall, (*redistest.Private).Resume},
	} {
		o.fail(p, t)
		req := store.FailFast(bg)
		_, err := st.Get(req, app, "k")
		if !errors.Is(err, store.ErrUnavailable) || earlier(err) {
			t.Errorf("Redis %s, first call of a request: %v", o.name, err)
		}
		// Every kind of call: a plain command, a script, a transaction.
		_, err1 := st.Get(req, app, "k")
		err2 := st.Create(req, app, "k2", []byte("v"), time.Minute)
		_, err3 := st.UserSessions(req, app, "u")
		for i, err := range []error{err1, err2, err3} {
			if !errors.Is(err, store.ErrUnavailable) || !earlier(err) {
				t.Errorf("Redis %s, call %d after the first failed: %v, want the latch's ErrUnavailable", o.name, i+1, err)
			}
		}
		// Another request asks Redis itself.
		if _, err := st.Get(store.FailFast(bg), app, "k"); !errors.Is(err, store.ErrUnavailable) || earlier(err) {
			t.Errorf("Redis %s, another request: %v", o.name, err)
		}
		o.back(p, t)
		// A failure that is Redis's answer trips nothing: a wrong type,
		// and (after a restart, which empties the script cache) NOSCRIPT,
		// on which the script is sent in full.
		req = store.FailFast(bg)
		if err := st.Client().SAdd(req, "wrong-type", "x").Err(); err != nil {
			t.Fatal(err)
		}
		if err := st.Client().Get(req, "wrong-type").Err(); err == nil || !strings.Contains(err.Error(), "WRONGTYPE") {
			t.Fatalf("GET of a set: %v", err)
		}
		sess := &store.Session{ID: "s-" + o.name, App: app, UserID: "u", CreatedAt: time.Now(), LastSeen: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
		if err := st.CreateSession(req, sess, time.Hour); err != nil {
			t.Errorf("after Redis %s came back, a script call: %v", o.name, err)
		}
		if v, err := st.Get(req, app, "k"); err != nil || string(v) != "v" {
			t.Errorf("after Redis %s came back: %q, %v", o.name, v, err)
		}
		st.Client().Del(bg, "wrong-type")
	}
}
