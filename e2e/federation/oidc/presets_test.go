package oidc_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aero2/aero2/federation/oidc/oidctest"
	"github.com/aero2/aero2/server/servertest"
)

// preset is an Aero2 with one identity provider of type typ, "idp".
func preset(t *testing.T, op *oidctest.Provider, typ, cfg string) *servertest.Instance {
	t.Helper()
	in := servertest.Start(t, fmt.Sprintf(`
insecure_dev: true
server:
  public_url: "{{.URL}}"
secrets:
  cookie_keys: ["%s"]
  storage_key: "%s"
identity_providers:
  - id: idp
    type: %s
    config:
      client_id: "%s"
      client_secret: "%s"
%s`, servertest.CookieKey, servertest.StorageKey, typ, op.ClientID, op.ClientSecret, cfg), nil)
	op.Update(func(k *oidctest.Knobs) { k.RedirectURIs = append(k.RedirectURIs, in.URL+"/rp/callback/idp") })
	return in
}

func TestGoogleHostedDomain(t *testing.T) {
	op := oidctest.Start(t)
	op.AddUser(oidctest.User{Subject: "w1", Name: "Worker", Email: "worker@corp.example", EmailVerified: true, Claims: map[string]any{"hd": "corp.example"}})
	op.AddUser(oidctest.User{Subject: "o1", Name: "Outsider", Email: "out@other.example", EmailVerified: true, Claims: map[string]any{"hd": "other.example"}})
	op.AddUser(oidctest.User{Subject: "g1", Name: "Gmail", Email: "someone@gmail.com", EmailVerified: true})
	// An account whose email claims the domain but whose hd does not.
	op.AddUser(oidctest.User{Subject: "s1", Name: "Spoof", Email: "boss@corp.example", EmailVerified: true})
	in := preset(t, op, "google", fmt.Sprintf("      issuer: %q\n      hosted_domains: [Corp.Example]\n", op.URL))

	// The hd parameter preselects the domain in Google's chooser.
	if _, loc := servertest.NewBrowser(t).Redirect(in.URL + "/rp/authorize?idp=idp"); !strings.Contains(loc, "hd=corp.example") {
		t.Errorf("authorization request without hd: %s", loc)
	}
	for subject, ok := range map[string]bool{"w1": true, "o1": false, "g1": false, "s1": false} {
		op.SignInAs(subject)
		p := servertest.NewBrowser(t).Get(in.URL + "/rp/authorize?idp=idp")
		if ok && (p.Status != 200 || !strings.Contains(p.Body, "worker@corp.example")) {
			t.Errorf("%s: %d\n%s", subject, p.Status, p.Body)
		}
		if !ok && (p.Status != 403 || !strings.Contains(p.Body, "may not sign in to this application")) {
			t.Errorf("%s (outside the hosted domain): %d\n%s", subject, p.Status, p.Body)
		}
	}
}

func TestGitLabPreset(t *testing.T) {
	op := oidctest.Start(t)
	op.AddUser(oidctest.User{Subject: "42", Name: "Gina", Email: "gina@example.com", EmailVerified: true,
		Claims: map[string]any{"nickname": "gina", "groups": []string{"infra", "infra/oncall"}}})
	op.SignInAs("42")
	// Profile claims only in userinfo, as GitLab does for groups.
	op.Update(func(k *oidctest.Knobs) { k.ThinIDToken = true })
	in := preset(t, op, "gitlab", fmt.Sprintf("      base_url: %q\n", op.URL))
	p := servertest.NewBrowser(t).Get(in.URL + "/rp/authorize?idp=idp")
	for _, want := range []string{"<dt>Username</dt><dd>gina</dd>", "infra, infra/oncall", "gina@example.com"} {
		if !strings.Contains(p.Body, want) {
			t.Errorf("account page lacks %q:\n%s", want, p.Body)
		}
	}
}

const (
	tenant1 = "11111111-1111-1111-1111-111111111111"
	tenant2 = "22222222-2222-2222-2222-222222222222"
)

func TestMicrosoftSingleTenant(t *testing.T) {
	op := oidctest.StartAt(t, "/"+tenant1+"/v2.0")
	op.AddUser(oidctest.User{Subject: "ms-1", Name: "Mia", PreferredUsername: "mia@corp.example", Email: "mia@corp.example", EmailVerified: false,
		Claims: map[string]any{"tid": tenant1}})
	op.SignInAs("ms-1")
	in := preset(t, op, "microsoft", fmt.Sprintf("      authority: %q\n      tenant: %s\n", op.Host, tenant1))
	p := servertest.NewBrowser(t).Get(in.URL + "/rp/authorize?idp=idp")
	// Entra ID's email is not verified unless the token says so.
	if p.Status != 200 || !strings.Contains(p.Body, `mia@corp.example <span class="warn">unverified</span>`) {
		t.Fatalf("%d:\n%s", p.Status, p.Body)
	}
	op.AddUser(oidctest.User{Subject: "ms-1", Name: "Mia", Email: "mia@corp.example", Claims: map[string]any{"tid": tenant1, "xms_edov": true}})
	p = servertest.NewBrowser(t).Get(in.URL + "/rp/authorize?idp=idp")
	if p.Status != 200 || !strings.Contains(p.Body, `mia@corp.example <span class="ok">verified</span>`) {
		t.Fatalf("with xms_edov: %d\n%s", p.Status, p.Body)
	}
	// A token of another issuer (tenant) is refused by the standard check.
	op.Update(func(k *oidctest.Knobs) { k.Reissue = &oidctest.Reissue{Issuer: op.Host + "/" + tenant2 + "/v2.0"} })
	if p := servertest.NewBrowser(t).Get(in.URL + "/rp/authorize?idp=idp"); p.Status != 502 {
		t.Fatalf("token of another tenant: %d\n%s", p.Status, p.Body)
	}
}

// TestMicrosoftMultiTenant stands in for login.microsoftonline.com's
// "organizations" endpoint: its discovery document names the issuer
// template, and each token's iss is its own tenant's.
func TestMicrosoftMultiTenant(t *testing.T) {
	op := oidctest.StartAt(t, "/organizations/v2.0")
	in := preset(t, op, "microsoft", fmt.Sprintf("      authority: %q\n      tenant: organizations\n      allowed_tenants: [%s]\n", op.Host, tenant1))
	issuerOf := func(tid string) string { return op.Host + "/" + tid + "/v2.0" }
	for _, c := range []struct {
		name   string
		tid    string
		iss    string
		status int
	}{
		{"allowed tenant", tenant1, issuerOf(tenant1), 200},
		{"other tenant", tenant2, issuerOf(tenant2), 403},
		{"iss of another tenant than tid", tenant1, issuerOf(tenant2), 502},
		{"iss of the template's host only", tenant1, op.Host + "/organizations/v2.0", 502},
	} {
		t.Run(c.name, func(t *testing.T) {
			op.AddUser(oidctest.User{Subject: "u-" + c.name, Name: "User", Claims: map[string]any{"tid": c.tid}})
			op.SignInAs("u-" + c.name)
			op.Update(func(k *oidctest.Knobs) { k.Reissue = &oidctest.Reissue{Issuer: c.iss} })
			if p := servertest.NewBrowser(t).Get(in.URL + "/rp/authorize?idp=idp"); p.Status != c.status {
				t.Fatalf("status %d, want %d:\n%s", p.Status, c.status, p.Body)
			}
		})
	}
}
