package authz_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/redis"
	"github.com/aero2/aero2/store/redis/redistest"
)

// rpServer is a relying party's back-channel logout endpoint: it records
// the logout tokens POSTed to it, and answers 503 while fail is above 0
// (counting down).
type rpServer struct {
	*httptest.Server
	fail atomic.Int32
	mu   sync.Mutex
	got  []string
	ch   chan string
}

func newRPServer(t *testing.T) *rpServer {
	rp := &rpServer{ch: make(chan string, 16)}
	rp.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/bcl" || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if rp.fail.Add(-1) >= 0 {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		body, _ := io.ReadAll(r.Body)
		v, _ := url.ParseQuery(string(body))
		rp.mu.Lock()
		rp.got = append(rp.got, v.Get("logout_token"))
		rp.mu.Unlock()
		rp.ch <- v.Get("logout_token")
	}))
	t.Cleanup(rp.Close)
	return rp
}

// next waits for the next logout token.
func (rp *rpServer) next(t *testing.T, within time.Duration) string {
	t.Helper()
	select {
	case tok := <-rp.ch:
		return tok
	case <-time.After(within):
		t.Fatalf("no logout token within %s", within)
		return ""
	}
}

const rpRedirect = "http://localhost/rp/cb"

func backchannelConfig(rp *rpServer) string {
	return providerConfig + `
  - id: rp
    secret: "` + webSecret + `"
    redirect_uris: ["` + rpRedirect + `"]
    post_logout_redirect_uris: ["http://localhost/rp/bye"]
    first_party: true
    backchannel_logout_uri: "` + rp.URL + `/bcl"
    backchannel_logout_session_required: true
`
}

// rpSignIn signs alice in through the rp client, and returns its ID
// token, verified by go-oidc.
func rpSignIn(t *testing.T, e *env, b *servertest.Browser) (*oidc.IDToken, string) {
	t.Helper()
	f := newFlow(e.oauth("rp", webSecret, rpRedirect, oauth2.AuthStyleInHeader))
	tok, err := e.exchange(f, e.login(b, f, "alice"))
	if err != nil {
		t.Fatal(err)
	}
	return e.verifyIDToken(f, tok), tok.Extra("id_token").(string)
}

// checkLogoutToken verifies a logout token as an RP would, with go-oidc's
// logout verifier, and what Back-Channel Logout 1.0 §2.4 requires of it.
func checkLogoutToken(t *testing.T, e *env, raw string, idt *oidc.IDToken) {
	t.Helper()
	lt, err := e.provider.Verifier(oidcConfig("rp")).VerifyLogout(e.ctx, raw)
	if err != nil {
		t.Fatalf("go-oidc refused the logout token: %v", err)
	}
	var idClaims struct {
		SID string `json:"sid"`
	}
	idt.Claims(&idClaims)
	if lt.SessionID == "" || lt.SessionID != idClaims.SID || lt.Subject != idt.Subject {
		t.Fatalf("logout token sid %q sub %q, want the ID token's %q %q", lt.SessionID, lt.Subject, idClaims.SID, idt.Subject)
	}
	if h := jwtHeader(t, raw); h["typ"] != "logout+jwt" {
		t.Fatalf("logout token header %v: want typ logout+jwt", h)
	}
	c := jwtClaims(t, raw)
	if _, ok := c["nonce"]; ok || c["jti"] == nil || c["iat"] == nil || c["exp"] == nil {
		t.Fatalf("logout token claims %v", c)
	}
	ev, _ := c["events"].(map[string]any)
	if _, ok := ev["http://schemas.openid.net/event/backchannel-logout"].(map[string]any); !ok || len(ev) != 1 {
		t.Fatalf("logout token events %v", c["events"])
	}
}

