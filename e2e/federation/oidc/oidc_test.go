package oidc_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aero2/aero2/federation/oidc/oidctest"
	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store"
)

// config is an Aero2 with one `oidc` provider, "corp", at op.
func aero2Config(op *oidctest.Provider, extra string) string {
	return fmt.Sprintf(`
insecure_dev: true
server:
  public_url: "{{.URL}}"
store: {type: memory}
secrets:
  cookie_keys: ["%s"]
  storage_key: "%s"
identity_providers:
  - id: corp
    type: oidc
    name: Corp SSO
    config:
      issuer: "%s"
      client_id: "%s"
      client_secret: "%s"
      timeout: 1s
%s`, servertest.CookieKey, servertest.StorageKey, op.URL, op.ClientID, op.ClientSecret, extra)
}

// start runs a provider and an Aero2 that uses it, on st (nil: memory).
func start(t *testing.T, st store.Store, extra string) (*oidctest.Provider, *servertest.Instance) {
	t.Helper()
	op := oidctest.Start(t)
	in := servertest.Start(t, aero2Config(op, extra), st)
	op.Update(func(k *oidctest.Knobs) { k.RedirectURIs = []string{in.URL + "/rp/callback/corp"} })
	return op, in
}

const authorize = "/rp/authorize?idp=corp&redirect_uri=/account"

func TestSignIn(t *testing.T) {
	for name, st := range map[string]func(t *testing.T) store.Store{
		"memory": func(*testing.T) store.Store { return nil },
		"redis":  func(t *testing.T) store.Store { return servertest.SharedStore(t) },
	} {
		t.Run(name, func(t *testing.T) {
			_, in := start(t, st(t), "")
			b := servertest.NewBrowser(t)

			// The authorization request carries state, nonce and an S256
			// PKCE challenge.
			status, loc := b.Redirect(in.URL + authorize)
			u, err := url.Parse(loc)
			if status != 302 || err != nil {
				t.Fatalf("/rp/authorize: %d %q", status, loc)
			}
			q := u.Query()
			for _, k := range []string{"state", "nonce", "code_challenge"} {
				if len(q.Get(k)) < 43 {
					t.Errorf("authorization request %s = %q, want 256 random bits", k, q.Get(k))
				}
			}
			if q.Get("code_challenge_method") != "S256" || q.Get("redirect_uri") != in.URL+"/rp/callback/corp" || !strings.Contains(q.Get("scope"), "openid") {
				t.Errorf("authorization request: %v", q)
			}

			p := b.Get(in.URL + authorize)
			if p.Status != 200 || p.URL.Path != "/account" {
				t.Fatalf("sign-in ended at %d %s:\n%s", p.Status, p.URL, p.Body)
			}
			for _, want := range []string{"Signed in as Alice Example", "alice@example.com", `<span class="ok">verified</span>`, "admins, dev", "Signed in with</dt><dd>Corp SSO, "} {
				if !strings.Contains(p.Body, want) {
					t.Errorf("account page lacks %q", want)
				}
			}
			// The same account again is the same user.
			idOf := func(body string) string {
				_, rest, _ := strings.Cut(body, "<dt>User ID</dt><dd><code>")
				id, _, _ := strings.Cut(rest, "<")
				return id
			}
			again := servertest.NewBrowser(t).Get(in.URL + authorize)
			if idOf(again.Body) == "" || idOf(again.Body) != idOf(p.Body) {
				t.Errorf("second sign-in of the same account: user %q, first %q", idOf(again.Body), idOf(p.Body))
			}
		})
	}
}

