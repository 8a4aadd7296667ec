package github_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/federation/github/githubfake"
	"github.com/aero2/aero2/server"
	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store"
)

var octo = githubfake.User{
	ID: 583231, Login: "octocat", Name: "The Octocat", AvatarURL: "https://avatars.example/u/583231",
	PublicEmail: "octo@public.example", // the profile's email: never used
	Emails: []githubfake.Email{
		{Email: "octo-old@example.org", Verified: true},
		{Email: "octocat@example.com", Primary: true, Verified: true},
	},
	Orgs: map[string]string{"acme": "active", "pending-org": "pending"},
	Teams: []githubfake.Team{
		{Org: "acme", Slug: "platform", Name: "Platform"},
		{Org: "acme", Slug: "sre", Name: "SRE"},
		{Org: "elsewhere", Slug: "ghosts", Name: "Ghosts"},
	},
}

func aero2Config(gh *githubfake.Server, extra string) string {
	return fmt.Sprintf(`
insecure_dev: true
server:
  public_url: "{{.URL}}"
secrets:
  cookie_keys: ["%s"]
  storage_key: "%s"
identity_providers:
  - id: github
    type: github
    name: GitHub
    config:
      client_id: "%s"
      client_secret: "%s"
      base_url: "%s"
      timeout: 1s
%s`, servertest.CookieKey, servertest.StorageKey, gh.ClientID, gh.ClientSecret, gh.URL, extra)
}

const authorize = "/rp/authorize?idp=github&redirect_uri=/account"

func TestSignIn(t *testing.T) {
	for name, st := range map[string]func(t *testing.T) store.Store{
		"memory": func(*testing.T) store.Store { return nil },
		"redis":  func(t *testing.T) store.Store { return servertest.SharedStore(t) },
	} {
		t.Run(name, func(t *testing.T) {
			gh := githubfake.Start(t, octo)
			in := servertest.Start(t, aero2Config(gh, ""), st(t))
			b := servertest.NewBrowser(t)
			_, loc := b.Redirect(in.URL + authorize)
			u, _ := url.Parse(loc)
			q := u.Query()
			if !strings.HasPrefix(loc, gh.URL+"/login/oauth/authorize?") || q.Get("code_challenge_method") != "S256" || q.Get("state") == "" ||
				q.Get("scope") != "read:user user:email" || q.Get("redirect_uri") != in.URL+"/rp/callback/github" {
				t.Errorf("authorization request: %s", loc)
			}
			p := b.Get(in.URL + authorize)
			if p.Status != 200 || p.URL.Path != "/account" {
				t.Fatalf("ended at %d %s:\n%s", p.Status, p.URL, p.Body)
			}
			for _, want := range []string{"The Octocat", "octocat@example.com", `<span class="ok">verified</span>`, "<dt>Username</dt><dd>octocat</dd>"} {
				if !strings.Contains(p.Body, want) {
					t.Errorf("account page lacks %q", want)
				}
			}
			if strings.Contains(p.Body, "octo@public.example") || strings.Contains(p.Body, "octo-old@") {
				t.Error("an email other than the primary verified one was used")
			}
			// The user is linked by GitHub's numeric ID.
			usr, _, err := in.Server.Store().UserByIdentity(t.Context(), "default", "github", "583231")
			if err != nil || usr.Email != "octocat@example.com" {
				t.Fatalf("user by (github, 583231): %v %+v", err, usr)
			}
		})
	}
}

func TestPrimaryEmailUnverified(t *testing.T) {
	u := octo
	u.Emails = []githubfake.Email{{Email: "octocat@example.com", Primary: true}, {Email: "other@example.com", Verified: true}}
	gh := githubfake.Start(t, u)
	in := servertest.Start(t, aero2Config(gh, ""), nil)
	p := servertest.NewBrowser(t).Get(in.URL + authorize)
	if p.Status != 200 || strings.Contains(p.Body, "example.com") {
		t.Fatalf("unverified primary email was used: %d\n%s", p.Status, p.Body)
	}
}

func TestOrgsAndTeams(t *testing.T) {
	stranger := githubfake.User{ID: 9, Login: "stranger", Emails: []githubfake.Email{{Email: "s@example.com", Primary: true, Verified: true}},
		Orgs: map[string]string{"other": "active"}}
	for _, c := range []struct {
		name, orgs string
		user       githubfake.User
		ok         bool
		groups     string
	}{
		{"member of the org", `[{name: acme}]`, octo, true, "acme:platform, acme:sre"},
		{"outside the org", `[{name: acme}]`, stranger, false, ""},
		{"invitation pending", `[{name: pending-org}]`, octo, false, ""},
		{"one of several orgs", `[{name: nope}, {name: ACME}]`, octo, true, "acme:platform, acme:sre"},
		{"in a required team", `[{name: acme, teams: [SRE]}]`, octo, true, "acme:platform, acme:sre"},
		{"not in the required team", `[{name: acme, teams: [security]}]`, octo, false, ""},
		{"team of another org does not count", `[{name: acme, teams: [ghosts]}]`, octo, false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			gh := githubfake.Start(t, c.user)
			in := servertest.Start(t, aero2Config(gh, "      orgs: "+c.orgs+"\n"), nil)
			b := servertest.NewBrowser(t)
			if _, loc := b.Redirect(in.URL + authorize); !strings.Contains(loc, "read%3Aorg") {
				t.Errorf("org restriction without read:org scope: %s", loc)
			}
			p := b.Get(in.URL + authorize)
			if c.ok && (p.Status != 200 || !strings.Contains(p.Body, "<dt>Groups</dt><dd>"+c.groups+"</dd>")) {
				t.Fatalf("%d:\n%s", p.Status, p.Body)
			}
			if !c.ok && (p.Status != 403 || !strings.Contains(p.Body, "Your GitHub account may not sign in")) {
				t.Fatalf("%d:\n%s", p.Status, p.Body)
			}
		})
	}
}

