package combined_test

import (
	"errors"
	"testing"
	"time"

	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/combined"
	"github.com/aero2/aero2/store/postgres"
	"github.com/aero2/aero2/store/postgres/pgtest"
	"github.com/aero2/aero2/store/redis"
	"github.com/aero2/aero2/store/redis/redistest"
	"github.com/aero2/aero2/store/storetest"
)

// TestConformance runs the suite against PostgreSQL and Redis combined.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return combined.New(pgtest.New(t), redistest.New(t)) })
	storetest.RunAdmin(t, func(t *testing.T) storetest.AdminStore { return combined.New(pgtest.New(t), redistest.New(t)) })
}

// TestEachKindInItsBackend: users, consents and signing keys are in
// PostgreSQL only; sessions, tokens and rate limits in Redis only.
func TestEachKindInItsBackend(t *testing.T) {
	pg, rd := pgtest.New(t), redistest.New(t)
	s := combined.New(pg, rd)
	ctx := t.Context()
	now := time.Now()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.CreateUser(ctx, &store.User{ID: "u1", App: "app", CreatedAt: now, LastLogin: now},
		&store.Identity{App: "app", IDP: "gh", Subject: "1", UserID: "u1", LinkedAt: now, LastLogin: now}))
	must(s.SetAdd(ctx, "app", store.ConsentKey("u1", "web"), time.Hour, "openid"))
	must(s.Create(ctx, "app", store.SigningKeysKey, []byte("sealed"), 0))
	must(s.CreateSession(ctx, &store.Session{ID: "s1", App: "app", UserID: "u1"}, time.Hour))
	must(s.Put(ctx, "app", "authz:code:x", []byte("code"), time.Hour))
	for _, c := range []struct {
		what string
		in   func(st store.Store) error
		pg   bool
	}{
		{"user", func(st store.Store) error { _, err := st.GetUser(ctx, "app", "u1"); return err }, true},
		{"consent", func(st store.Store) error {
			m, err := st.SetMembers(ctx, "app", store.ConsentKey("u1", "web"))
			if err == nil && len(m) == 0 {
				err = store.ErrNotFound
			}
			return err
		}, true},
		{"signing keys", func(st store.Store) error { _, err := st.Get(ctx, "app", store.SigningKeysKey); return err }, true},
		{"session", func(st store.Store) error { _, err := st.GetSession(ctx, "app", "s1"); return err }, false},
		{"code", func(st store.Store) error { _, err := st.Get(ctx, "app", "authz:code:x"); return err }, false},
	} {
		inPG, inRedis := c.in(pg) == nil, c.in(rd) == nil
		if inPG != c.pg || inRedis == c.pg {
			t.Errorf("%s: in PostgreSQL %v, in Redis %v", c.what, inPG, inRedis)
		}
	}
	// A batch spanning both cannot be one transaction: refused whole.
	err := s.Apply(ctx, "app", store.Op{Kind: store.OpPut, Key: "t", Value: []byte("v")}, store.Op{Kind: store.OpPut, Key: store.SigningKeysKey, Value: []byte("x")})
	if !errors.Is(err, combined.ErrMixedBatch) {
		t.Fatalf("mixed batch: %v", err)
	}
	if _, err := s.Get(ctx, "app", "t"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("refused mixed batch wrote: %v", err)
	}
	var _ *postgres.Store = pg
	var _ *redis.Store = rd
}

func TestBroadcasts(t *testing.T) {
	st := combined.New(pgtest.New(t), redistest.New(t))
	storetest.Broadcasts(t, st, st)
}
