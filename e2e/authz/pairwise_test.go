package authz_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store"
)

// sectorServer serves a sector_identifier_uri document (OIDC Core §8.1).
func sectorServer(t *testing.T, uris ...string) string {
	body, _ := json.Marshal(uris)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s.URL + "/sector.json"
}

const pwSecret = "pairwise-secret-0123456789abcdef-0123"

// pairwiseConfig: pw and pw2 share the sector of webRedirect (localhost);
// pws names its sector by a sector_identifier_uri on another host;
// pwbad's sector document does not list its redirect URI.
func pairwiseConfig(t *testing.T) string {
	good := sectorServer(t, webRedirect, "https://other.example/cb")
	bad := sectorServer(t, "https://other.example/cb")
	client := func(id, extra string) string {
		return `
  - id: ` + id + `
    secret: "` + pwSecret + `"
    subject_type: pairwise
    redirect_uris: ["` + webRedirect + `"]
    post_logout_redirect_uris: ["` + webLogout + `"]
    first_party: true` + extra
	}
	return providerConfig + client("pw", "") + client("pw2", "") +
		client("pws", "\n    sector_identifier_uri: \""+good+"\"") +
		client("pwbad", "\n    sector_identifier_uri: \""+bad+"\"") + "\n"
}

// jwtPayload is the decoded payload of a JWT.
func jwtPayload(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	return decodeSegment(t, parts[1])
}

// TestPairwiseSubjects (OIDC Core §8.1): a pairwise client sees every
// user under a subject of its sector — in the ID token, the access token,
// userinfo, introspection, after refresh — and never the user's public
// ID; clients of one sector see the same subject, of another a different
// one; the subject is the same through another replica; logout takes the
// pairwise ID token as its hint; a sector document that does not list the
// client's redirect URIs stops the client.
func TestPairwiseSubjects(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		e := start(t, pairwiseConfig(t), st)
		var md struct {
			Types []string `json:"subject_types_supported"`
		}
		e.getJSON("/.well-known/openid-configuration", &md)
		if len(md.Types) != 2 || md.Types[0] != "public" || md.Types[1] != "pairwise" {
			t.Fatalf("subject_types_supported %v", md.Types)
		}
		b := e.browser()
		// alice's public subject, as the public client web sees it.
		f := newFlow(e.web())
		tok, err := e.exchange(f, e.login(b, f, "alice"))
		if err != nil {
			t.Fatal(err)
		}
		public := e.verifyIDToken(f, tok).Subject

		pwFlow := func(in *servertest.Instance, b *servertest.Browser, id string) (*flow, *oauth2.Token) {
			t.Helper()
			cfg := e.oauth(id, pwSecret, webRedirect, oauth2.AuthStyleInHeader, "openid", "profile", "email")
			cfg.Endpoint.AuthURL = in.URL + "/oauth2/authorize"
			cfg.Endpoint.TokenURL = in.URL + "/oauth2/token"
			f := newFlow(cfg)
			res := e.response(b.Get(f.authURL))
			e.checkAuthResponse(f, res)
			tok, err := e.exchange(f, res)
			if err != nil {
				t.Fatalf("%s: %v", id, err)
			}
			return f, tok
		}
		pf, ptok := pwFlow(e.in, b, "pw")
		idt := e.verifyIDToken(pf, ptok)
		sub := idt.Subject
		if sub == public || sub == "" {
			t.Fatalf("pairwise sub %q, public sub %q", sub, public)
		}
		// Everything the pairwise client gets names the user by sub, and
		// nothing carries the public one.
		seen := map[string]string{
			"ID token":     jwtPayload(t, ptok.Extra("id_token").(string)),
			"access token": jwtPayload(t, ptok.AccessToken),
		}
		var at map[string]any
		json.Unmarshal([]byte(seen["access token"]), &at)
		if at["sub"] != sub {
			t.Fatalf("access token sub %v, ID token sub %s", at["sub"], sub)
		}
		status, _, ui := e.userinfo(ptok.AccessToken)
		if status != 200 || ui["sub"] != sub || ui["email"] != "alice@example.com" {
			t.Fatalf("userinfo: %d %v", status, ui)
		}
		for what, m := range map[string]map[string]any{
			"userinfo":                    ui,
			"introspection by the client": e.postJSON("/oauth2/introspect", url.Values{"token": {ptok.AccessToken}}, "pw", pwSecret),
			"introspection by a resource": e.introspect(ptok.AccessToken),
			"refresh token introspection": e.postJSON("/oauth2/introspect", url.Values{"token": {ptok.RefreshToken}}, "pw", pwSecret),
		} {
			b, _ := json.Marshal(m)
			seen[what] = string(b)
			if m["sub"] != sub {
				t.Errorf("%s: sub %v, want %s", what, m["sub"], sub)
			}
		}
		rtok, err := refresh(e, pf.cfg, ptok.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		seen["refreshed ID token"] = jwtPayload(t, rtok.Extra("id_token").(string))
		seen["refreshed access token"] = jwtPayload(t, rtok.AccessToken)
		if ridt, err := e.provider.Verifier(oidcConfig("pw")).Verify(e.ctx, rtok.Extra("id_token").(string)); err != nil || ridt.Subject != sub {
			t.Fatalf("refreshed ID token: %v, sub %v", err, ridt)
		}
		for what, text := range seen {
			if strings.Contains(text, public) {
				t.Errorf("%s leaks the public subject %s: %s", what, public, text)
			}
		}

		// Same sector, same subject; another sector, another.
		_, tok2 := pwFlow(e.in, b, "pw2")
		if s2 := subOf(t, tok2); s2 != sub {
			t.Errorf("pw2 (same sector) sees %s, pw %s", s2, sub)
		}
		_, tok3 := pwFlow(e.in, b, "pws")
		if s3 := subOf(t, tok3); s3 == sub || s3 == public {
			t.Errorf("pws (sector of its sector_identifier_uri) sees %s: pw %s, public %s", s3, sub, public)
		}
		// Through a replica (same configuration, same store): the same
		// subject, computed, not stored.
		if st != nil {
			r2 := servertest.StartWith(t, pairwiseConfig(t), servertest.Options{Store: st, PublicURL: e.in.URL})
			// Every connection goes to the replica, whatever the URL's
			// host (the shared public one).
			addr := strings.TrimPrefix(r2.Addr, "http://")
			toReplica := &http.Client{
				Jar: b.Client.Jar, // the browser's session
				Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
					return (&net.Dialer{}).DialContext(ctx, network, addr)
				}},
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			}
			rf := newFlow(e.oauth("pw", pwSecret, webRedirect, oauth2.AuthStyleInHeader))
			res, err := toReplica.Get(rf.authURL)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			loc, _ := url.Parse(res.Header.Get("Location"))
			rt, err := rf.cfg.Exchange(context.WithValue(e.ctx, oauth2.HTTPClient, toReplica), loc.Query().Get("code"), oauth2.VerifierOption(rf.verifier))
			if err != nil {
				t.Fatalf("exchange at the replica: %v", err)
			}
			if s := subOf(t, rt); s != sub {
				t.Errorf("replica: sub %s, want %s", s, sub)
			}
		}

		// A sector document without the client's redirect URI: refused.
		bf := newFlow(e.oauth("pwbad", pwSecret, webRedirect, oauth2.AuthStyleInHeader))
		if q := e.response(b.Get(bf.authURL)).Query; q.Get("error") != "unauthorized_client" {
			t.Errorf("pairwise client with a bad sector_identifier_uri: %v", q)
		}

		// Logout with the pairwise ID token as hint: recognised as the
		// signed-in user's, so no confirmation, and the tokens die — also
		// from a browser session that is not the token's (alice signed in
		// again since), so the subject is what recognises her.
		nf := newFlow(e.web(), oauth2.SetAuthURLParam("prompt", "login"))
		ntok, err := e.exchange(nf, e.response(b.SignInDev(nf.authURL, "alice")))
		if err != nil {
			t.Fatal(err)
		}
		var sids [2]struct {
			SID string `json:"sid"`
		}
		json.Unmarshal([]byte(jwtPayload(t, ntok.Extra("id_token").(string))), &sids[0])
		json.Unmarshal([]byte(seen["ID token"]), &sids[1])
		if sids[0].SID == sids[1].SID {
			t.Fatal("signing in again kept the browser session")
		}
		lo := url.Values{"id_token_hint": {ptok.Extra("id_token").(string)}, "post_logout_redirect_uri": {webLogout}, "state": {"bye"}}
		status, loc := b.Redirect(e.in.URL + "/oauth2/logout?" + lo.Encode())
		if status != http.StatusSeeOther || !strings.HasPrefix(loc, webLogout) {
			t.Fatalf("logout with a pairwise id_token_hint: %d %s", status, loc)
		}
		if in := e.introspect(rtok.AccessToken); in["active"] != false {
			t.Error("pairwise client's token survived logout")
		}
	})
}

