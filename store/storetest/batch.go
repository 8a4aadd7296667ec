package storetest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aero2/aero2/store"
)

// runBatchTests covers store.Batches.
func runBatchTests(t *testing.T, newStore func(t *testing.T) store.Store) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"BatchApply", testBatchApply},
		{"BatchGetMany", testBatchGetMany},
		{"BatchGetManyAndUser", testBatchGetManyAndUser},
		{"BatchGuard", testBatchGuard},
		{"BatchAbsentGuard", testBatchAbsentGuard},
		{"BatchTake", testBatchTake},
		{"BatchSetsExpire", testBatchSetsExpire},
		{"BatchGuardTwice", testBatchGuardTwice},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
}

func testBatchApply(t *testing.T, s store.Store) {
	app := App(t)
	mustNil(t, s.Put(ctx(t), app, "old", []byte("x"), longTTL), "put")
	mustNil(t, s.SetAdd(ctx(t), app, "idx", longTTL, "old"), "set add")
	mustNil(t, s.Apply(ctx(t), app,
		store.Op{Kind: store.OpPut, Key: "new", Value: []byte{0, 1, 2}, TTL: longTTL},
		store.Op{Kind: store.OpSetAdd, Key: "idx", TTL: longTTL, Members: []string{"new", "other"}},
		store.Op{Kind: store.OpDelete, Key: "old"},
		store.Op{Kind: store.OpSetRemove, Key: "idx", Members: []string{"old"}},
		store.Op{Kind: store.OpPut, Key: "short", Value: []byte("s"), TTL: shortTTL},
	), "apply")
	v, err := s.Get(ctx(t), app, "new")
	mustNil(t, err, "get new")
	if string(v) != "\x00\x01\x02" {
		t.Fatalf("new = %x", v)
	}
	_, err = s.Get(ctx(t), app, "old")
	mustIs(t, err, store.ErrNotFound, "get deleted")
	m, err := s.SetMembers(ctx(t), app, "idx")
	mustNil(t, err, "members")
	if got := sorted(m); len(got) != 2 || got[0] != "new" || got[1] != "other" {
		t.Fatalf("set after batch = %v", got)
	}
	// TTLs in a batch mean what they mean alone.
	waitFor(t)
	_, err = s.Get(ctx(t), app, "short")
	mustIs(t, err, store.ErrNotFound, "expired batch put")
	// Nothing, and scoped by application.
	mustNil(t, s.Apply(ctx(t), app), "empty batch")
	_, err = s.Get(ctx(t), App(t), "new")
	mustIs(t, err, store.ErrNotFound, "batch record in another application")
	// An unknown op is refused before anything is written.
	if err := s.Apply(ctx(t), app, store.Op{Kind: store.OpPut, Key: "p", Value: []byte("p")}, store.Op{Kind: 99, Key: "x"}); err == nil {
		t.Fatal("unknown op accepted")
	}
	_, err = s.Get(ctx(t), app, "p")
	mustIs(t, err, store.ErrNotFound, "write of a refused batch")
}

func testBatchGetMany(t *testing.T, s store.Store) {
	app := App(t)
	mustNil(t, s.Put(ctx(t), app, "a", []byte("1"), longTTL), "put a")
	mustNil(t, s.Put(ctx(t), app, "c", []byte("3"), longTTL), "put c")
	mustNil(t, s.Put(ctx(t), app, "gone", []byte("x"), shortTTL), "put short")
	waitFor(t)
	got, err := s.GetMany(ctx(t), app, "a", "b", "c", "gone")
	mustNil(t, err, "get many")
	if len(got) != 4 || string(got[0]) != "1" || got[1] != nil || string(got[2]) != "3" || got[3] != nil {
		t.Fatalf("GetMany = %q", got)
	}
	got, err = s.GetMany(ctx(t), App(t), "a")
	mustNil(t, err, "get many elsewhere")
	if got[0] != nil {
		t.Fatal("GetMany reads another application's record")
	}
}