// TestBadIDTokens makes the provider issue ID tokens that must be refused,
// each signed by the provider's own code. The control case reissues with
// no change, so a refusal is due to the change and not the reissue.
func TestBadIDTokens(t *testing.T) {
	op, in := start(t, nil, "")
	for _, c := range []struct {
		name string
		re   oidctest.Reissue
		ok   bool
	}{
		{"control", oidctest.Reissue{}, true},
		{"wrong iss", oidctest.Reissue{Issuer: "https://evil.example"}, false},
		{"wrong aud", oidctest.Reissue{ClientID: "someone-else", Audience: []string{"someone-else"}}, false},
		{"aud includes us, azp another", oidctest.Reissue{ClientID: "someone-else", Audience: []string{op.ClientID, "someone-else"}}, false},
		{"wrong nonce", oidctest.Reissue{Nonce: "nonce-of-another-sign-in"}, false},
		{"expired", oidctest.Reissue{Validity: -time.Minute}, false},
		{"unknown key", oidctest.Reissue{Key: oidctest.NewKey()}, false},
		{"at_hash of another access token", oidctest.Reissue{AccessToken: "another-access-token"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			re := c.re
			op.Update(func(k *oidctest.Knobs) { k.Reissue = &re })
			p := servertest.NewBrowser(t).Get(in.URL + authorize)
			if c.ok {
				if p.Status != 200 || p.URL.Path != "/account" {
					t.Fatalf("ended at %d %s:\n%s", p.Status, p.URL, p.Body)
				}
				return
			}
			if p.Status != 502 || !strings.Contains(p.Body, "could not complete the sign-in with Corp SSO") {
				t.Fatalf("status %d at %s:\n%s", p.Status, p.URL, p.Body)
			}
		})
	}
}

func TestUserinfo(t *testing.T) {
	t.Run("claims come from userinfo when configured", func(t *testing.T) {
		op, in := start(t, nil, "      get_userinfo: true\n")
		op.Update(func(k *oidctest.Knobs) { k.ThinIDToken = true })
		p := servertest.NewBrowser(t).Get(in.URL + authorize)
		if p.Status != 200 || !strings.Contains(p.Body, "alice@example.com") || !strings.Contains(p.Body, "Alice Example") {
			t.Fatalf("%d:\n%s", p.Status, p.Body)
		}
	})
	t.Run("not fetched unless configured", func(t *testing.T) {
		op, in := start(t, nil, "")
		op.Update(func(k *oidctest.Knobs) { k.ThinIDToken = true })
		p := servertest.NewBrowser(t).Get(in.URL + authorize)
		if p.Status != 200 || strings.Contains(p.Body, "alice@example.com") {
			t.Fatalf("%d:\n%s", p.Status, p.Body)
		}
	})
	t.Run("about another subject", func(t *testing.T) {
		op, in := start(t, nil, "      get_userinfo: true\n")
		op.Update(func(k *oidctest.Knobs) { k.UserinfoSubject = "mallory-sub" })
		if p := servertest.NewBrowser(t).Get(in.URL + authorize); p.Status != 502 {
			t.Fatalf("%d:\n%s", p.Status, p.Body)
		}
	})
}

func TestClaimNames(t *testing.T) {
	op, in := start(t, nil, "      username_claim: login\n      groups_claim: roles\n")
	op.AddUser(oidctest.User{Subject: "bob-sub", Name: "Bob", Email: "bob@example.com", EmailVerified: false,
		Claims: map[string]any{"login": "bobby", "roles": "operator", "groups": []string{"ignored"}}})
	op.SignInAs("bob-sub")
	p := servertest.NewBrowser(t).Get(in.URL + authorize)
	for _, want := range []string{"<dt>Username</dt><dd>bobby</dd>", "<dt>Groups</dt><dd>operator</dd>", `<span class="warn">unverified</span>`} {
		if !strings.Contains(p.Body, want) {
			t.Errorf("account page lacks %q:\n%s", want, p.Body)
		}
	}
}

func TestProviderDeniesSignIn(t *testing.T) {
	op, in := start(t, nil, "")
	op.Update(func(k *oidctest.Knobs) {
		k.Deny, k.ErrorDescription = true, `<script>alert("owned")</script> call +1-555-SCAM`
	})
	p := servertest.NewBrowser(t).Get(in.URL + authorize)
	if p.Status != 403 || !strings.Contains(p.Body, "declined the sign-in") {
		t.Fatalf("%d:\n%s", p.Status, p.Body)
	}
	// The provider's free text is not shown on Aero2's page.
	if strings.Contains(p.Body, "SCAM") || strings.Contains(p.Body, "<script") {
		t.Errorf("error_description reached the page:\n%s", p.Body)
	}
}