// TestBackchannelLogout: however a session ends — RP-initiated logout,
// the account page's "sign out everywhere" — each client that got tokens
// in it and registered a backchannel_logout_uri is POSTed a logout token
// that go-oidc accepts; one that did not get tokens in the session is told
// nothing. Discovery says so.
func TestBackchannelLogout(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		rp := newRPServer(t)
		e := start(t, backchannelConfig(rp), st)
		var md struct {
			Supported bool `json:"backchannel_logout_supported"`
			Session   bool `json:"backchannel_logout_session_supported"`
		}
		if err := e.provider.Claims(&md); err != nil || !md.Supported || !md.Session {
			t.Fatalf("discovery: %+v %v", md, err)
		}

		// 1. RP-initiated logout.
		b := e.browser()
		idt, raw := rpSignIn(t, e, b)
		p := b.Get(e.in.URL + "/oauth2/logout?" + url.Values{"id_token_hint": {raw}, "post_logout_redirect_uri": {"http://localhost/rp/bye"}}.Encode())
		if p.Status != http.StatusSeeOther {
			t.Fatalf("logout: %d", p.Status)
		}
		checkLogoutToken(t, e, rp.next(t, 10*time.Second), idt)

		// 2. Two browsers, "sign out everywhere" from one: both sessions'
		// logouts arrive.
		b1, b2 := e.browser(), e.browser()
		idt1, _ := rpSignIn(t, e, b1)
		idt2, _ := rpSignIn(t, e, b2)
		acct := b1.Get(e.in.URL + "/account")
		action, fields := formWith(t, acct, "everywhere")
		if p := b1.PostForm(action, fields); p.Status != http.StatusOK && p.Status != http.StatusSeeOther {
			t.Fatalf("sign out everywhere: %d", p.Status)
		}
		sids := map[string]bool{}
		for range 2 {
			lt, err := e.provider.Verifier(oidcConfig("rp")).VerifyLogout(e.ctx, rp.next(t, 10*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			sids[lt.SessionID] = true
		}
		for _, idt := range []*oidc.IDToken{idt1, idt2} {
			var c struct {
				SID string `json:"sid"`
			}
			idt.Claims(&c)
			if !sids[c.SID] {
				t.Fatalf("no logout token for session %s (got %v)", c.SID, sids)
			}
		}

		// 3. A session in which rp got no tokens tells rp nothing.
		b3 := e.browser()
		f := newFlow(e.web())
		if _, err := e.exchange(f, e.login(b3, f, "alice")); err != nil {
			t.Fatal(err)
		}
		acct = b3.Get(e.in.URL + "/account")
		action, fields = formWith(t, acct, "")
		b3.PostForm(action, fields)
		select {
		case tok := <-rp.ch:
			t.Fatalf("rp was told of a session it had no tokens in: %s", tok)
		case <-time.After(2 * time.Second):
		}
	})
}

// formWith finds the account page's logout form: with everywhere=1 when
// want is "everywhere", else the plain one.
func formWith(t *testing.T, p *servertest.Page, want string) (string, url.Values) {
	t.Helper()
	for _, m := range strings.Split(p.Body, "<form")[1:] {
		if !strings.Contains(m, "/logout") {
			continue
		}
		if (want == "everywhere") != strings.Contains(m, `name="everywhere"`) {
			continue
		}
		fake := &servertest.Page{Body: "<form" + m, URL: p.URL, Status: p.Status}
		action, v := fake.Form(t, "/logout")
		if u, err := p.URL.Parse(action); err == nil {
			action = u.String()
		}
		return action, v
	}
	t.Fatalf("no logout form (%s) on the account page:\n%s", want, p.Body)
	return "", nil
}

// TestBackchannelLogoutRetriesAndSurvivesARestart: an RP that is down is
// retried with backoff; a logout queued by a process that then stops is
// delivered by the next one on the same Redis.
func TestBackchannelLogoutRetriesAndSurvivesARestart(t *testing.T) {
	rp := newRPServer(t)
	rp.fail.Store(2) // two failures, then success: retried after 1s and 2s
	e := start(t, backchannelConfig(rp), redistest.New(t))
	b := e.browser()
	idt, raw := rpSignIn(t, e, b)
	started := time.Now()
	b.Get(e.in.URL + "/oauth2/logout?" + url.Values{"id_token_hint": {raw}, "post_logout_redirect_uri": {"http://localhost/rp/bye"}}.Encode())
	checkLogoutToken(t, e, rp.next(t, 15*time.Second), idt)
	if d := time.Since(started); d < 2*time.Second {
		t.Fatalf("delivered after %s: the two retries did not back off", d)
	}

	// A restart: the first process queues the logout while the RP is
	// down, and stops; the second, on the same Redis, delivers it.
	cfg := redistest.Config(t)
	open := func() store.Store {
		s, err := redis.Open(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	rp.fail.Store(1000)
	first := servertest.StartWith(t, backchannelConfig(rp), servertest.Options{Store: open()})
	e1 := &env{t: t, in: first, provider: mustProvider(t, first.URL), ctx: e.ctx}
	b = e1.browser()
	idt, raw = rpSignIn(t, e1, b)
	b.Get(first.URL + "/oauth2/logout?" + url.Values{"id_token_hint": {raw}, "post_logout_redirect_uri": {"http://localhost/rp/bye"}}.Encode())
	time.Sleep(1500 * time.Millisecond) // at least one failed attempt
	first.HTTP.Close()
	first.Server.Close()
	rp.fail.Store(0)
	select {
	case tok := <-rp.ch:
		t.Fatalf("delivered by a stopped process: %s", tok)
	case <-time.After(500 * time.Millisecond):
	}
	second := servertest.StartWith(t, backchannelConfig(rp), servertest.Options{Store: open(), PublicURL: first.URL})
	_ = second
	checkLogoutToken(t, e1, rp.next(t, 30*time.Second), idt)
}

func mustProvider(t *testing.T, issuer string) *oidc.Provider {
	t.Helper()
	p, err := oidc.NewProvider(oidc.ClientContext(context.Background(), http.DefaultClient), issuer)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