// testBatchGetManyAndUser: the records as GetMany gives them and the user
// as GetUser does, an absent user being nil; nothing of another
// application; a user ID that names no user (whatever it holds) is nil,
// never an error or another user.
func testBatchGetManyAndUser(t *testing.T, s store.Store) {
	app := App(t)
	u, ident := newUser(app, "u1", "a@example.com", true)
	mustNil(t, s.CreateUser(ctx(t), u, ident), "create user")
	mustNil(t, s.Put(ctx(t), app, "a", []byte("1"), longTTL), "put a")
	mustNil(t, s.Put(ctx(t), app, "gone", []byte("x"), shortTTL), "put short")
	waitFor(t)
	got, vals, err := s.GetManyAndUser(ctx(t), app, "u1", "a", "b", "gone")
	mustNil(t, err, "get many and user")
	if got == nil || got.ID != "u1" || got.Email != u.Email || got.Disabled {
		t.Fatalf("GetManyAndUser user = %+v", got)
	}
	if len(vals) != 3 || string(vals[0]) != "1" || vals[1] != nil || vals[2] != nil {
		t.Fatalf("GetManyAndUser values = %q", vals)
	}
	for _, id := range []string{"u2", "", "u1 ", "U1", "u1\x00", "../u1", "*", "u:*", "{u1}", strings.Repeat("u", 4096)} {
		got, vals, err = s.GetManyAndUser(ctx(t), app, id, "a")
		mustNil(t, err, "get many and user "+id)
		if got != nil || len(vals) != 1 || string(vals[0]) != "1" {
			t.Fatalf("GetManyAndUser(%.20q) = %+v %q, want no user and the record", id, got, vals)
		}
	}
	got, vals, err = s.GetManyAndUser(ctx(t), App(t), "u1", "a")
	mustNil(t, err, "get many and user elsewhere")
	if got != nil || vals[0] != nil {
		t.Fatalf("GetManyAndUser reads another application's user or record: %+v %q", got, vals)
	}
	got, vals, err = s.GetManyAndUser(ctx(t), app, "u1")
	mustNil(t, err, "get the user and no records")
	if got == nil || len(vals) != 0 {
		t.Fatalf("GetManyAndUser without keys = %+v %q", got, vals)
	}
}

func waitFor(t *testing.T) {
	t.Helper()
	time.Sleep(waitOut)
}

// mustRefuse stores a record under guard's key, then checks that a batch
// of writes guarded by guard fails with ErrExists, writes nothing, and
// leaves the record as it was.
func mustRefuse(t *testing.T, s store.Store, app string, guard store.Op) {
	t.Helper()
	mustNil(t, s.Put(ctx(t), app, guard.Key, []byte("1"), longTTL), "put the guard's record")
	err := s.Apply(ctx(t), app,
		store.Op{Kind: store.OpPut, Key: "token", Value: []byte("t"), TTL: longTTL},
		store.Op{Kind: store.OpSetAdd, Key: "idx", TTL: longTTL, Members: []string{"token"}},
		guard)
	mustIs(t, err, store.ErrExists, "batch with a taken guard")
	_, err = s.Get(ctx(t), app, "token")
	mustIs(t, err, store.ErrNotFound, "write of a refused batch")
	if m, _ := s.SetMembers(ctx(t), app, "idx"); len(m) != 0 {
		t.Fatalf("set write of a refused batch: %v", m)
	}
	if v, _ := s.Get(ctx(t), app, guard.Key); string(v) != "1" {
		t.Fatalf("guard's record changed: %q", v)
	}
}

