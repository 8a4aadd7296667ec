package redis_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/redis"
	"github.com/aero2/aero2/store/redis/redistest"
	"github.com/aero2/aero2/store/storetest"
)

// TestConformance runs the suite against the real Redis on 127.0.0.1:6379.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return redistest.New(t) })
}

// TestBatchOneKeyInOrder: a batch's writes of one key land in the batch's
// order, an OpCreate's among them, although the script writes a claim (an
// OpCreate or OpTake whose key no other op has) before the other writes.
// (On Cluster, a batch across slots writes its OpCreates first:
// applyAcross.)
func TestBatchOneKeyInOrder(t *testing.T) {
	s := redistest.New(t)
	ctx := context.Background()
	if err := s.Apply(ctx, "app",
		store.Op{Kind: store.OpPut, Key: "put-then-create", Value: []byte("put"), TTL: time.Hour},
		store.Op{Kind: store.OpCreate, Key: "put-then-create", Value: []byte("create"), TTL: time.Hour},
		store.Op{Kind: store.OpCreate, Key: "create-then-put", Value: []byte("create"), TTL: time.Hour},
		store.Op{Kind: store.OpPut, Key: "create-then-put", Value: []byte("put"), TTL: time.Hour},
		store.Op{Kind: store.OpDelete, Key: "delete-then-create"},
		store.Op{Kind: store.OpCreate, Key: "delete-then-create", Value: []byte("create"), TTL: time.Hour},
	); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"put-then-create": "create", "create-then-put": "put", "delete-then-create": "create"} {
		if v, err := s.Get(ctx, "app", key); err != nil || string(v) != want {
			t.Errorf("%s = %q, %v; want %q", key, v, err, want)
		}
	}
}

// TestAdminConformance: the admin commands' listings on the real Redis.
func TestAdminConformance(t *testing.T) {
	storetest.RunAdmin(t, func(t *testing.T) storetest.AdminStore { return redistest.New(t) })
}

// TestIdentityRecordsWithoutGroups: identities written before they kept
// their provider's groups (JSON without "groups") still read, with no
// groups, and take groups on their next update.
func TestIdentityRecordsWithoutGroups(t *testing.T) {
	cfg := redistest.Config(t)
	s, err := redis.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := goredis.NewClient(&goredis.Options{Addr: redistest.Addr()})
	defer c.Close()
	ctx := context.Background()
	// As the previous version wrote them: users at u:<id>, identities at
	// i:<idp>:<subject>, the user's identities in the set ui:<id>.
	key := func(kind, k string) string { return cfg.KeyPrefix + ":app:" + kind + ":{" + k + "}" }
	c.Set(ctx, key("u", "u1"), `{"id":"u1","app":"app","groups":["admins"],"created_at":"2026-01-01T00:00:00Z","last_login":"2026-01-01T00:00:00Z"}`, 0)
	c.Set(ctx, key("i", "corp:s1"), `{"app":"app","idp":"corp","subject":"s1","user_id":"u1","email":"a@example.com","email_verified":true,"linked_at":"2026-01-01T00:00:00Z","last_login":"2026-01-01T00:00:00Z"}`, 0)
	c.SAdd(ctx, key("ui", "u1"), "corp:s1")
	u, id, err := s.UserByIdentity(ctx, "app", "corp", "s1")
	if err != nil {
		t.Fatal(err)
	}
	if id.Groups != nil || id.Email != "a@example.com" || !slices.Equal(u.Groups, []string{"admins"}) {
		t.Fatalf("old records read as user %+v, identity %+v", u, id)
	}
	id.Groups = []string{"eng"}
	if err := s.UpdateIdentity(ctx, id); err != nil {
		t.Fatal(err)
	}
	ids, err := s.Identities(ctx, "app", "u1")
	if err != nil || len(ids) != 1 || !slices.Equal(ids[0].Groups, []string{"eng"}) {
		t.Fatalf("after the update: %v %+v", err, ids)
	}
}

// TestBroadcasts: one store publishes, another (its own connections, the
// same prefix: another replica) listens.
func TestBroadcasts(t *testing.T) {
	cfg := redistest.Config(t)
	var stores []store.Store
	for range 2 {
		st, err := redis.Open(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		stores = append(stores, st)
	}
	storetest.Broadcasts(t, stores[0], stores[1])
}

// TestLayoutUpgrade: a store holding keys in the application layout of
// earlier versions is refused by key_layout: spread, with what to do,
// rather than served as if it had no users; the default (auto) keeps its
// layout and reads its users; the prefix is then marked, and spread is
// refused even once the old keys are gone. A fresh prefix under auto is
// spread.
func TestLayoutUpgrade(t *testing.T) {
	cfg := redistest.Config(t)
	c := goredis.NewClient(&goredis.Options{Addr: redistest.Addr()})
	defer c.Close()
	ctx := context.Background()
	c.Set(ctx, cfg.KeyPrefix+":{app}:u:u1", `{"id":"u1","app":"app","created_at":"2026-01-01T00:00:00Z","last_login":"2026-01-01T00:00:00Z"}`, 0)
	spread := cfg
	spread.KeyLayout = "spread"
	if s, err := redis.Open(ctx, spread); err == nil {
		s.Close()
		t.Fatal("the spread layout opened a store of the application layout")
	} else if !strings.Contains(err.Error(), "key_layout: application") || !strings.Contains(err.Error(), "aero2 store copy") {
		t.Fatalf("refusal does not say what to do: %v", err)
	}
	s, err := redis.Open(ctx, cfg) // auto
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.GetUser(ctx, "app", "u1")
	s.Close()
	if err != nil || u.ID != "u1" {
		t.Fatalf("auto does not keep the application layout's user: %v", err)
	}
	c.Del(ctx, cfg.KeyPrefix+":{app}:u:u1")
	if s, err := redis.Open(ctx, spread); err == nil {
		s.Close()
		t.Fatal("the spread layout opened a prefix marked for the application layout")
	}
	if got := c.Get(ctx, cfg.KeyPrefix+":layout").Val(); got != "application" {
		t.Fatalf("layout mark %q, want application", got)
	}
	fresh := redistest.Config(t)
	s, err = redis.Open(ctx, fresh)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Put(ctx, "app", "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if n := c.Exists(ctx, fresh.KeyPrefix+":app:r:{k}").Val(); n != 1 {
		t.Fatal("a fresh prefix under auto is not in the spread layout")
	}
}
