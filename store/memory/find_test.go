package memory

import (
	"strings"
	"testing"
)

// TestFindIsTheJoinedKey: find reads the entry k names, for keys that fit
// its stack buffer and ones that do not, misses what k would miss (an
// application's key is not another's), and allocates nothing for a key of
// the length Aero2's records have.
func TestFindIsTheJoinedKey(t *testing.T) {
	long := strings.Repeat("x", 500)
	m := map[string]int{k("app", "key"): 1, k("app", long): 2, k("ap", "pkey"): 3, k("app", ""): 4}
	for _, c := range []struct {
		app, key string
		want     int
		found    bool
	}{
		{"app", "key", 1, true},
		{"app", long, 2, true},
		{"ap", "pkey", 3, true},
		{"app", "", 4, true},
		{"ap", "p\x00key", 0, false},
		{"app", "ke", 0, false},
		{"other", "key", 0, false},
		{"app", long + "y", 0, false},
	} {
		if v, ok := find(m, c.app, c.key); v != c.want || ok != c.found {
			t.Errorf("find(%q, %.20q) = %d, %v; want %d, %v", c.app, c.key, v, ok, c.want, c.found)
		}
	}
	name := strings.Repeat("n", 86) // oauthstore's hashed names are 43-86 bytes
	m[k("default", name)] = 5
	if n := testing.AllocsPerRun(100, func() {
		if v, _ := find(m, "default", name); v != 5 {
			t.Fatal("not found")
		}
	}); n != 0 {
		t.Errorf("find allocates %v times per read", n)
	}
}