// testBatchGuard: an OpCreate whose key is taken fails the whole batch,
// and of concurrent batches guarded by one key exactly one is applied.
func testBatchGuard(t *testing.T, s store.Store) {
	app := App(t)
	mustRefuse(t, s, app, store.Op{Kind: store.OpCreate, Key: "used", Value: []byte("2"), TTL: longTTL})
	// A free guard: the batch applies and the guard is set.
	mustNil(t, s.Apply(ctx(t), app,
		store.Op{Kind: store.OpCreate, Key: "fresh", Value: []byte("g"), TTL: shortTTL},
		store.Op{Kind: store.OpPut, Key: "token", Value: []byte("t"), TTL: longTTL}), "guarded batch")
	_, err := s.Get(ctx(t), app, "token")
	mustNil(t, err, "guarded write")
	_, err = s.Get(ctx(t), app, "fresh")
	mustNil(t, err, "guard record")
	waitFor(t)
	_, err = s.Get(ctx(t), app, "fresh")
	mustIs(t, err, store.ErrNotFound, "guard TTL")

	for round := range 5 {
		guard := "race-" + string(rune('a'+round))
		oneWinner(t, s, app, round, store.Op{Kind: store.OpCreate, Key: guard, Value: []byte("x"), TTL: longTTL})
	}
}

// oneWinner runs takers batches at once, each guarded by guard and adding
// itself to a set, and checks that exactly one was applied.
func oneWinner(t *testing.T, s store.Store, app string, round int, guard store.Op) {
	t.Helper()
	winners := guard.Key + "-winners"
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range takers {
		wg.Go(func() {
			err := s.Apply(ctx(t), app, guard,
				store.Op{Kind: store.OpSetAdd, Key: winners, TTL: longTTL, Members: []string{fmt.Sprint(i)}})
			if err == nil {
				wins.Add(1)
			} else if !errors.Is(err, store.ErrExists) {
				t.Errorf("guarded apply: %v", err)
			}
		})
	}
	wg.Wait()
	m, _ := s.SetMembers(ctx(t), app, winners)
	if wins.Load() != 1 || len(m) != 1 {
		t.Fatalf("round %d: %d batches applied (%d set members), want exactly 1", round, wins.Load(), len(m))
	}
}

// testBatchAbsentGuard: an OpAbsent whose key has a live record fails the
// whole batch; a free one writes nothing itself; and a batch that raced a
// write of its key either sees it (refused) or ran before it.
func testBatchAbsentGuard(t *testing.T, s store.Store) {
	app := App(t)
	mustRefuse(t, s, app, store.Op{Kind: store.OpAbsent, Key: "revoked"})
	// Free: the batch applies, and the guard's key stays absent.
	mustNil(t, s.Apply(ctx(t), app,
		store.Op{Kind: store.OpAbsent, Key: "other"},
		store.Op{Kind: store.OpPut, Key: "token", Value: []byte("t"), TTL: longTTL}), "batch with a free absent guard")
	_, err := s.Get(ctx(t), app, "token")
	mustNil(t, err, "guarded write")
	_, err = s.Get(ctx(t), app, "other")
	mustIs(t, err, store.ErrNotFound, "an absent guard wrote its key")
	// An expired record does not block; another application's neither.
	mustNil(t, s.Put(ctx(t), app, "short", []byte("1"), shortTTL), "put short")
	mustNil(t, s.Put(ctx(t), App(t), "elsewhere", []byte("1"), longTTL), "put elsewhere")
	waitFor(t)
	mustNil(t, s.Apply(ctx(t), app,
		store.Op{Kind: store.OpAbsent, Key: "short"},
		store.Op{Kind: store.OpAbsent, Key: "elsewhere"},
		store.Op{Kind: store.OpPut, Key: "after", Value: []byte("a"), TTL: longTTL}), "guards on an expired record and another application's")

	// Writers racing one tombstone: every batch applied before the
	// tombstone is in the index the revoker reads after writing it.
	for round := range 5 {
		stone, idx := fmt.Sprintf("stone-%d", round), fmt.Sprintf("idx-%d", round)
		var applied sync.Map
		var wg sync.WaitGroup
		for i := range takers {
			wg.Go(func() {
				m := fmt.Sprint(i)
				err := s.Apply(ctx(t), app,
					store.Op{Kind: store.OpAbsent, Key: stone},
					store.Op{Kind: store.OpSetAdd, Key: idx, TTL: longTTL, Members: []string{m}})
				if err == nil {
					applied.Store(m, true)
				} else if !errors.Is(err, store.ErrExists) {
					t.Errorf("guarded apply: %v", err)
				}
			})
		}
		mustNil(t, s.Put(ctx(t), app, stone, []byte("1"), longTTL), "tombstone")
		seen, err := s.SetMembers(ctx(t), app, idx)
		mustNil(t, err, "members")
		wg.Wait()
		in := map[string]bool{}
		for _, m := range seen {
			in[m] = true
		}
		applied.Range(func(m, _ any) bool {
			if !in[m.(string)] {
				t.Errorf("round %d: batch %s applied after the tombstone", round, m)
			}
			return true
		})
	}
}

