package federation_test

import (
	"strings"
	"testing"

	"github.com/aero2/aero2/federation/github/githubfake"
	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store"
)

// userID reads the user ID off the account page.
func userID(t *testing.T, p *servertest.Page) string {
	t.Helper()
	_, rest, ok := strings.Cut(p.Body, "<dt>User ID</dt><dd><code>")
	id, _, _ := strings.Cut(rest, "<")
	if !ok || id == "" {
		t.Fatalf("not on the account page: %d %s\n%s", p.Status, p.URL, p.Body)
	}
	return id
}

func devLinks(cfg string, link bool) string {
	if !link {
		return cfg
	}
	return strings.Replace(cfg, "    type: dev\n", "    type: dev\n    link_by_email: true\n", 1)
}

// TestLinkByEmail signs in with the dev provider, then with GitHub, and
// checks whether the GitHub identity joined the dev user.
func TestLinkByEmail(t *testing.T) {
	verified := func(addr string) []githubfake.Email {
		return []githubfake.Email{{Email: addr, Primary: true, Verified: true}}
	}
	for _, c := range []struct {
		name        string
		devUser     string // alice: alice@example.com verified; eve: eve@example.org unverified
		devLink     bool
		githubLink  bool
		emails      []githubfake.Email
		wantLinked  bool
		description string
	}{
		{"both trusted, same verified email", "alice", true, true, verified("alice@example.com"), true, ""},
		{"case of the address differs", "alice", true, true, verified("ALICE@Example.COM"), true, ""},
		{"GitHub not trusted for linking", "alice", true, false, verified("alice@example.com"), false, ""},
		{"existing identity's provider not trusted (pre-hijack)", "alice", false, true, verified("alice@example.com"), false, ""},
		{"GitHub email unverified", "alice", true, true, []githubfake.Email{{Email: "alice@example.com", Primary: true}}, false, ""},
		{"existing email unverified", "eve", true, true, verified("eve@example.org"), false, ""},
		{"other email", "alice", true, true, verified("alice@example.net"), false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			for name, st := range map[string]func(*testing.T) store.Store{
				"memory": func(*testing.T) store.Store { return nil },
				"redis":  func(t *testing.T) store.Store { return servertest.SharedStore(t) },
			} {
				t.Run(name, func(t *testing.T) {
					gh := githubfake.Start(t, githubfake.User{ID: 77, Login: "gh-" + c.devUser, Emails: c.emails})
					in := servertest.Start(t, devLinks(githubConfig(gh, c.githubLink), c.devLink), st(t))
					b := servertest.NewBrowser(t)
					first := userID(t, b.SignInDev(in.URL+devAuthorize, c.devUser))
					p := servertest.NewBrowser(t).Get(in.URL + "/rp/authorize?idp=github&redirect_uri=/account")
					second := userID(t, p)
					if linked := first == second; linked != c.wantLinked {
						t.Fatalf("linked = %v, want %v", linked, c.wantLinked)
					}
					if c.wantLinked && (!strings.Contains(p.Body, "<strong>dev</strong>: ") || !strings.Contains(p.Body, "<strong>github</strong>: ")) {
						t.Errorf("account page does not list both identities:\n%s", p.Body)
					}
					// Signing in again finds the same user by identity.
					if again := userID(t, servertest.NewBrowser(t).Get(in.URL+"/rp/authorize?idp=github&redirect_uri=/account")); again != second {
						t.Errorf("second GitHub sign-in: user %s, first %s", again, second)
					}
				})
			}
		})
	}
}

func TestAmbiguousEmailLinksNothing(t *testing.T) {
	// Two users whose dev identities have the same verified address (as
	// an import or an old bug could leave them): a third identity with
	// that address cannot choose, and gets a user of its own.
	gh := githubfake.Start(t, githubfake.User{ID: 5, Login: "a", Emails: []githubfake.Email{{Email: "alice@example.com", Primary: true, Verified: true}}})
	in := servertest.Start(t, devLinks(githubConfig(gh, true), true), nil)
	st, ctx := in.Server.Store(), t.Context()
	for _, id := range []string{"u1", "u2"} {
		u := &store.User{ID: id, App: "default", Email: "alice@example.com", EmailVerified: true}
		link := &store.Identity{App: "default", IDP: "dev", Subject: "s-" + id, UserID: id, Email: "alice@example.com", EmailVerified: true}
		if err := st.CreateUser(ctx, u, link); err != nil {
			t.Fatal(err)
		}
	}
	g := userID(t, servertest.NewBrowser(t).Get(in.URL+"/rp/authorize?idp=github&redirect_uri=/account"))
	if g == "u1" || g == "u2" {
		t.Fatalf("the GitHub identity was linked to %s", g)
	}
}
