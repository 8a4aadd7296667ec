package redis

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/aero2/aero2/store"
)

// TestWithDisabledIsTheEncoding: UpdateUser's record with Disabled set is
// the one json.Marshal makes, for users with every field empty, full, or
// holding what a provider may send (quotes, braces, escapes, a
// `"disabled":false}`-looking name). A field added after Disabled in
// store.User fails it.
func TestWithDisabledIsTheEncoding(t *testing.T) {
	now := time.Date(2026, 12, 1, 19, 0, 0, 123, time.UTC)
	users := []store.User{
		{},
		{ID: "u1", App: "a"},
		{ID: "u2", App: "a", Name: `Eve "}, "disabled":false}`, PreferredUsername: "{x}", Email: "e@x.org", EmailVerified: true,
			Groups: []string{"a", `\u0000"`, "}"}, Picture: "https://x/p.png", CreatedAt: now, LastLogin: now},
		{ID: "u3", Groups: []string{}},
	}
	for _, u := range users {
		uj, err := json.Marshal(&u)
		if err != nil {
			t.Fatal(err)
		}
		d := u
		d.Disabled = true
		want, _ := json.Marshal(&d)
		if got := withDisabled(uj); string(got) != string(want) {
			t.Errorf("withDisabled(%s)\n = %s\nwant %s", uj, got, want)
		}
	}
}
