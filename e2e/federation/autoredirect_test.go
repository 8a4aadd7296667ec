package federation_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aero2/aero2/server/servertest"
)

// TestAutoRedirect: with auto_redirect and one identity provider, the
// sign-in page sends the browser straight to it, keeping where to return;
// without it, or right after signing out, the page is shown.
func TestAutoRedirect(t *testing.T) {
	in := servertest.Start(t, servertest.DevConfig+"auto_redirect: true\n", nil)
	b := servertest.NewBrowser(t)
	login := in.URL + "/login?" + url.Values{"return_to": {in.URL + "/account"}}.Encode()
	res, err := b.NoRedirects().Client.Get(login)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc, _ := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusFound || loc == nil || loc.Path != "/rp/authorize" || loc.Query().Get("idp") != "dev" || loc.Query().Get("redirect_uri") != in.URL+"/account" {
		t.Fatalf("sign-in page with auto_redirect: %d, Location %q", res.StatusCode, res.Header.Get("Location"))
	}
	// The whole way: a protected page, then the dev provider, then back.
	if p := b.SignInDev(in.URL+"/account", "alice"); !strings.Contains(p.Body, "Signed in as Alice Admin") {
		t.Fatalf("sign-in through auto_redirect ended at %s", p.URL)
	}
	// A refused return_to is still refused, not followed.
	if p := b.Get(in.URL + "/login?return_to=https://evil.example/"); p.Status != http.StatusBadRequest {
		t.Fatalf("auto_redirect with a foreign return_to: %d", p.Status)
	}
	// After signing out, the page: auto_redirect would sign the user back
	// in at once wherever the provider still has a session.
	action, v := b.Get(in.URL+"/account").Form(t, "/logout")
	if p := b.PostForm(action, v); p.Status != http.StatusOK || !strings.Contains(p.Body, "You are signed out") || !strings.Contains(p.Body, ">Sign in again<") {
		t.Fatalf("after sign-out with auto_redirect: %d at %s\n%s", p.Status, p.URL, p.Body)
	}

	// Without auto_redirect: the chooser.
	plain := servertest.Start(t, servertest.DevConfig, nil)
	if p := servertest.NewBrowser(t).Get(plain.URL + "/login"); p.Status != http.StatusOK || !strings.Contains(p.Body, "Continue with dev") {
		t.Fatalf("sign-in page without auto_redirect: %d at %s", p.Status, p.URL)
	}
}
