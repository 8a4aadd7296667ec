package federation

import (
	"log/slog"
	"slices"
	"strings"
	"testing"
)

func TestCleanIdentity(t *testing.T) {
	h := &Handler{log: slog.New(slog.DiscardHandler)}
	for _, c := range []struct {
		in, want string
		verified bool
	}{
		{"alice@Example.COM", "alice@example.com", true},
		// Strict parsing before any domain check: none of these is one
		// plain mailbox at example.com.
		{"a@evil.com@example.com", "", false},
		{"Eve <eve@example.com>", "", false},
		{"eve@example.com (admin)", "", false},
		{`"eve@example.com"@evil.com`, "", false},
		{"eve@example.com\n", "", false},
		{"", "", false},
	} {
		got := h.cleanIdentity("idp", Identity{Subject: "s", Email: c.in, EmailVerified: true})
		if got.Email != c.want || got.EmailVerified != c.verified {
			t.Errorf("%q: email %q verified %v, want %q %v", c.in, got.Email, got.EmailVerified, c.want, c.verified)
		}
	}
	// No email, no verified flag.
	if got := h.cleanIdentity("idp", Identity{EmailVerified: true}); got.EmailVerified {
		t.Error("verified without an email")
	}
}

func TestCleanIdentityBoundsProfile(t *testing.T) {
	h := &Handler{log: slog.New(slog.DiscardHandler)}
	many := make([]string, 0, 1000)
	for i := range 1000 {
		many = append(many, strings.Repeat("g", i%300))
	}
	got := h.cleanIdentity("idp", Identity{
		Name: strings.Repeat("n", 10000), Groups: append(many, "admins", "admins"),
		Picture: "javascript:alert(1)",
	})
	if len(got.Name) > maxProfileField || len(got.Groups) > maxGroups || got.Picture != "" {
		t.Errorf("name %d bytes, %d groups, picture %q", len(got.Name), len(got.Groups), got.Picture)
	}
	for _, g := range got.Groups {
		if g == "" || len(g) > maxGroupName {
			t.Errorf("group of %d bytes kept", len(g))
		}
	}
	for _, pic := range []string{"http://tracker.example/p.gif", "data:image/png;base64,AAAA", "//cdn.example/x.png"} {
		if got := h.cleanIdentity("idp", Identity{Picture: pic}); got.Picture != "" {
			t.Errorf("picture %q kept", pic)
		}
	}
	if got := h.cleanIdentity("idp", Identity{Picture: "https://avatars.example/u/1"}); got.Picture == "" {
		t.Error("an https picture was dropped")
	}
	if got := h.cleanIdentity("idp", Identity{Groups: []string{"a", "b", "a"}}); !slices.Equal(got.Groups, []string{"a", "b"}) {
		t.Errorf("groups %v", got.Groups)
	}
}
