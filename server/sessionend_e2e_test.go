package server_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/aero2/aero2/server"
	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store"
)

// The relying party of the session-ending tests: a first-party web client
// that gets refresh tokens and may log out to rpLogout.
const (
	rpSecret   = "rp-secret-0123456789abcdef-0123456789ab"
	rpRedirect = "http://127.0.0.1/rp-cb" // never fetched: the flow stops at it
	rpLogout   = "http://127.0.0.1/rp-bye"
)

const endingConfig = servertest.DevConfig + `
clients:
  - id: rp
    secret: "` + rpSecret + `"
    redirect_uris: ["` + rpRedirect + `"]
    post_logout_redirect_uris: ["` + rpLogout + `"]
    first_party: true
routes:
  - path: /app
    upstream: "UP"
    headers: {access_token: [X-Forwarded-Access-Token]}
`

// signedInBrowser is a browser signed in as alice, with what was issued in
// its provider session: tokens of the relying party and a proxy session on
// /app (whose access token the upstream received).
type signedInBrowser struct {
	b          *servertest.Browser
	rp         *oauth2.Token
	idToken    string
	proxyToken string
	// pending is an authorization code issued in the session and not yet
	// redeemed, with its PKCE verifier.
	pending, verifier string
}

type endingEnv struct {
	in  *servertest.Instance
	rc  *recorder
	rp  oauth2.Config
	ctx context.Context
}

func startEnding(t *testing.T, st store.Store) *endingEnv {
	t.Helper()
	rc := &recorder{}
	up := httptest.NewServer(rc)
	t.Cleanup(up.Close)
	in := servertest.Start(t, strings.ReplaceAll(endingConfig, "UP", up.URL), st)
	return &endingEnv{in: in, rc: rc, ctx: context.Background(), rp: oauth2.Config{
		ClientID: "rp", ClientSecret: rpSecret, RedirectURL: rpRedirect,
		Endpoint: oauth2.Endpoint{AuthURL: in.URL + "/oauth2/authorize", TokenURL: in.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader},
		Scopes:   []string{"openid", "profile", "email"},
	}}
}

// signIn signs a new browser in through the proxy, then runs the relying
// party's code flow in the same provider session.
func (e *endingEnv) signIn(t *testing.T) *signedInBrowser {
	t.Helper()
	s := &signedInBrowser{b: servertest.NewBrowser(t)}
	if p := s.b.SignInDev(e.in.URL+"/app", "alice"); p.Status != http.StatusOK || !strings.HasPrefix(p.Body, "upstream /app") {
		t.Fatalf("sign-in through the proxy: %d %s", p.Status, p.URL)
	}
	s.proxyToken = e.rc.last(t).Get("X-Forwarded-Access-Token")
	if s.proxyToken == "" {
		t.Fatal("the proxy forwarded no access token")
	}
	s.rp, s.idToken = e.rpTokens(t, s.b)
	s.pending, s.verifier = e.rpCode(t, s.b)
	return s
}

// rpCode runs the relying party's authorization request in the browser's
// session and returns the code, and its PKCE verifier.
func (e *endingEnv) rpCode(t *testing.T, b *servertest.Browser) (string, string) {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	status, loc := b.Redirect(e.rp.AuthCodeURL("state-0123456789", oauth2.S256ChallengeOption(verifier)))
	u, err := url.Parse(loc)
	if status != http.StatusSeeOther || err != nil || !strings.HasPrefix(loc, rpRedirect) || u.Query().Get("code") == "" {
		t.Fatalf("authorization for the relying party: %d %q", status, loc)
	}
	return u.Query().Get("code"), verifier
}

// rpTokens runs the relying party's code flow in the browser's session.
func (e *endingEnv) rpTokens(t *testing.T, b *servertest.Browser) (*oauth2.Token, string) {
	t.Helper()
	code, verifier := e.rpCode(t, b)
	tok, err := e.rp.Exchange(e.ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	idt, _ := tok.Extra("id_token").(string)
	if tok.RefreshToken == "" || idt == "" {
		t.Fatal("the relying party got no refresh token or ID token")
	}
	return tok, idt
}

// introspect asks the provider, as clientID, whether token is active.
func (e *endingEnv) introspect(t *testing.T, clientID, secret, token string) bool {
	t.Helper()
	return introspectAs(t, e.in, clientID, secret, token)
}

// refreshes reports whether the relying party's refresh token still works.
// (A working one rotates: the browser's token is replaced, so that a later
// check presents the current one, not a rotated one, whose reuse would
// revoke the family and hide what is being tested.)
func (e *endingEnv) refreshes(t *testing.T, s *signedInBrowser) bool {
	t.Helper()
	tok, err := e.rp.TokenSource(e.ctx, &oauth2.Token{RefreshToken: s.rp.RefreshToken}).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
			t.Fatalf("refresh failed other than with invalid_grant: %v", err)
		}
		return false
	}
	s.rp = tok
	return true
}

