package authz_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/aero2/aero2/server/servertest"
)

var mainRE = regexp.MustCompile(`(?s)<h1>.*</main>`)

// TestOneSignedOutPage: signing out on the account page, RP-initiated
// logout without a return address, and the proxy's sign-out all end on
// the same page, in the same words, each with a way to sign in again.
func TestOneSignedOutPage(t *testing.T) {
	e := start(t, providerConfig+`
routes:
  - {path: /app, upstream: "http://127.0.0.1:9"}
`, nil)
	ending := func(name string, p *servertest.Page) string {
		t.Helper()
		body := mainRE.FindString(p.Body)
		if p.Status != 200 || !strings.Contains(body, "<h1>Signed out</h1>") || !strings.Contains(body, "You are signed out.") || !strings.Contains(body, ">Sign in again</a>") {
			t.Fatalf("%s ended on %d at %s:\n%s", name, p.Status, p.URL, p.Body)
		}
		return regexp.MustCompile(`href="[^"]*"`).ReplaceAllString(body, `href=""`)
	}

	// 1. The account page's sign-out.
	b := e.browser()
	e.login(b, newFlow(e.web()), "alice")
	action, v := b.Get(e.in.URL+"/account").Form(t, "/logout")
	account := ending("account sign-out", b.PostForm(action, v))

	// 2. RP-initiated logout, confirmed, without post_logout_redirect_uri.
	e.login(b, newFlow(e.web()), "alice")
	action, v = b.Get(e.in.URL+"/oauth2/logout").Form(t, "/oauth2/logout")
	rp := ending("RP-initiated logout", b.PostForm(action, v))

	// 3. The proxy's own sign-out page, where its sign-out ends.
	proxy := ending("proxy sign-out", b.Get(e.in.URL+"/.aero2/signed_out"))

	if account != rp || rp != proxy {
		t.Errorf("the endings differ:\naccount: %s\nRP logout: %s\nproxy: %s", account, rp, proxy)
	}
	if strings.Contains(account, "Continue with") {
		t.Error("the signed-out page offers sign-in buttons: with auto_redirect it would sign straight back in")
	}
}