// testBatchTake: an OpTake of a live record applies the batch and deletes
// the record; of an absent, expired or another application's record it
// fails the whole batch and writes nothing; a batch refused by another
// guard writes nothing (its take may be spent: store.OpTake); and of
// concurrent batches taking one record exactly one is applied.
func testBatchTake(t *testing.T, s store.Store) {
	app := App(t)
	writes := func(tag string) []store.Op {
		return []store.Op{
			{Kind: store.OpPut, Key: "token-" + tag, Value: []byte("t"), TTL: longTTL},
			{Kind: store.OpSetAdd, Key: "idx-" + tag, TTL: longTTL, Members: []string{"token"}},
		}
	}
	wroteNothing := func(tag string) {
		t.Helper()
		_, err := s.Get(ctx(t), app, "token-"+tag)
		mustIs(t, err, store.ErrNotFound, tag+": write of a refused batch")
		if m, _ := s.SetMembers(ctx(t), app, "idx-"+tag); len(m) != 0 {
			t.Fatalf("%s: set write of a refused batch: %v", tag, m)
		}
	}

	mustNil(t, s.Put(ctx(t), app, "code", []byte("c"), longTTL), "put")
	mustNil(t, s.Apply(ctx(t), app, append(writes("won"), store.Op{Kind: store.OpTake, Key: "code"})...), "take a live record")
	_, err := s.Get(ctx(t), app, "code")
	mustIs(t, err, store.ErrNotFound, "a taken record")
	_, err = s.Get(ctx(t), app, "token-won")
	mustNil(t, err, "write of the taking batch")
	// Taken already, never there, expired, another application's.
	mustNil(t, s.Put(ctx(t), app, "short", []byte("s"), shortTTL), "put short")
	mustNil(t, s.Put(ctx(t), App(t), "elsewhere", []byte("e"), longTTL), "put elsewhere")
	waitFor(t)
	for _, key := range []string{"code", "never", "short", "elsewhere"} {
		err := s.Apply(ctx(t), app, append(writes(key), store.Op{Kind: store.OpTake, Key: key})...)
		mustIs(t, err, store.ErrExists, "take of "+key)
		wroteNothing(key)
	}
	// Refused by another guard: nothing written, the record untouched
	// or spent, never half-written.
	mustNil(t, s.Put(ctx(t), app, "code2", []byte("c2"), longTTL), "put")
	mustNil(t, s.Put(ctx(t), app, "stone", []byte("1"), longTTL), "put tombstone")
	err = s.Apply(ctx(t), app, append(writes("stoned"), store.Op{Kind: store.OpTake, Key: "code2"}, store.Op{Kind: store.OpAbsent, Key: "stone"})...)
	mustIs(t, err, store.ErrExists, "take with a taken absent guard")
	wroteNothing("stoned")
	if v, err := s.Get(ctx(t), app, "code2"); err == nil && string(v) != "c2" || err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("record of a refused take: %q %v", v, err)
	}

	for round := range 5 {
		key := fmt.Sprintf("race-%d", round)
		mustNil(t, s.Put(ctx(t), app, key, []byte("x"), longTTL), "put")
		oneWinner(t, s, app, round, store.Op{Kind: store.OpTake, Key: key})
		_, err := s.Get(ctx(t), app, key)
		mustIs(t, err, store.ErrNotFound, "a record taken in a race")
	}
}