// redeems reports whether the browser's pending code still buys tokens
// (they are checked to be active).
func (e *endingEnv) redeems(t *testing.T, s *signedInBrowser) bool {
	t.Helper()
	tok, err := e.rp.Exchange(e.ctx, s.pending, oauth2.VerifierOption(s.verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
			t.Fatalf("code exchange failed other than with invalid_grant: %v", err)
		}
		return false
	}
	return e.introspect(t, "rp", rpSecret, tok.AccessToken)
}

// ended checks that everything issued in the browser's provider session
// has ended: the relying party's refresh token is refused, its access
// token and the proxy's are inactive at introspection, a code issued
// before the end buys no tokens after it, and the proxy stops admitting
// the browser within session_cache.
func (e *endingEnv) ended(t *testing.T, s *signedInBrowser, since time.Time) {
	t.Helper()
	if e.redeems(t, s) {
		t.Error("a code issued before the session ended still buys tokens")
	}
	if e.refreshes(t, s) {
		t.Error("the relying party's refresh token still works")
	}
	if e.introspect(t, "rp", rpSecret, s.rp.AccessToken) {
		t.Error("the relying party's access token is still active")
	}
	if e.introspect(t, "aero2-proxy", server.ProxyClientSecret(e.in.Config, "default"), s.proxyToken) {
		t.Error("the proxy's access token is still active")
	}
	eventuallyRefused(t, s.b, e.in.URL+"/app")
	t.Logf("the proxy refused the browser %v after the session ended", time.Since(since).Round(10*time.Millisecond))
}

// alive checks that nothing issued in the browser's session has ended
// (its pending code is used up, and replaced).
func (e *endingEnv) alive(t *testing.T, s *signedInBrowser) {
	t.Helper()
	if !e.redeems(t, s) {
		t.Error("a session that was not ended lost its pending code")
	}
	s.pending, s.verifier = e.rpCode(t, s.b)
	if !e.introspect(t, "rp", rpSecret, s.rp.AccessToken) {
		t.Error("a session that was not ended lost its relying party's access token")
	}
	if !e.refreshes(t, s) {
		t.Error("a session that was not ended lost its relying party's refresh token")
	}
	if p := s.b.NoRedirects().Get(e.in.URL + "/app"); p.Status != http.StatusOK {
		t.Errorf("a session that was not ended lost its proxy session: %d", p.Status)
	}
}

