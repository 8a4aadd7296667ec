package proxy_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aero2/aero2/proxy/proxytest"
	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/session"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/memory"
)

const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

func postLogout(t *testing.T, base, token string) int {
	t.Helper()
	res, err := http.PostForm(base+"/.aero2/backchannel-logout", url.Values{"logout_token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// noRedirect answers whether the browser's proxy session still admits
// /app without a round trip to the provider.
func admits(t *testing.T, s *setup, b *servertest.Browser) bool {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.in.URL+"/app/x", nil)
	c := *b.Client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode == http.StatusOK
}

// TestProxyBackchannelLogout: the proxy's /.aero2/backchannel-logout
// ends the proxy sessions of the provider session (sid) a valid logout
// token names — signature by the provider, iss, aud the proxy's client,
// the back-channel event, no nonce, a jti used once — and refuses, ending
// nothing, every token that falls short.
func TestProxyBackchannelLogout(t *testing.T) {
	s := start(t, nil, routesYAML, nil)
	s.op.SetSessionID("u-alice", "op-sid-1")
	b := servertest.NewBrowser(t)
	if p := b.Get(s.in.URL + "/app"); p.Status != 200 {
		t.Fatalf("sign-in: %d", p.Status)
	}
	_, idToken := s.op.Tokens(t)
	logout := func(edit func(c map[string]any)) string {
		return s.op.Resign(t, idToken, "logout+jwt", func(c map[string]any) {
			for _, k := range []string{"nonce", "at_hash", "c_hash", "auth_time", "amr", "azp"} {
				delete(c, k)
			}
			c["jti"] = "jti-" + time.Now().Format(time.RFC3339Nano)
			c["events"] = map[string]any{backchannelEvent: map[string]any{}}
			c["sid"] = "op-sid-1"
			c["iat"] = time.Now().Unix()
			c["exp"] = time.Now().Add(2 * time.Minute).Unix()
			if edit != nil {
				edit(c)
			}
		})
	}
	good := logout(nil)
	parts := strings.Split(good, ".")
	other := proxytest.StartOP(t)
	_, foreignID := other.Tokens(t)
	for name, tok := range map[string]string{
		"with a nonce":         logout(func(c map[string]any) { c["nonce"] = "n" }),
		"for another aud":      logout(func(c map[string]any) { c["aud"] = "another-client" }),
		"without events":       logout(func(c map[string]any) { delete(c, "events") }),
		"with another event":   logout(func(c map[string]any) { c["events"] = map[string]any{"urn:other": map[string]any{}} }),
		"event not an object":  logout(func(c map[string]any) { c["events"] = map[string]any{backchannelEvent: "yes"} }),
		"without jti":          logout(func(c map[string]any) { delete(c, "jti") }),
		"without sid and sub":  logout(func(c map[string]any) { delete(c, "sid"); delete(c, "sub") }),
		"expired":              logout(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() }),
		"from another issuer":  logout(func(c map[string]any) { c["iss"] = "https://evil.example" }),
		"typed as an ID token": s.op.Resign(t, good, "JWT", nil),
		"bad signature":        parts[0] + "." + parts[1] + "." + strings.Split(foreignID, ".")[2],
		"signed by another provider": other.Resign(t, foreignID, "logout+jwt", func(c map[string]any) {
			c["iss"] = s.op.Issuer
			c["jti"], c["sid"] = "x", "op-sid-1"
			c["events"] = map[string]any{backchannelEvent: map[string]any{}}
			delete(c, "nonce")
		}),
		"an ID token": idToken,
		"garbage":     "not.a.jwt",
		"empty":       "",
	} {
		if st := postLogout(t, s.in.URL, tok); st != http.StatusBadRequest {
			t.Errorf("logout token %s: %d, want 400", name, st)
		}
	}
	if !admits(t, s, b) {
		t.Fatal("a refused logout token ended the session")
	}
	// Two logout_token values, or a GET: refused.
	res, _ := http.PostForm(s.in.URL+"/.aero2/backchannel-logout", url.Values{"logout_token": {good, good}})
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest {
		t.Errorf("two logout_token values: %d", res.StatusCode)
	}
	if res, _ := http.Get(s.in.URL + "/.aero2/backchannel-logout"); res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", res.StatusCode)
	}

	if st := postLogout(t, s.in.URL, good); st != http.StatusOK {
		t.Fatalf("valid logout token: %d", st)
	}
	if admits(t, s, b) {
		t.Fatal("the proxy session admits after its back-channel logout")
	}
	if st := postLogout(t, s.in.URL, good); st != http.StatusBadRequest {
		t.Fatalf("replayed jti: %d, want 400", st)
	}

	// A logout token with sub and no sid ends all the subject's sessions.
	b2, b3 := servertest.NewBrowser(t), servertest.NewBrowser(t)
	s.op.SetSessionID("u-alice", "op-sid-2")
	b2.Get(s.in.URL + "/app")
	s.op.SetSessionID("u-alice", "op-sid-3")
	b3.Get(s.in.URL + "/app")
	if !admits(t, s, b2) || !admits(t, s, b3) {
		t.Fatal("sign-ins")
	}
	if st := postLogout(t, s.in.URL, logout(func(c map[string]any) { delete(c, "sid") })); st != http.StatusOK {
		t.Fatalf("logout by sub: %d", st)
	}
	if admits(t, s, b2) || admits(t, s, b3) {
		t.Fatal("sessions of the subject admit after a logout by sub")
	}
}

// TestOwnProviderLogoutReachesTheProxyByBackchannel: at Aero2's own
// provider the proxy's client is registered for back-channel logout, so
// a sign-out at the provider (the account page) POSTs a logout token to
// the proxy, which drops the sessions of it that it caches and deletes
// their records — not only stops admitting them through the
// provider-session check. (It keeps no index to find others by: those
// are refused, and deleted, at their next use;
// server/ownsessions_test.go.)
func TestOwnProviderLogoutReachesTheProxyByBackchannel(t *testing.T) {
	st := memory.New()
	t.Cleanup(func() { st.Close() })
	up, _ := proxytest.StartUpstream(t)
	in := servertest.Start(t, servertest.DevConfig+strings.ReplaceAll(ownProviderConfig, "UP", up.URL), st)
	b := servertest.NewBrowser(t)
	if pg := b.SignInDev(in.URL+"/app/x", "alice"); pg.Status != http.StatusOK {
		t.Fatalf("sign-in through the proxy: %d", pg.Status)
	}
	u, _ := url.Parse(in.URL)
	var proxyIDs []string
	for _, c := range b.Client.Jar.Cookies(u) {
		if strings.Contains(c.Name, "proxy") && !strings.Contains(c.Name, "login") {
			// The cookie is the token, then "." and the provider
			// session's ID (a hint for reading both at once).
			token, _, _ := strings.Cut(c.Value, ".")
			if id, ok := session.TokenID(token); ok {
				proxyIDs = append(proxyIDs, id)
			}
		}
	}
	if len(proxyIDs) != 1 {
		t.Fatalf("proxy session cookies: %v", b.Client.Jar.Cookies(u))
	}
	if _, err := st.Get(context.Background(), "default", "proxy-session:"+proxyIDs[0]); err != nil {
		t.Fatalf("proxy session record: %v", err)
	}
	acct := b.Get(in.URL + "/account")
	action, fields := acct.Form(t, "/logout")
	b.PostForm(action, fields)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := st.Get(context.Background(), "default", "proxy-session:"+proxyIDs[0])
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the proxy session record is still there 10s after the provider logout (%v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