// testBatchSetsExpire: a batch's set additions give the set the life
// SetAdd gives it (at least the TTL, 0 forever, never shortened), and
// many members at once are all added and removed.
func testBatchSetsExpire(t *testing.T, s store.Store) {
	app := App(t)
	mustNil(t, s.SetAdd(ctx(t), app, "long", longTTL, "x"), "add long")
	mustNil(t, s.SetAdd(ctx(t), app, "forever", 0, "x"), "add forever")
	mustNil(t, s.SetAdd(ctx(t), app, "extended", shortTTL, "x"), "add short")
	mustNil(t, s.Apply(ctx(t), app,
		store.Op{Kind: store.OpSetAdd, Key: "short", TTL: shortTTL, Members: []string{"x"}},
		store.Op{Kind: store.OpSetAdd, Key: "long", TTL: shortTTL, Members: []string{"y"}},
		store.Op{Kind: store.OpSetAdd, Key: "forever", TTL: shortTTL, Members: []string{"y"}},
		store.Op{Kind: store.OpSetAdd, Key: "extended", TTL: longTTL, Members: []string{"y"}},
		store.Op{Kind: store.OpSetAdd, Key: "made-forever", TTL: shortTTL, Members: []string{"x"}},
		store.Op{Kind: store.OpSetAdd, Key: "made-forever", Members: []string{"y"}},
	), "batch of additions")
	waitFor(t)
	if m, _ := s.SetMembers(ctx(t), app, "short"); len(m) != 0 {
		t.Fatalf("expired set has members %v", m)
	}
	for _, key := range []string{"long", "forever", "extended", "made-forever"} {
		if m, _ := s.SetMembers(ctx(t), app, key); len(m) != 2 {
			t.Fatalf("set %q after a batch's short addition: %v, want both members", key, m)
		}
	}

	many := make([]string, 450)
	for i := range many {
		many[i] = fmt.Sprint("m", i)
	}
	mustNil(t, s.Apply(ctx(t), app,
		store.Op{Kind: store.OpSetAdd, Key: "many", TTL: longTTL, Members: many},
		store.Op{Kind: store.OpSetAdd, Key: "rest", TTL: longTTL, Members: many}), "add many")
	mustNil(t, s.Apply(ctx(t), app,
		store.Op{Kind: store.OpSetRemove, Key: "many", Members: many[:449]},
		store.Op{Kind: store.OpPut, Key: "p", Value: []byte("p"), TTL: longTTL}), "remove many")
	if m, _ := s.SetMembers(ctx(t), app, "rest"); len(m) != len(many) {
		t.Fatalf("a batch added %d of %d members", len(m), len(many))
	}
	if m, _ := s.SetMembers(ctx(t), app, "many"); len(m) != 1 || m[0] != "m449" {
		t.Fatalf("after removing all but the last: %v", m)
	}
}

// testBatchGuardTwice: a guard's key given twice in one batch still
// refuses a live record.
func testBatchGuardTwice(t *testing.T, s store.Store) {
	app := App(t)
	mustNil(t, s.Put(ctx(t), app, "taken", []byte("1"), longTTL), "put")
	err := s.Apply(ctx(t), app,
		store.Op{Kind: store.OpPut, Key: "token", Value: []byte("t"), TTL: longTTL},
		store.Op{Kind: store.OpAbsent, Key: "taken"},
		store.Op{Kind: store.OpAbsent, Key: "taken"})
	mustIs(t, err, store.ErrExists, "a guard given twice")
	_, err = s.Get(ctx(t), app, "token")
	mustIs(t, err, store.ErrNotFound, "write of a refused batch")
}
