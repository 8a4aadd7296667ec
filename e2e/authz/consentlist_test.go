package authz_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store"
)

// allowThird runs the third-party client's flow in b as user, allows it on
// the consent page, and returns the client's tokens.
func (e *env) allowThird(b *servertest.Browser, user string) *oauth2.Token {
	e.t.Helper()
	third := e.oauth("third", thirdSecret, thirdRedirect, oauth2.AuthStyleInParams)
	f := newFlow(third)
	p := b.Get(f.authURL)
	if strings.HasSuffix(p.URL.Path, "/login") {
		p = b.SignInDev(f.authURL, user)
	}
	if p.Status != http.StatusOK || !strings.Contains(p.Body, "Allow Third Party") {
		e.t.Fatalf("no consent page for the third-party client: %d at %s", p.Status, p.URL)
	}
	action, fields := p.Form(e.t, "/oauth2/consent")
	fields.Set("decision", "allow")
	res := e.response(b.PostForm(action, fields))
	e.checkAuthResponse(f, res)
	tok, err := e.exchange(f, res)
	if err != nil || tok.RefreshToken == "" {
		e.t.Fatalf("exchange after consent: %v (refresh token %q)", err, tok.RefreshToken)
	}
	return tok
}

// TestRemoveAccess: the account page lists the applications the user
// allowed; "Remove access" forgets the consent and revokes the tokens the
// client holds for the user, so its refresh token is refused and its next
// authorization request asks again. Another user's consent is untouched,
// and the form is CSRF-protected and bound to the signed-in user.
func TestRemoveAccess(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		e := start(t, providerConfig, st)
		b := e.browser()
		third := e.oauth("third", thirdSecret, thirdRedirect, oauth2.AuthStyleInParams)

		// Before any consent: the page says so, and the consent page
		// promises what the account page does.
		e.login(b, newFlow(e.web()), "alice")
		if p := b.Get(e.in.URL + "/account"); !strings.Contains(p.Body, "You have not allowed any application") {
			t.Fatalf("account page before any consent:\n%s", p.Body)
		}
		consentPage := b.Get(newFlow(third).authURL)
		if strings.Contains(consentPage.Body, "signing out") || !strings.Contains(consentPage.Body, `href="`+e.in.URL+`/account"`) {
			t.Fatalf("consent page does not point to the account page:\n%s", consentPage.Body)
		}

		tok := e.allowThird(b, "alice")
		eve := e.browser()
		eveTok := e.allowThird(eve, "eve")

		p := b.Get(e.in.URL + "/account")
		if !strings.Contains(p.Body, "<strong>Third Party</strong>") || !strings.Contains(p.Body, "Your email address") {
			t.Fatalf("account page does not list the allowed application:\n%s", p.Body)
		}
		if strings.Contains(p.Body, "<strong>Web App</strong>") {
			t.Fatal("a first-party client, never consented to, is listed")
		}
		action, fields := p.Form(t, "/account/consents/remove")
		if fields.Get("client") != "third" {
			t.Fatalf("remove form names client %q", fields.Get("client"))
		}

		// Refused without a valid CSRF token, with eve's, cross-site, and
		// for bad input; none of them removes anything.
		_, eveFields := eve.Get(e.in.URL+"/account").Form(t, "/account/consents/remove")
		for name, form := range map[string]url.Values{
			"no csrf":     {"client": {"third"}},
			"forged csrf": {"client": {"third"}, "csrf": {"forged"}},
			"eve's csrf":  {"client": {"third"}, "csrf": eveFields["csrf"]},
		} {
			if r := b.PostForm(action, form); r.Status != http.StatusForbidden {
				t.Errorf("remove access with %s: %d", name, r.Status)
			}
		}
		req, _ := http.NewRequest(http.MethodPost, action, strings.NewReader(fields.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		if res, err := b.Client.Do(req); err != nil || res.StatusCode != http.StatusForbidden {
			t.Fatalf("cross-site remove access: %v %v", err, res)
		}
		for name, client := range map[string][]string{"missing": nil, "empty": {""}, "oversized": {strings.Repeat("x", 300)}} {
			if r := b.PostForm(action, url.Values{"csrf": fields["csrf"], "client": client}); r.Status != http.StatusBadRequest {
				t.Errorf("remove access with a %s client: %d", name, r.Status)
			}
		}
		if r := b.PostForm(action, url.Values{"csrf": fields["csrf"], "client": {strings.Repeat("x", 20<<10)}}); r.Status != http.StatusBadRequest {
			t.Errorf("remove access with an oversized form: %d", r.Status)
		}
		// An application never allowed: nothing to do, nothing removed.
		if r := b.PostForm(action, url.Values{"csrf": fields["csrf"], "client": {"web"}}); r.Status != http.StatusOK || !strings.Contains(r.Body, "<strong>Third Party</strong>") {
			t.Fatalf("removing a client never allowed: %d\n%s", r.Status, r.Body)
		}
		// A second grant, in another browser session of alice's: removing
		// access revokes the client's tokens in every session. Refreshing
		// it now shows refresh works until then.
		laptop := e.browser()
		e.login(laptop, newFlow(e.web()), "alice")
		tok2, err := third.TokenSource(e.ctx, &oauth2.Token{RefreshToken: e.tokenFor(laptop).RefreshToken}).Token()
		if err != nil {
			t.Fatalf("refresh before access was removed: %v", err)
		}

		// Remove access.
		after := b.PostForm(action, fields)
		if after.Status != http.StatusOK || !strings.HasSuffix(after.URL.Path, "/account") || !strings.Contains(after.Body, "access was removed") {
			t.Fatalf("after removing access: %d at %s\n%s", after.Status, after.URL, after.Body)
		}
		if strings.Contains(after.Body, "<strong>Third Party</strong>") {
			t.Fatalf("removed application still listed:\n%s", after.Body)
		}
		for _, rt := range []string{tok.RefreshToken, tok2.RefreshToken} {
			if _, err := third.TokenSource(e.ctx, &oauth2.Token{RefreshToken: rt}).Token(); err == nil || oauthError(t, err) != "invalid_grant" {
				t.Fatalf("refresh token after access was removed: %v", err)
			}
		}
		for _, at := range []string{tok.AccessToken, tok2.AccessToken} {
			if status, _, _ := e.userinfo(at); status != http.StatusUnauthorized {
				t.Fatalf("userinfo with an access token after access was removed: %d", status)
			}
			if e.introspect(at)["active"] != false {
				t.Fatal("access token active after access was removed")
			}
		}
		// Alice is still signed in: removing access is not signing out.
		if p := laptop.Get(e.in.URL + "/account"); !strings.HasSuffix(p.URL.Path, "/account") {
			t.Fatalf("removing access signed alice out: %s", p.URL)
		}
		// The next authorization request asks again; prompt=none cannot
		// skip it.
		if p := b.Get(newFlow(third).authURL); p.Status != http.StatusOK || !strings.Contains(p.Body, "Allow Third Party") {
			t.Fatalf("authorize after access was removed did not ask for consent: %d at %s", p.Status, p.URL)
		}
		f := newFlow(third, oauth2.SetAuthURLParam("prompt", "none"))
		if res := e.response(b.Get(f.authURL)); res.Query.Get("error") != "consent_required" {
			t.Fatalf("prompt=none after access was removed: %s", res.URL)
		}

		// Eve's consent and tokens are hers, untouched.
		if p := eve.Get(e.in.URL + "/account"); !strings.Contains(p.Body, "<strong>Third Party</strong>") {
			t.Fatal("alice's removal removed eve's consent")
		}
		if _, err := third.TokenSource(e.ctx, &oauth2.Token{RefreshToken: eveTok.RefreshToken}).Token(); err != nil {
			t.Fatalf("eve's refresh token after alice removed her access: %v", err)
		}
	})
}

// tokenFor gets tokens for the third-party client in b, whose consent is
// remembered: no consent page this time.
func (e *env) tokenFor(b *servertest.Browser) *oauth2.Token {
	e.t.Helper()
	f := newFlow(e.oauth("third", thirdSecret, thirdRedirect, oauth2.AuthStyleInParams))
	res := e.response(b.Get(f.authURL))
	e.checkAuthResponse(f, res)
	tok, err := e.exchange(f, res)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}
