package observe_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"golang.org/x/oauth2"

	"github.com/aero2/aero2/audit"
	"github.com/aero2/aero2/server"
	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store"
)

// syncBuffer is the audit log's file: written by request goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestAuditLogOfAFullFlow runs every security decision a client or a
// browser can cause, with the audit log on, and checks that each one is
// one JSON line with its user, client, provider, reason, request ID and
// client address; then it looks in the whole log for every token, code,
// verifier, secret and cookie value the flows used, and fails if any
// appears.
func TestAuditLogOfAFullFlow(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		out := &syncBuffer{}
		e := start(t, st, server.Options{Audit: audit.New(out)})
		var secrets []string // every value that must never be logged
		secrets = append(secrets, webSecret, thirdSecret, servertest.CookieKey, servertest.StorageKey)

		// The proxy: a sign-in through Aero2's own provider, a proxied
		// request, one its policy refuses.
		b := servertest.NewBrowser(t)
		if p := b.SignInDev(e.in.URL+"/app/x", "alice"); p.Status != 200 {
			t.Fatalf("proxied sign-in: %d %s", p.Status, p.URL)
		}
		if p := b.Get(e.in.URL + "/finance/q"); p.Status != http.StatusForbidden {
			t.Fatalf("route alice's groups do not admit: %d", p.Status)
		}
		// Signing in again in the same browser replaces its session.
		if p := b.SignInDev(e.in.URL+"/rp/authorize?idp=dev&redirect_uri=/account", "alice"); p.Status != 200 {
			t.Fatalf("second sign-in: %d %s", p.Status, p.URL)
		}
		// A replayed callback.
		cb := b.DevCallback(e.in.URL+"/rp/authorize?idp=dev&redirect_uri=/account", "alice")
		for range 2 {
			if p := b.Get(cb); p.Status == 0 {
				t.Fatal("no answer")
			}
		}
		u, _ := url.Parse(cb)
		secrets = append(secrets, u.Query().Get("code"), u.Query().Get("state"))

		// The provider: a code exchange, a refresh, the old refresh token
		// again, the code again, a wrong secret, a revocation, and one
		// over the limit.
		wb := e.browser()
		code, verifier := e.codeIn(wb)
		tok, err := e.web.Exchange(e.ctx, code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		idt, _ := tok.Extra("id_token").(string)
		secrets = append(secrets, code, verifier, tok.AccessToken, tok.RefreshToken, idt)
		st2, body := e.postForm("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, webSecret)
		if st2 != 200 {
			t.Fatalf("refresh: %d %s", st2, body)
		}
		var refreshed struct{ AccessToken, RefreshToken, IDToken string }
		json.Unmarshal([]byte(strings.NewReplacer("access_token", "AccessToken", "refresh_token", "RefreshToken", "id_token", "IDToken").Replace(body)), &refreshed)
		if refreshed.RefreshToken == "" {
			t.Fatalf("no refresh token in %s", body)
		}
		secrets = append(secrets, refreshed.AccessToken, refreshed.RefreshToken, refreshed.IDToken)
		if st, _ := e.postForm("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, webSecret); st != http.StatusBadRequest {
			t.Fatalf("rotated refresh token again: %d", st)
		}
		if _, err := e.web.Exchange(e.ctx, code, oauth2.VerifierOption(verifier)); err == nil {
			t.Fatal("a used code was exchanged again")
		}
		if st, _ := e.postForm("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}, "wrong-secret-0123456789"); st != http.StatusUnauthorized {
			t.Fatalf("wrong secret: %d", st)
		}
		if st, body := e.postForm("/oauth2/revoke", url.Values{"token": {refreshed.AccessToken}}, webSecret); st != 200 {
			t.Fatalf("revoke: %d %s", st, body)
		}
		if st, _ := e.postForm("/oauth2/revoke", url.Values{"token": {refreshed.AccessToken}}, webSecret); st != http.StatusTooManyRequests {
			t.Fatalf("revocation over the limit: %d", st)
		}

		// Consent to a third-party client.
		tv := oauth2.GenerateVerifier()
		third := &oauth2.Config{ClientID: "third", ClientSecret: thirdSecret, RedirectURL: thirdRedirect, Endpoint: e.web.Endpoint, Scopes: []string{"openid"}}
		p := wb.Get(third.AuthCodeURL("state-third-0123456", oauth2.S256ChallengeOption(tv)))
		action, v := p.Form(t, "/oauth2/consent")
		v.Set("decision", "allow")
		if p := wb.PostForm(action, v); !strings.HasPrefix(p.Header.Get("Location"), thirdRedirect) {
			t.Fatalf("consent answered %d %q", p.Status, p.Header.Get("Location"))
		}
		// And removed from the account page.
		action, v = wb.Get(e.in.URL+"/account").Form(t, "/account/consents/remove")
		if v.Get("client") != "third" {
			t.Fatalf("remove form names %q", v.Get("client"))
		}
		if p := wb.PostForm(action, v); p.Status != http.StatusSeeOther && p.Status != http.StatusOK {
			t.Fatalf("remove consent: %d", p.Status)
		}
		for _, j := range []*servertest.Browser{b, wb} {
			for _, c := range j.Jar.Cookies(mustURL(e.in.URL)) {
				secrets = append(secrets, c.Value)
			}
		}

		log := out.String()
		var events []map[string]any
		sc := bufio.NewScanner(strings.NewReader(log))
		for sc.Scan() {
			var ev map[string]any
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Fatalf("not a JSON line: %q", sc.Text())
			}
			if ev["msg"] != "audit" || ev["event"] == nil || ev["time"] == nil {
				t.Errorf("not an audit event: %q", sc.Text())
			}
			// Every event here happened in a request.
			if id, _ := ev["request_id"].(string); id == "" || ev["client_addr"] != "127.0.0.1" {
				t.Errorf("event without its request: %q", sc.Text())
			}
			events = append(events, ev)
		}
		want := []map[string]string{
			{"event": "sign_in.succeeded", "idp": "dev", "user": "*"},
			{"event": "session.created", "idp": "dev", "user": "*", "session": "*"},
			{"event": "token.issued", "grant_type": "authorization_code", "client_id": "aero2-proxy", "user": "*"},
			{"event": "token.issued", "grant_type": "authorization_code", "client_id": "web", "user": "*"},
			{"event": "policy.denied", "route": "routes[1]", "user": "*"},
			{"event": "session.ended", "reason": "replaced", "user": "*", "session": "*"},
			{"event": "sign_in.failed", "reason": "state_used_or_expired"},
			{"event": "token.refreshed", "grant_type": "refresh_token", "client_id": "web", "user": "*"},
			{"event": "token.reuse_detected", "reason": "refresh_token", "client_id": "web"},
			{"event": "token.reuse_detected", "reason": "authorization_code", "client_id": "web"},
			{"event": "token.refused", "reason": "invalid_client"},
			{"event": "token.revoked", "client_id": "web"},
			{"event": "rate_limit.hit", "reason": "revoke"},
			{"event": "consent.given", "client_id": "third", "user": "*"},
			{"event": "consent.removed", "client_id": "third", "user": "*"},
		}
		for _, w := range want {
			if !hasEvent(events, w) {
				t.Errorf("no event %v in the audit log", w)
			}
		}
		for _, s := range secrets {
			if len(s) >= 8 && strings.Contains(log, s) {
				t.Errorf("the audit log contains a secret, token or cookie value: %q", s)
			}
		}
		if t.Failed() {
			t.Logf("audit log:\n%s", log)
		}
	})
}

// hasEvent reports whether one event has every field of w ("*": any
// non-empty value) and all of the same value.
func hasEvent(events []map[string]any, w map[string]string) bool {
	for _, ev := range events {
		ok := true
		for k, v := range w {
			got, _ := ev[k].(string)
			if got == "" || v != "*" && got != v {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}
