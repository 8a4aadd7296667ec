package store_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/aero2/aero2/store"
)

// TestCompact: a repeated OpAbsent goes, set additions of one key merge
// (members of both, the longer TTL, none if either has none) unless an op
// of that key lies between, and everything else stays, in order.
func TestCompact(t *testing.T) {
	add := func(key string, ttl time.Duration, members ...string) store.Op {
		return store.Op{Kind: store.OpSetAdd, Key: key, TTL: ttl, Members: members}
	}
	absent := func(key string) store.Op { return store.Op{Kind: store.OpAbsent, Key: key} }
	put := func(key string) store.Op {
		return store.Op{Kind: store.OpPut, Key: key, Value: []byte("v"), TTL: time.Hour}
	}
	create := func(key string) store.Op {
		return store.Op{Kind: store.OpCreate, Key: key, Value: []byte("1"), TTL: time.Hour}
	}
	take := func(key string) store.Op { return store.Op{Kind: store.OpTake, Key: key} }
	remove := func(key string, members ...string) store.Op {
		return store.Op{Kind: store.OpSetRemove, Key: key, Members: members}
	}
	for _, tc := range []struct {
		name     string
		in, want []store.Op
	}{
		{"refresh",
			[]store.Op{create("used"), remove("grant", "a:old"), put("at"), add("grant", time.Minute, "a:new"), absent("stone"),
				put("rt"), add("grant", time.Hour, "r:new"), absent("stone")},
			[]store.Op{create("used"), remove("grant", "a:old"), put("at"), add("grant", time.Hour, "a:new", "r:new"), absent("stone"),
				put("rt")}},
		{"shorter later", []store.Op{add("s", time.Hour, "a"), add("s", time.Minute, "b")}, []store.Op{add("s", time.Hour, "a", "b")}},
		{"forever first", []store.Op{add("s", 0, "a"), add("s", time.Minute, "b")}, []store.Op{add("s", 0, "a", "b")}},
		{"forever later", []store.Op{add("s", time.Minute, "a"), add("s", 0, "b")}, []store.Op{add("s", 0, "a", "b")}},
		{"three", []store.Op{add("s", time.Minute, "a"), put("p"), add("s", time.Second, "b"), add("s", time.Hour, "c")},
			[]store.Op{add("s", time.Hour, "a", "b", "c"), put("p")}},
		{"removal between", []store.Op{add("s", time.Minute, "a"), remove("s", "a"), add("s", time.Minute, "a")},
			[]store.Op{add("s", time.Minute, "a"), remove("s", "a"), add("s", time.Minute, "a")}},
		{"record of the key between", []store.Op{add("s", time.Minute, "a"), put("s"), add("s", time.Minute, "b")},
			[]store.Op{add("s", time.Minute, "a"), put("s"), add("s", time.Minute, "b")}},
		{"other sets", []store.Op{add("s", time.Minute, "a"), add("t", time.Minute, "b")}, []store.Op{add("s", time.Minute, "a"), add("t", time.Minute, "b")}},
		{"absent guards", []store.Op{absent("x"), absent("y"), absent("x"), absent("y")}, []store.Op{absent("x"), absent("y")}},
		{"writing guards stay", []store.Op{create("c"), create("c"), take("t"), take("t")}, []store.Op{create("c"), create("c"), take("t"), take("t")}},
		{"none", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := store.Compact(append([]store.Op(nil), tc.in...)); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Compact =\n%v\nwant\n%v", got, tc.want)
			}
		})
	}
	// Merging does not append into the spare room of an op's members,
	// which may be the caller's.
	room := []string{"a", "mine"}
	store.Compact([]store.Op{add("s", time.Minute, room[:1]...), add("s", time.Minute, "b")})
	if room[1] != "mine" {
		t.Fatalf("Compact wrote into the caller's array: %v", room)
	}
}