// postJSON posts a form and fails unless the answer is 200.
func (e *env) postJSON(path string, form url.Values, user, pass string) map[string]any {
	e.t.Helper()
	status, _, m := e.post(path, form, user, pass)
	if status != http.StatusOK {
		e.t.Fatalf("%s: %d %v", path, status, m)
	}
	return m
}

func subOf(t *testing.T, tok *oauth2.Token) string {
	t.Helper()
	var c struct {
		Sub string `json:"sub"`
	}
	json.Unmarshal([]byte(jwtPayload(t, tok.Extra("id_token").(string))), &c)
	return c.Sub
}

// TestOpenIDClientPairwise: openid-client, whose userinfo call checks that
// userinfo's sub is the ID token's, through a pairwise client.
func TestOpenIDClientPairwise(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		e := start(t, pairwiseConfig(t), st)
		m := nodeCodeFlow(t, e, e.browser(), nodeClient{ID: "pw", Auth: "client_secret_basic", Secret: pwSecret}, true,
			map[string]any{"userinfo": true, "introspect": true, "refresh": true})
		sub := m["claims"].(map[string]any)["sub"]
		if sub == nil || m["userinfo"].(map[string]any)["sub"] != sub || m["introspection"].(map[string]any)["sub"] != sub ||
			m["refreshed"].(map[string]any)["claims"].(map[string]any)["sub"] != sub {
			t.Fatalf("pairwise through openid-client: %v", m)
		}
		users, err := e.in.Server.Store().UsersByVerifiedEmail(t.Context(), "default", "alice@example.com")
		if err != nil || len(users) != 1 {
			t.Fatalf("alice: %v %v", users, err)
		}
		if sub == users[0].ID {
			t.Fatalf("pairwise sub is the user's ID %s", sub)
		}
	})
}
