package federation_test

import (
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store"
)

var endFormRE = regexp.MustCompile(`name="session" value="([^"]+)"`)

// handles lists the session handles of the account page's "Sign out"
// buttons (every session but the current one).
func handles(p *servertest.Page) []string {
	var out []string
	for _, m := range endFormRE.FindAllStringSubmatch(p.Body, -1) {
		out = append(out, m[1])
	}
	return out
}

func signedOut(b *servertest.Browser, in *servertest.Instance) bool {
	return strings.HasSuffix(b.Get(in.URL+"/account").URL.Path, "/login")
}

func TestAccountPage(t *testing.T) {
	for name, st := range map[string]func(*testing.T) store.Store{
		"memory": func(*testing.T) store.Store { return nil },
		"redis":  func(t *testing.T) store.Store { return servertest.SharedStore(t) },
	} {
		t.Run(name, func(t *testing.T) {
			in := servertest.Start(t, servertest.DevConfig, st(t))
			if p := servertest.NewBrowser(t).Get(in.URL + "/account"); !strings.HasSuffix(p.URL.Path, "/login") || p.URL.Query().Get("return_to") == "" {
				t.Fatalf("/account without a session: %s", p.URL)
			}

			laptop, phone, tablet := servertest.NewBrowser(t), servertest.NewBrowser(t), servertest.NewBrowser(t)
			laptop.SignInDev(in.URL+"/login", "alice")
			tablet.SignInDev(in.URL+"/login", "alice")
			p := phone.SignInDev(in.URL+"/login", "alice")
			for _, want := range []string{"Linked identities", "<strong>dev</strong>: alice\n<small>alice@example.com <span class=\"ok\">verified</span> · linked ", "Active sessions", "<em>(this browser)</em>", `aria-label="Sign out this session: an unknown browser, signed in `} {
				if !strings.Contains(p.Body, want) {
					t.Errorf("account page lacks %q:\n%s", want, p.Body)
				}
			}
			others := handles(p)
			if len(others) != 2 {
				t.Fatalf("phone sees %d other sessions, want 2:\n%s", len(others), p.Body)
			}

			// Another user cannot end alice's sessions, even with a valid
			// form of their own.
			mallory := servertest.NewBrowser(t)
			servertest.NewBrowser(t).SignInDev(in.URL+"/login", "eve") // so eve's page has an end-session form
			mp := mallory.SignInDev(in.URL+"/login", "eve")
			action, v := mp.Form(t, "/account/sessions/end")
			if action == "" {
				t.Fatal("no end-session form")
			}
			v.Set("session", others[0])
			mallory.PostForm(action, v)
			mallory.PostForm(action, url.Values{"csrf": v["csrf"], "session": {others[1]}})
			if signedOut(laptop, in) || signedOut(tablet, in) {
				t.Fatal("another user's form ended alice's session")
			}

			// Without or with a forged CSRF token: refused.
			action, v = p.Form(t, "/account/sessions/end")
			for _, csrf := range []string{"", "forged"} {
				if r := phone.PostForm(action, url.Values{"csrf": {csrf}, "session": {others[0]}}); r.Status != 403 {
					t.Errorf("end session with csrf %q: %d", csrf, r.Status)
				}
			}
			// eve's CSRF token is not alice's.
			_, ev := mp.Form(t, "/account/sessions/end")
			if r := phone.PostForm(action, url.Values{"csrf": ev["csrf"], "session": {others[0]}}); r.Status != 403 {
				t.Errorf("end session with another session's csrf: %d", r.Status)
			}
			if signedOut(laptop, in) || signedOut(tablet, in) {
				t.Fatal("a refused form ended a session")
			}

			// The phone signs one of the others out; exactly that one ends.
			v.Set("session", others[0])
			r := phone.PostForm(action, v)
			if r.Status != 200 || !strings.Contains(r.Body, "The session was signed out") || len(handles(r)) != 1 {
				t.Fatalf("after ending one session: %d, %d others\n%s", r.Status, len(handles(r)), r.Body)
			}
			ended := 0
			for _, b := range []*servertest.Browser{laptop, tablet} {
				if signedOut(b, in) {
					ended++
				}
			}
			if ended != 1 || signedOut(phone, in) {
				t.Fatalf("%d of the other two sessions ended (want 1); phone signed out: %v", ended, signedOut(phone, in))
			}

			// Sign out (this browser only).
			p = phone.Get(in.URL + "/account")
			action, v = p.Form(t, "/logout")
			if r := phone.PostForm(action, v); !strings.Contains(r.Body, "You are signed out") {
				t.Fatalf("sign out: %d\n%s", r.Status, r.Body)
			}
			if !signedOut(phone, in) {
				t.Error("phone still signed in after signing out")
			}
			if signedOut(laptop, in) && signedOut(tablet, in) {
				t.Error("signing out of one browser ended the remaining session too")
			}
		})
	}
}