func TestTokenEndpointSlowOrDown(t *testing.T) {
	op, in := start(t, nil, "")
	t.Run("slow", func(t *testing.T) {
		// The provider would answer, correctly, after 10s: only the
		// connector's 1s timeout makes this sign-in fail.
		op.Update(func(k *oidctest.Knobs) { k.TokenDelay, k.TokenDown = 10*time.Second, false })
		p := servertest.NewBrowser(t).Get(in.URL + authorize)
		if p.Status != 502 || !strings.Contains(p.Body, "could not complete the sign-in") {
			t.Fatalf("%d:\n%s", p.Status, p.Body)
		}
	})
	t.Run("down", func(t *testing.T) {
		op.Update(func(k *oidctest.Knobs) { k.TokenDelay, k.TokenDown = 0, true })
		if p := servertest.NewBrowser(t).Get(in.URL + authorize); p.Status != 502 {
			t.Fatalf("%d:\n%s", p.Status, p.Body)
		}
	})
}

func TestDiscoveryUnreachable(t *testing.T) {
	cfg := aero2Config(&oidctest.Provider{URL: "http://127.0.0.1:1", ClientID: "x", ClientSecret: "y"}, "")
	in := servertest.Start(t, cfg, nil)
	p := servertest.NewBrowser(t).Get(in.URL + authorize)
	if p.Status != 502 || !strings.Contains(p.Body, "could not reach Corp SSO") {
		t.Fatalf("%d:\n%s", p.Status, p.Body)
	}
	if strings.Contains(p.Body, "127.0.0.1:1") || strings.Contains(p.Body, "refused") {
		t.Errorf("the page leaks the failure's details:\n%s", p.Body)
	}
}

// TestResponseIssuer is RFC 9207: an `iss` in the authorization response
// must be the provider's, and a provider that promises it must send it.
func TestResponseIssuer(t *testing.T) {
	op, in := start(t, nil, "")
	for _, c := range []struct {
		name      string
		iss       string
		advertise bool
		ok        bool
	}{
		{"no iss, not promised", "", false, true},
		{"right iss", op.URL, false, true},
		{"right iss, promised", op.URL, true, true},
		{"another issuer", "https://evil.example", false, false},
		{"trailing slash", op.URL + "/", false, false},
		{"promised but missing", "", true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			op.Update(func(k *oidctest.Knobs) { k.Iss, k.AdvertiseIss = c.iss, c.advertise })
			// Aero2 reads the metadata once; a fresh instance sees the
			// promise as configured for this case.
			in := in
			if c.advertise {
				in = servertest.Start(t, aero2Config(op, ""), nil)
				op.Update(func(k *oidctest.Knobs) { k.RedirectURIs = append(k.RedirectURIs, in.URL+"/rp/callback/corp") })
			}
			p := servertest.NewBrowser(t).Get(in.URL + authorize)
			if c.ok && (p.Status != 200 || p.URL.Path != "/account") {
				t.Fatalf("ended at %d %s:\n%s", p.Status, p.URL, p.Body)
			}
			if !c.ok && (p.Status != 400 || !strings.Contains(p.Body, "did not come from Corp SSO")) {
				t.Fatalf("status %d:\n%s", p.Status, p.Body)
			}
		})
	}
}

func TestIssuerOnErrorResponseIsCheckedFirst(t *testing.T) {
	// A forged error response "from" another issuer is refused as a
	// mix-up, not shown as that provider's refusal.
	op, in := start(t, nil, "")
	op.Update(func(k *oidctest.Knobs) { k.Deny, k.Iss = true, "https://evil.example" })
	if p := servertest.NewBrowser(t).Get(in.URL + authorize); p.Status != 400 || !strings.Contains(p.Body, "did not come from") {
		t.Fatalf("%d:\n%s", p.Status, p.Body)
	}
}
