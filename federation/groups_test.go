package federation

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/memory"
)

// TestGroupsPerIdentity: each linked identity keeps its own provider's
// groups; the user's are theirs together, the signing-in identity's first,
// prefixed for providers with prefix_groups; a linked identity's groups
// lapse GroupsMaxAge after its last sign-in; a provider no longer
// configured contributes nothing.
func TestGroupsPerIdentity(t *testing.T) {
	st := memory.New()
	defer st.Close()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	corp := Provider{ID: "corp", LinkByEmail: true}
	self := Provider{ID: "self", LinkByEmail: true, PrefixGroups: true}
	h := New(Options{Store: store.ForApp(st, "app"), Providers: []Provider{corp, self}, GroupsMaxAge: 24 * time.Hour,
		Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }})
	r := httptest.NewRequest("GET", "/", nil)
	signIn := func(p Provider, groups ...string) []string {
		t.Helper()
		u, _, err := h.upsertUser(r, p, Identity{Subject: "s-" + p.ID, Email: "alice@example.com", EmailVerified: true, Groups: groups})
		if err != nil {
			t.Fatal(err)
		}
		stored, err := st.GetUser(context.Background(), "app", u.ID)
		if err != nil || !slices.Equal(stored.Groups, u.Groups) {
			t.Fatalf("stored user %+v, err %v; returned groups %v", stored, err, u.Groups)
		}
		return u.Groups
	}
	if got := signIn(corp, "admins", "eng"); !slices.Equal(got, []string{"admins", "eng"}) {
		t.Errorf("first sign-in: %v", got)
	}
	// A second provider, linked by email: its groups join, prefixed; its
	// "admins" is not corp's.
	now = now.Add(time.Hour)
	if got := signIn(self, "admins", "gamers"); !slices.Equal(got, []string{"self:admins", "self:gamers", "admins", "eng"}) {
		t.Errorf("sign-in through the second provider: %v", got)
	}
	// Back through corp, which withdrew "admins": corp's groups are
	// replaced, self's stay.
	now = now.Add(time.Hour)
	if got := signIn(corp, "eng"); !slices.Equal(got, []string{"eng", "self:admins", "self:gamers"}) {
		t.Errorf("corp again: %v", got)
	}
	// A day after its last sign-in, self's groups no longer count for
	// sign-ins through corp; nor corp's for self, two days on.
	now = now.Add(24 * time.Hour)
	if got := signIn(corp, "eng"); !slices.Equal(got, []string{"eng"}) {
		t.Errorf("corp a day after self's last sign-in: %v", got)
	}
	now = now.Add(48 * time.Hour)
	if got := signIn(self, "gamers"); !slices.Equal(got, []string{"self:gamers"}) {
		t.Errorf("self two days after corp's: %v", got)
	}
	// A provider removed from the configuration vouches for nothing.
	h2 := New(Options{Store: store.ForApp(st, "app"), Providers: []Provider{self}, GroupsMaxAge: 1000 * time.Hour,
		Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }})
	u, _, err := h2.upsertUser(r, self, Identity{Subject: "s-self", Email: "alice@example.com", EmailVerified: true, Groups: []string{"gamers"}})
	if err != nil || !slices.Equal(u.Groups, []string{"self:gamers"}) {
		t.Errorf("with corp gone: %v %v", u.Groups, err)
	}
}