// TestEveryWayOfEndingASessionEndsItsTokens: however a provider session
// ends early, the relying party's tokens and the proxy's sessions issued
// in it end too, and only those.
func TestEveryWayOfEndingASessionEndsItsTokens(t *testing.T) {
	ways := []struct {
		name string
		// end ends victim's session; bystander is another browser of the
		// same user. It returns whether the bystander's session should
		// have ended too.
		end func(t *testing.T, e *endingEnv, victim, bystander *signedInBrowser) bool
	}{
		{"sign-out on Aero2's pages", func(t *testing.T, e *endingEnv, v, _ *signedInBrowser) bool {
			action, f := v.b.Get(e.in.URL+"/account").Form(t, "/logout")
			if p := v.b.PostForm(action, f); !strings.Contains(p.Body, "You are signed out") {
				t.Fatalf("sign-out: %d %s", p.Status, p.URL)
			}
			return false
		}},
		{"sign-out everywhere", func(t *testing.T, e *endingEnv, _, by *signedInBrowser) bool {
			action, f := by.b.Get(e.in.URL+"/account").Form(t, "/logout")
			f.Set("everywhere", "1")
			if p := by.b.PostForm(action, f); !strings.Contains(p.Body, "You are signed out") {
				t.Fatalf("sign-out everywhere: %d %s", p.Status, p.URL)
			}
			return true
		}},
		{"RP-initiated logout", func(t *testing.T, e *endingEnv, v, _ *signedInBrowser) bool {
			q := url.Values{"id_token_hint": {v.idToken}, "post_logout_redirect_uri": {rpLogout}}
			if status, loc := v.b.Redirect(e.in.URL + "/oauth2/logout?" + q.Encode()); status != http.StatusSeeOther || loc != rpLogout {
				t.Fatalf("logout: %d %q", status, loc)
			}
			return false
		}},
		{"RP-initiated logout from another browser", func(t *testing.T, e *endingEnv, v, _ *signedInBrowser) bool {
			// The relying party's browser no longer carries the session
			// (the user cleared cookies); the hint still names it.
			q := url.Values{"id_token_hint": {v.idToken}, "post_logout_redirect_uri": {rpLogout}}
			if status, loc := servertest.NewBrowser(t).Redirect(e.in.URL + "/oauth2/logout?" + q.Encode()); status != http.StatusSeeOther || loc != rpLogout {
				t.Fatalf("logout: %d %q", status, loc)
			}
			return false
		}},
		{"one session ended on the account page", func(t *testing.T, e *endingEnv, _, by *signedInBrowser) bool {
			_, f := by.b.Get(e.in.URL+"/account").Form(t, "/account/sessions/end")
			if f.Get("session") == "" {
				t.Fatal("the account page offers no session to end")
			}
			if p := by.b.PostForm(e.in.URL+"/account/sessions/end", f); !strings.Contains(p.Body, "The session was signed out") {
				t.Fatalf("ending the session: %d %s", p.Status, p.URL)
			}
			return false
		}},
		{"all other sessions ended on the account page", func(t *testing.T, e *endingEnv, _, by *signedInBrowser) bool {
			p := by.b.Get(e.in.URL + "/account")
			if !strings.Contains(p.Body, `name="others" value="1"><button class="secondary">Sign out other sessions</button>`) {
				t.Fatalf("the account page has no button to sign out the other sessions:\n%s", p.Body)
			}
			f := url.Values{"csrf": {accountCSRF(t, p)}, "others": {"1"}}
			if p := by.b.PostForm(e.in.URL+"/account/sessions/end", f); !strings.Contains(p.Body, "Every other session was signed out") {
				t.Fatalf("ending the other sessions: %d %s\n%s", p.Status, p.URL, p.Body)
			}
			return false
		}},
		{"a new sign-in in the same browser", func(t *testing.T, e *endingEnv, v, _ *signedInBrowser) bool {
			if p := v.b.SignInDev(e.in.URL+"/rp/authorize?idp=dev", "alice"); p.Status != http.StatusOK || p.URL.Path != "/account" {
				t.Fatalf("second sign-in: %d %s", p.Status, p.URL)
			}
			return false
		}},
		{"the proxy's sign-out", func(t *testing.T, e *endingEnv, v, _ *signedInBrowser) bool {
			_, f := v.b.Get(e.in.URL+"/.aero2/sign_out").Form(t, "/.aero2/sign_out")
			// The browser does not follow the redirect to the provider's
			// logout: the sign-out must not depend on it.
			if status, loc := postNoRedirect(t, v.b, e.in.URL+"/.aero2/sign_out", f); status != http.StatusSeeOther || !strings.Contains(loc, "/oauth2/logout?") {
				t.Fatalf("proxy sign-out: %d %q", status, loc)
			}
			return false
		}},
	}
	for _, w := range ways {
		t.Run(w.name, func(t *testing.T) {
			stores(t, func(t *testing.T, st store.Store) {
				e := startEnding(t, st)
				victim, bystander := e.signIn(t), e.signIn(t)
				e.alive(t, victim)
				both := w.end(t, e, victim, bystander)
				endedAt := time.Now()
				e.ended(t, victim, endedAt)
				if both {
					e.ended(t, bystander, endedAt)
				} else {
					e.alive(t, bystander)
				}
			})
		})
	}
}

// accountCSRF is the CSRF token of the account page's forms.
func accountCSRF(t *testing.T, p *servertest.Page) string {
	t.Helper()
	_, f := p.Form(t, "/logout")
	return f.Get("csrf")
}

func postNoRedirect(t *testing.T, b *servertest.Browser, u string, f url.Values) (int, string) {
	t.Helper()
	res, err := b.NoRedirects().Client.PostForm(u, f)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode, res.Header.Get("Location")
}
