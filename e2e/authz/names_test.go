package authz_test

import (
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// TestNamesPeopleSee: every page of the provider names the application by
// its display name — the issuer's host by default, display_name when set —
// and never by the internal name "default": the consent page, the dev
// provider's picker, an authorization error, RP-initiated logout.
func TestNamesPeopleSee(t *testing.T) {
	for name, tc := range map[string]struct{ extra, want string }{
		"default":      {"", ""}, // the issuer's host, filled in below
		"display_name": {"display_name: Example Corp\n", "Example Corp"},
	} {
		t.Run(name, func(t *testing.T) {
			e := start(t, providerConfig+tc.extra, nil)
			want := tc.want
			if want == "" {
				want = strings.TrimPrefix(e.in.URL, "http://")
			}
			header := `<span class="app">` + want + `</span>`
			b := e.browser()
			third := e.oauth("third", thirdSecret, thirdRedirect, oauth2.AuthStyleInParams)
			pages := map[string]string{}
			// The dev provider's user picker, on the way to sign in.
			picker := b.Get(newFlow(third).authURL)
			if !strings.Contains(picker.URL.Path, "/login") {
				t.Fatalf("no sign-in page: %s", picker.URL)
			}
			pages["sign-in"] = picker.Body
			pages["dev picker"] = b.Get(e.in.URL + "/rp/authorize?idp=dev&redirect_uri=/account").Body
			pages["consent"] = b.SignInDev(newFlow(third).authURL, "alice").Body
			pages["authorize error"] = b.Get(e.in.URL + "/oauth2/authorize?" + url.Values{"client_id": {"nobody"}, "response_type": {"code"}}.Encode()).Body
			pages["logout"] = b.Get(e.in.URL + "/oauth2/logout?" + url.Values{"client_id": {"web"}, "post_logout_redirect_uri": {webLogout}}.Encode()).Body
			pages["account"] = b.Get(e.in.URL + "/account").Body
			for page, body := range pages {
				if !strings.Contains(body, header) {
					t.Errorf("%s page does not name the application %q:\n%s", page, want, body)
				}
				if strings.Contains(body, ">default<") || strings.Contains(body, " default.") {
					t.Errorf("%s page shows the internal name \"default\":\n%s", page, body)
				}
			}
			if !strings.Contains(pages["logout"], "asks to sign you out of "+want+".") {
				t.Errorf("logout page does not say what it signs out of:\n%s", pages["logout"])
			}
		})
	}
}
