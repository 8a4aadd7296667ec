package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/server"
	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store/redis/redistest"
)

// offlineConfig: access tokens live 2s (the proxy session, an hour);
// {{HEADERS}} is the route's headers. (Placeholders in braces: a bare
// word could be part of the random Redis key prefix put in before them.)
const offlineConfig = servertest.DevConfig + `
tokens: {access_token: 2s}
routes:
  - {path: /app, upstream: "{{UP}}"{{HEADERS}}}
`

// TestOwnProviderAsksForOfflineAccessOnlyToForwardTokens: at Aero2's
// own provider, with the default proxy.scopes and no route that sends the
// access token, the proxy does not ask for offline_access: the provider
// stores no refresh token for the sign-in, and the proxy session, which
// keeps no token, outlives the access token issued with it (it stands or
// falls with the provider session). A reload that adds an access_token
// header sends that session to sign in again (it has no token to send),
// which the live provider session answers without a login page; the new
// session asks for offline_access, gets a refresh token, and forwards a
// fresh access token past the first one's expiry.
func TestOwnProviderAsksForOfflineAccessOnlyToForwardTokens(t *testing.T) {
	rc := redistest.Config(t)
	up := tokenEcho(t)
	tmpl := strings.Replace(offlineConfig, "store: {type: memory}", fmt.Sprintf("store: {type: redis, redis: {addrs: [%q], key_prefix: %q}}", rc.Addrs[0], rc.KeyPrefix), 1)
	tmpl = strings.Replace(tmpl, "{{UP}}", up.URL, 1)
	ln := httptest.NewUnstartedServer(nil)
	base := "http://" + ln.Listener.Addr().String()
	file := filepath.Join(t.TempDir(), "aero2.yaml")
	write := func(headers string) {
		src := strings.NewReplacer("{{.URL}}", base, "{{HEADERS}}", headers).Replace(tmpl)
		if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("")
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	live, err := server.NewLive(context.Background(), cfg, server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln.Config.Handler = live
	ln.Start()
	t.Cleanup(func() { ln.Close(); live.Close() })

	c := goredis.NewClient(&goredis.Options{Addr: rc.Addrs[0]})
	defer c.Close()
	refreshTokens := func() int {
		keys, err := c.Keys(t.Context(), rc.KeyPrefix+":*oauth:rt:*").Result()
		if err != nil {
			t.Fatal(err)
		}
		return len(keys)
	}

	b := servertest.NewBrowser(t)
	if p := b.SignInDev(base+"/app/start", "alice"); p.Status != http.StatusOK || p.Body != "" {
		t.Fatalf("sign-in ended at %d %s (body %q: no token is forwarded)", p.Status, p.URL, p.Body)
	}
	if n := refreshTokens(); n != 0 {
		t.Errorf("identity headers only: the sign-in stored %d refresh token(s)", n)
	}
	cookie := proxyCookie(t, b, base)
	time.Sleep(2500 * time.Millisecond) // past the access token's expiry
	if s := proxied(t, base, ln.Listener.Addr().String(), cookie, "/app/x"); s != http.StatusOK {
		t.Fatalf("the proxy session past its access token's expiry: %d", s)
	}

	write(", headers: {access_token: [X-Forwarded-Access-Token]}")
	if err := live.Reload(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	if s, loc := proxiedWhere(t, base, ln.Listener.Addr().String(), cookie, "/app/x"); s != http.StatusFound && s != http.StatusSeeOther || !strings.Contains(loc, "/oauth2/") {
		t.Fatalf("after the reload, the session without a token got %d %q, want a redirect to sign in", s, loc)
	}
	p := b.Get(base + "/app/x") // the provider session signs it in again
	if p.Status != http.StatusOK || p.Body == "" || strings.Contains(p.URL.Path, "/login") {
		t.Fatalf("sign-in again after the reload: %d %s, token %q", p.Status, p.URL, p.Body)
	}
	first := p.Body
	if n := refreshTokens(); n != 1 {
		t.Errorf("with the access token forwarded: %d refresh token(s) stored, want 1", n)
	}
	time.Sleep(2500 * time.Millisecond)
	// Refreshed, not signed in again: the answer is the upstream's.
	if s := proxied(t, base, ln.Listener.Addr().String(), proxyCookie(t, b, base), "/app/x"); s != http.StatusOK {
		t.Fatalf("past the first access token's expiry: %d, not refreshed", s)
	}
	if p := b.Get(base + "/app/x"); p.Status != http.StatusOK || p.Body == "" || p.Body == first {
		t.Errorf("past the first access token's expiry: %d, token %q (first %q): not refreshed", p.Status, p.Body, first)
	}
}
