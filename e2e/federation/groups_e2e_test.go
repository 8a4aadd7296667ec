package federation_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store"
)

// groupsConfig has two dev providers that link by email: corp, whose
// groups a policy is written for, and selfserve, where anyone can make a
// group called "admins". prefix is selfserve's prefix_groups.
func groupsConfig(upstream string, prefix bool) string {
	p := "false"
	if prefix {
		p = "true"
	}
	return `
insecure_dev: true
server: {public_url: "{{.URL}}"}
secrets: {cookie_keys: ["` + servertest.CookieKey + `"], storage_key: "` + servertest.StorageKey + `"}
identity_providers:
  - id: corp
    type: dev
    link_by_email: true
    config: {users: [{username: alice, email: alice@example.com, groups: [engineering]}]}
  - id: selfserve
    type: dev
    link_by_email: true
    prefix_groups: ` + p + `
    config: {users: [{username: alice, email: alice@example.com, groups: [admins]}]}
routes:
  - {path: /admin, upstream: "` + upstream + `", policy: {allowed_groups: [admins]}}
  - {path: /eng, upstream: "` + upstream + `", policy: {allowed_groups: [engineering]}}
`
}

// accountGroups reads the groups off the account page.
func accountGroups(t *testing.T, p *servertest.Page) string {
	t.Helper()
	_, rest, ok := strings.Cut(p.Body, "<dt>Groups</dt><dd>")
	g, _, _ := strings.Cut(rest, "</dd>")
	if !ok {
		t.Fatalf("not on the account page: %d %s", p.Status, p.URL)
	}
	return g
}

// TestGroupsOfOneProviderDoNotSatisfyAnother: signing in through a second
// linked provider keeps the first one's groups, and with prefix_groups
// the second provider's self-made "admins" does not pass a policy for
// admins. Without it, it would: that is what the option is for.
func TestGroupsOfOneProviderDoNotSatisfyAnother(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	defer up.Close()
	for name, st := range map[string]func(*testing.T) store.Store{
		"memory": func(*testing.T) store.Store { return nil },
		"redis":  func(t *testing.T) store.Store { return servertest.SharedStore(t) },
	} {
		t.Run(name, func(t *testing.T) {
			in := servertest.Start(t, groupsConfig(up.URL, true), st(t))
			corp := servertest.NewBrowser(t)
			p := corp.SignInDev(in.URL+"/rp/authorize?idp=corp&redirect_uri=/account", "alice")
			first := userID(t, p)
			if g := accountGroups(t, p); g != "engineering" {
				t.Errorf("after corp: groups %q", g)
			}
			self := servertest.NewBrowser(t)
			p = self.SignInDev(in.URL+"/rp/authorize?idp=selfserve&redirect_uri=/account", "alice")
			if userID(t, p) != first {
				t.Fatal("the selfserve identity did not link to alice")
			}
			if g := accountGroups(t, p); g != "selfserve:admins, engineering" {
				t.Errorf("after selfserve: groups %q (corp's must stay, selfserve's be prefixed)", g)
			}
			// The proxy signs in at Aero2's own provider, in the session
			// selfserve started: its groups claim is the user's groups.
			if p := self.Get(in.URL + "/admin/x"); p.Status != http.StatusForbidden {
				t.Errorf("selfserve's admins on a route for admins: %d", p.Status)
			}
			if p := self.Get(in.URL + "/eng/x"); p.Status != http.StatusOK {
				t.Errorf("corp's engineering, signed in through selfserve: %d", p.Status)
			}
		})
	}
	t.Run("without prefix_groups", func(t *testing.T) {
		in := servertest.Start(t, groupsConfig(up.URL, false), nil)
		servertest.NewBrowser(t).SignInDev(in.URL+"/rp/authorize?idp=corp&redirect_uri=/account", "alice")
		self := servertest.NewBrowser(t)
		self.SignInDev(in.URL+"/rp/authorize?idp=selfserve&redirect_uri=/account", "alice")
		if p := self.Get(in.URL + "/admin/x"); p.Status != http.StatusOK {
			t.Errorf("without prefix_groups, selfserve's admins are admins: %d", p.Status)
		}
	})
}
