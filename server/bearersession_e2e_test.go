package server_test

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store/memory"
)

// TestBearerTokenSessionCheckIsCached: a user's bearer token names its
// provider session (sid), which the proxy checks before it admits the
// token. The check is cached as a browser's session is: repeated calls of
// an API client cost no store read of the session, and a sign-out still
// refuses the token at once where endings are broadcast (here, with
// session_cache 30s and token_cache 60s, nothing else would refuse it
// within the test).
func TestBearerTokenSessionCheckIsCached(t *testing.T) {
	cs := servertest.NewCountingStore(memory.New())
	t.Cleanup(func() { cs.Store.Close() })
	rc := &recorder{}
	up := httptest.NewServer(rc)
	t.Cleanup(up.Close)
	cfg := strings.Replace(strings.ReplaceAll(bearerConfig, "UP", up.URL),
		"proxy: {token_cache: 1s}", "proxy: {token_cache: 60s, session_cache: 30s, session_cache_invalidated: 10m}", 1)
	in := servertest.StartWith(t, cfg, servertest.Options{Store: cs})
	issA, api := in.URL+"/a", in.URL+"/api/things"

	b := servertest.NewBrowser(t)
	u, exchange := authorizeIn(t, b, issA, "alice", "cli", bearerCLISecret, "aero2-proxy")
	token := exchange(u.Query().Get("code")).AccessToken
	bearerAdmitted(t, rc, api, token) // introspected, its session read
	cs.Drain()
	for range 5 {
		bearerAdmitted(t, rc, api, token)
	}
	if calls := cs.Drain(); calls.Count()["GetSession"] != 0 {
		t.Errorf("5 requests with a checked token read the session again: %q", calls.Strings())
	}

	action, f := b.Get(issA+"/account").Form(t, "/logout")
	if p := b.PostForm(action, f); !strings.Contains(p.Body, "You are signed out") {
		t.Fatalf("sign-out: %d %s", p.Status, p.URL)
	}
	// The broadcast is handled as it arrives, not in the request that
	// ended the session: a moment, never session_cache.
	deadline := time.Now().Add(2 * time.Second)
	for bearerDo(t, api, token).StatusCode != 401 {
		if time.Now().After(deadline) {
			t.Fatal("the token of an ended session is still admitted 2s after the sign-out")
		}
		time.Sleep(10 * time.Millisecond)
	}
	bearerRefused(t, rc, api, token, "token of an ended session")
}