func TestTeamsPagination(t *testing.T) {
	u := octo
	u.Teams = nil
	for i := range 7 {
		u.Teams = append(u.Teams, githubfake.Team{Org: "acme", Slug: fmt.Sprintf("t%d", i)})
	}
	gh := githubfake.Start(t, u)
	gh.TeamsPageSize(3)
	in := servertest.Start(t, aero2Config(gh, "      orgs: [{name: acme, teams: [t6]}]\n"), nil)
	p := servertest.NewBrowser(t).Get(in.URL + authorize)
	if p.Status != 200 || !strings.Contains(p.Body, "acme:t0, acme:t1, acme:t2, acme:t3, acme:t4, acme:t5, acme:t6") {
		t.Fatalf("%d:\n%s", p.Status, p.Body)
	}

	// A next-page link off the API would carry the user's token away.
	var stolen atomic.Int32
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stolen.Add(1)
		w.Write([]byte("[]"))
	}))
	defer evil.Close()
	gh.NextLink(evil.URL + "/api/v3/user/teams?page=2")
	if p := servertest.NewBrowser(t).Get(in.URL + authorize); p.Status != 502 || stolen.Load() != 0 {
		t.Fatalf("pagination off the API was followed (%d requests): %d\n%s", stolen.Load(), p.Status, p.Body)
	}
}

func TestDeniedSlowAndBroken(t *testing.T) {
	gh := githubfake.Start(t, octo)
	in := servertest.Start(t, aero2Config(gh, ""), nil)

	gh.Deny(true)
	p := servertest.NewBrowser(t).Get(in.URL + authorize)
	if p.Status != 403 || !strings.Contains(p.Body, "declined the sign-in") || strings.Contains(p.Body, "denied your application") {
		t.Fatalf("access_denied: %d\n%s", p.Status, p.Body)
	}
	gh.Deny(false)

	// GitHub would answer after 10s; the 1s timeout ends the sign-in.
	gh.TokenDelay(10 * time.Second)
	if p := servertest.NewBrowser(t).Get(in.URL + authorize); p.Status != 502 || !strings.Contains(p.Body, "could not complete the sign-in with GitHub") {
		t.Fatalf("slow token endpoint: %d\n%s", p.Status, p.Body)
	}
	gh.TokenDelay(0)

	// A code GitHub does not know (its 200-with-error answer).
	b := servertest.NewBrowser(t)
	cb := b.FollowUntil(in.URL+authorize, in.URL+"/rp/callback/")
	u, _ := url.Parse(cb)
	q := u.Query()
	q.Set("code", "not-a-code")
	u.RawQuery = q.Encode()
	if p := b.Get(u.String()); p.Status != 502 {
		t.Fatalf("unknown code: %d\n%s", p.Status, p.Body)
	}

	// GitHub down.
	gh.HTTP.Close()
	if p := servertest.NewBrowser(t).Get(in.URL + "/rp/callback/github?code=x&state=y"); p.Status != 400 {
		t.Fatalf("callback without a started sign-in: %d", p.Status)
	}
}

func TestMalformedAndOversizedAnswers(t *testing.T) {
	gh := githubfake.Start(t, octo)
	in := servertest.Start(t, aero2Config(gh, ""), nil)
	for _, c := range []struct {
		name string
		raw  string
		pad  int
	}{
		{"not JSON", "<html>Service Unavailable</html>", 0},
		{"wrong types", `{"id": "583231", "login": 7}`, 0},
		{"no id", `{"login": "octocat"}`, 0},
		{"negative id", `{"id": -1, "login": "octocat"}`, 0},
		{"larger than 1 MiB", "", 2 << 20},
	} {
		t.Run(c.name, func(t *testing.T) {
			gh.UserAnswer(c.raw, c.pad)
			if p := servertest.NewBrowser(t).Get(in.URL + authorize); p.Status != 502 {
				t.Fatalf("%d:\n%s", p.Status, p.Body)
			}
		})
	}
	gh.UserAnswer("", 1000) // a large but sane answer is fine
	if p := servertest.NewBrowser(t).Get(in.URL + authorize); p.Status != 200 {
		t.Fatalf("%d:\n%s", p.Status, p.Body)
	}
}

func TestBadConfig(t *testing.T) {
	gh := githubfake.Start(t, octo)
	cfg := strings.Replace(aero2Config(gh, "      orgs: [{name: \"a/b\"}, {name: x, teams: [\"\"]}]\n      api_url: \"ftp://x\"\n"), "insecure_dev: true", "", 1)
	c, err := parse(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = check(c)
	for _, want := range []string{"base_url: plain http is allowed only for a loopback host with insecure_dev", "orgs[0].name", "orgs[1].teams[0]: empty team name", "api_url"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("problems %v lack %q", err, want)
		}
	}
}

func parse(src string) (*config.Config, error) {
	src = strings.ReplaceAll(src, "{{.URL}}", "https://auth.example.com")
	return config.Parse("aero2.yaml", []byte(src), func(string) (string, bool) { return "", false })
}

func check(c *config.Config) error { return server.Check(context.Background(), c, nil) }
