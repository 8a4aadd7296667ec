package server_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/server"
	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/redis/redistest"
)

// stores runs a test on the memory store and on the real Redis.
func stores(t *testing.T, fn func(t *testing.T, st store.Store)) {
	t.Run("memory", func(t *testing.T) { fn(t, nil) })
	t.Run("redis", func(t *testing.T) { fn(t, servertest.SharedStore(t)) })
}

func TestDevSignInEndsOnAccountPage(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		in := servertest.Start(t, servertest.DevConfig, st)
		b := servertest.NewBrowser(t)
		p := b.Get(in.URL + "/")
		if !strings.HasSuffix(p.URL.Path, "/login") || p.Status != 200 || !strings.Contains(p.Body, "Continue with dev") {
			t.Fatalf("unauthenticated / should end on the login page; got %d %s", p.Status, p.URL)
		}
		p = b.SignInDev(p.URL.String(), "alice")
		if p.Status != 200 || p.URL.Path != "/account" {
			t.Fatalf("sign-in ended at %d %s", p.Status, p.URL)
		}
		for _, want := range []string{"Signed in as Alice Admin", "alice@example.com", "verified", "admins, engineering", "Signed in with</dt><dd>dev"} {
			if !strings.Contains(p.Body, want) {
				t.Errorf("account page lacks %q", want)
			}
		}
		// The session cookie is HttpOnly, SameSite=Lax, not Secure only
		// because this is plain-http loopback under insecure_dev.
		u, _ := url.Parse(in.URL)
		var found bool
		for _, c := range b.Jar.Cookies(u) {
			found = found || c.Name == "aero2_session"
		}
		if !found {
			t.Error("no session cookie in the jar")
		}
	})
}

func TestSessionCookieFlagsOnTheWire(t *testing.T) {
	in := servertest.Start(t, servertest.DevConfig, nil)
	b := servertest.NewBrowser(t)
	callback := b.DevCallback(in.URL+"/rp/authorize?idp=dev&redirect_uri=/account", "alice")
	res, err := b.NoRedirects().Client.Get(callback)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	var setCookie string
	for _, c := range res.Header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "aero2_session=") {
			setCookie = c
		}
	}
	for _, want := range []string{"HttpOnly", "SameSite=Lax", "Path=/"} {
		if !strings.Contains(setCookie, want) {
			t.Errorf("session Set-Cookie %q lacks %s", setCookie, want)
		}
	}
	if strings.Contains(setCookie, "Domain=") {
		t.Errorf("session cookie has a Domain (would reach subdomains): %q", setCookie)
	}
}

func TestCallbackReplayAndForgery(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		in := servertest.Start(t, servertest.DevConfig, st)
		b := servertest.NewBrowser(t)
		callback := b.DevCallback(in.URL+"/rp/authorize?idp=dev&redirect_uri=/account", "alice")

		// The callback in another browser (no binding cookie) fails and
		// does not consume the state...
		other := servertest.NewBrowser(t)
		if p := other.Get(callback); p.Status != 400 || !strings.Contains(p.Body, "invalid_state") {
			t.Fatalf("callback without the binding cookie: %d", p.Status)
		}
		// ...so the real browser still completes it, once.
		if p := b.Get(callback); p.Status != 200 || p.URL.Path != "/account" {
			t.Fatalf("first callback: %d %s", p.Status, p.URL)
		}
		if p := b.Get(callback); p.Status != 400 || !strings.Contains(p.Body, "already used or has expired") {
			t.Fatalf("replayed callback: %d\n%s", p.Status, p.Body)
		}
		// A forged state, and an oversized one.
		for _, q := range []string{"code=x&state=forged", "code=x&state=" + strings.Repeat("a", 10000), "code=x"} {
			if p := b.Get(in.URL + "/rp/callback/dev?" + q); p.Status != 400 {
				t.Errorf("callback ?%.40s: status %d", q, p.Status)
			}
		}
	})
}

func TestCallbackForAnotherProviderIsRefused(t *testing.T) {
	cfg := servertest.DevConfig + `
  - id: other
    type: dev
    config:
      users: [{username: mallory}]
`
	in := servertest.Start(t, cfg, nil)
	b := servertest.NewBrowser(t)
	callback := b.DevCallback(in.URL+"/rp/authorize?idp=dev&redirect_uri=/account", "alice")
	// Deliver dev's answer to the other provider's callback (mix-up).
	mixed := strings.Replace(callback, "/rp/callback/dev?", "/rp/callback/other?", 1)
	if p := b.Get(mixed); p.Status != 400 || !strings.Contains(p.Body, "another identity provider") {
		t.Fatalf("mixed-up callback: %d\n%s", p.Status, p.Body)
	}
}

func TestRedirectTargetsAreChecked(t *testing.T) {
	in := servertest.Start(t, servertest.DevConfig, nil)
	b := servertest.NewBrowser(t)
	for _, target := range []string{
		"https://evil.example", "//evil.example", `/\evil.example`, "javascript:alert(1)",
		"/\t/evil.example", "http://127.0.0.1:1/", "data:text/html,x", "evil.example",
	} {
		for _, path := range []string{"/rp/authorize?idp=dev&redirect_uri=", "/login?return_to="} {
			p := b.Get(in.URL + path + url.QueryEscape(target))
			if p.Status != 400 || !strings.Contains(p.Body, "does not allow") {
				t.Errorf("%s%q: status %d, want 400", path, target, p.Status)
			}
		}
	}
	// Same-origin targets are fine, relative or absolute.
	for _, target := range []string{"/account?tab=1", in.URL + "/account"} {
		p := servertest.NewBrowser(t).SignInDev(in.URL+"/rp/authorize?idp=dev&redirect_uri="+url.QueryEscape(target), "alice")
		if p.Status != 200 || p.URL.Path != "/account" {
			t.Errorf("return to %q: ended at %d %s", target, p.Status, p.URL)
		}
	}
}

func TestUnknownProviderAndBadDevInput(t *testing.T) {
	in := servertest.Start(t, servertest.DevConfig, nil)
	b := servertest.NewBrowser(t)
	if p := b.Get(in.URL + "/rp/authorize?idp=nope"); p.Status != 400 {
		t.Errorf("unknown idp: %d", p.Status)
	}
	if p := b.Get(in.URL + "/rp/callback/nope?state=x&code=y"); p.Status != 400 {
		t.Errorf("callback of unknown idp: %d", p.Status)
	}
	p := b.Get(in.URL + "/rp/authorize?idp=dev")
	action, v := p.Form(t, "/rp/idp/")
	v.Set("user", "mallory") // not a configured user
	if p := b.PostForm(action, v); p.Status != 400 {
		t.Errorf("unknown dev user: %d", p.Status)
	}
	v.Set("user", "alice")
	v.Set("pad", strings.Repeat("x", 64<<10))
	if p := b.PostForm(action, v); p.Status != 400 {
		t.Errorf("oversized dev form: %d", p.Status)
	}
	// A cross-site post (as a browser sends it) is refused.
	req, _ := http.NewRequest("POST", action, strings.NewReader("user=alice&state=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	res, err := b.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site post to the dev provider: %d", res.StatusCode)
	}
}

func TestLogoutAndSignOutEverywhere(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		in := servertest.Start(t, servertest.DevConfig, st)
		laptop, phone := servertest.NewBrowser(t), servertest.NewBrowser(t)
		laptop.SignInDev(in.URL+"/login", "alice")
		p := phone.SignInDev(in.URL+"/login", "alice")
		if !strings.Contains(p.Body, "Active sessions") || strings.Count(p.Body, "<small>Signed in with dev, ") < 2 {
			t.Fatalf("account page does not list both sessions:\n%s", p.Body)
		}

		// Without the CSRF token, logout is refused.
		action, v := p.Form(t, "/logout")
		if p := phone.PostForm(action, url.Values{}); p.Status != 403 {
			t.Errorf("logout without csrf: %d", p.Status)
		}
		if p := phone.PostForm(action, url.Values{"csrf": {"forged"}}); p.Status != 403 {
			t.Errorf("logout with forged csrf: %d", p.Status)
		}
		v.Set("everywhere", "1")
		if p := phone.PostForm(action, v); p.Status != 200 || !strings.Contains(p.Body, "You are signed out") {
			t.Fatalf("logout everywhere: %d %s", p.Status, p.URL)
		}
		for name, b := range map[string]*servertest.Browser{"phone": phone, "laptop": laptop} {
			if p := b.Get(in.URL + "/account"); !strings.HasSuffix(p.URL.Path, "/login") {
				t.Errorf("%s still signed in after sign-out everywhere (%s)", name, p.URL)
			}
		}
	})
}

func TestApplicationsAreIsolated(t *testing.T) {
	cfg := `
insecure_dev: true
secrets:
  cookie_keys: ["` + servertest.CookieKey + `"]
  storage_key: "` + servertest.StorageKey + `"
applications:
  - name: shop
    issuer: "{{.URL}}/shop"
    identity_providers: [{id: dev, type: dev, config: {users: [{username: alice}]}}]
  - name: blog
    issuer: "{{.URL}}/blog"
    identity_providers: [{id: dev, type: dev, config: {users: [{username: alice}]}}]
`
	stores(t, func(t *testing.T, st store.Store) {
		in := servertest.Start(t, cfg, st)
		b := servertest.NewBrowser(t)
		p := b.SignInDev(in.URL+"/shop/login", "alice")
		if p.Status != 200 || p.URL.Path != "/shop/account" {
			t.Fatalf("shop sign-in ended at %d %s", p.Status, p.URL)
		}
		// The blog does not know the shop's session.
		if p := b.Get(in.URL + "/blog/account"); p.URL.Path != "/blog/login" {
			t.Errorf("blog accepted the shop's session: %s", p.URL)
		}
		// A callback of the shop's flow is worthless at the blog.
		callback := b.DevCallback(in.URL+"/shop/rp/authorize?idp=dev", "alice")
		cross := strings.Replace(callback, "/shop/", "/blog/", 1)
		if p := b.Get(cross); p.Status != 400 {
			t.Errorf("shop's callback accepted by the blog: %d", p.Status)
		}
		// Unknown paths and hosts.
		if p := b.Get(in.URL + "/elsewhere"); p.Status != 404 {
			t.Errorf("path of no application: %d", p.Status)
		}
		u, _ := url.Parse(in.URL)
		if p := b.Get("http://localhost:" + u.Port() + "/shop/login"); p.Status != http.StatusMisdirectedRequest {
			t.Errorf("host of no application: %d", p.Status)
		}
	})
}

func TestHealthAndStatic(t *testing.T) {
	in := servertest.Start(t, servertest.DevConfig, nil)
	b := servertest.NewBrowser(t)
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/.aero2/static/aero2.css": 200, "/.aero2/static/nope.css": 404} {
		if p := b.Get(in.URL + path); p.Status != want {
			t.Errorf("%s: %d, want %d", path, p.Status, want)
		}
	}
	p := b.Get(in.URL + "/login")
	if csp := p.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("login page CSP = %q", csp)
	}
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestRedisOutageGives503AndRecovers(t *testing.T) {
	p := redistest.PrivateServer(t)
	in := servertest.Start(t, servertest.DevConfig, p.Open(t))
	b := servertest.NewBrowser(t)
	if p := b.SignInDev(in.URL+"/login", "alice"); p.URL.Path != "/account" {
		t.Fatalf("sign-in before the outage ended at %s", p.URL)
	}

	p.Stop(t)
	if p := b.Get(in.URL + "/readyz"); p.Status != 503 || !strings.Contains(p.Body, "store unavailable") {
		t.Errorf("/readyz during the outage: %d %q", p.Status, p.Body)
	}
	if p := b.Get(in.URL + "/healthz"); p.Status != 200 {
		t.Errorf("/healthz during the outage: %d (the process is up)", p.Status)
	}
	for _, path := range []string{"/account", "/rp/authorize?idp=dev"} {
		pg := b.Get(in.URL + path)
		servertest.CheckUnavailable(t, p, path+" during the outage", pg)
		if !strings.Contains(pg.Body, "cannot reach its storage") {
			t.Errorf("%s during the outage does not say what is wrong:\n%s", path, pg.Body)
		}
	}

	p.Start(t)
	servertest.AwaitStore(t, in.URL)
	if p := b.Get(in.URL + "/account"); p.Status != 200 || p.URL.Path != "/account" {
		t.Errorf("the session did not survive the outage: %d %s", p.Status, p.URL)
	}
	if p := servertest.NewBrowser(t).SignInDev(in.URL+"/login", "alice"); p.Status != 200 || p.URL.Path != "/account" {
		t.Fatalf("sign-in after recovery: %d %s", p.Status, p.URL)
	}
}

func TestUnreachableRedisAtStartIsOneLine(t *testing.T) {
	port := freePort(t) // nothing listens there
	src := strings.Replace(servertest.DevConfig, "store: {type: memory}", fmt.Sprintf("store: {type: redis, redis: {addrs: [\"127.0.0.1:%d\"], dial_timeout: 300ms}}", port), 1)
	src = strings.Replace(src, "{{.URL}}", "http://127.0.0.1:1", 1)
	cfg, err := config.Parse("x.yaml", []byte(src), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	_, err = server.New(context.Background(), cfg, server.Options{Logger: servertest.Logger(t)})
	if err == nil {
		t.Fatal("server started without its Redis")
	}
	msg := err.Error()
	if !strings.Contains(msg, fmt.Sprintf("redis at 127.0.0.1:%d", port)) || strings.Contains(msg, "\n") {
		t.Errorf("error = %q, want one line naming the address", msg)
	}
}

func TestCheckReportsConnectorProblems(t *testing.T) {
	src := strings.Replace(servertest.DevConfig, "insecure_dev: true\n", "", 1)
	src = strings.Replace(src, "{{.URL}}", "https://auth.example.com", 1)
	src += "  - id: gh\n    type: gitlub\n  - id: dev2\n    type: dev\n    config: {users: [{name: nobody}], bogus: 1}\n"
	cfg, err := config.Parse("x.yaml", []byte(src), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	err = server.Check(context.Background(), cfg, nil)
	if err == nil {
		t.Fatal("check passed")
	}
	for _, want := range []string{
		"x.yaml:10:5: identity_providers[0].type: the dev identity provider signs anyone in without a password: it needs insecure_dev: true",
		`identity_providers[1].type: unknown identity provider type "gitlub" (known: dev, github, gitlab, google, microsoft, oidc)`,
		`identity_providers[2].config.bogus: unknown key "bogus"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("check output lacks %q:\n%s", want, err)
		}
	}
}

// TestExamplesPassCheck runs `check` on every config under examples/.
func TestExamplesPassCheck(t *testing.T) {
	files, _ := filepath.Glob("../examples/*/*.yaml")
	more, _ := filepath.Glob("../examples/*/*/*.yaml")
	files = append(files, more...)
	n := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), "identity_providers:") {
			continue // not an Aero2 config (a Kubernetes manifest, …)
		}
		n++
		t.Run(f, func(t *testing.T) {
			cfg, err := config.Load(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := server.Check(context.Background(), cfg, nil); err != nil {
				t.Fatal(err)
			}
		})
	}
	if n == 0 {
		t.Fatal("no example configs found")
	}
}

// TestDevCodeIsBoundToItsSignIn: a code the dev provider issued for one
// sign-in cannot finish another, even in the same browser.
func TestDevCodeIsBoundToItsSignIn(t *testing.T) {
	in := servertest.Start(t, servertest.DevConfig, nil)
	b := servertest.NewBrowser(t)
	first := b.DevCallback(in.URL+"/rp/authorize?idp=dev", "alice")
	second := b.DevCallback(in.URL+"/rp/authorize?idp=dev", "eve")
	u1, _ := url.Parse(first)
	u2, _ := url.Parse(second)
	// alice's code with the second sign-in's state.
	q := u2.Query()
	q.Set("code", u1.Query().Get("code"))
	u2.RawQuery = q.Encode()
	if p := b.Get(u2.String()); p.Status != 502 || strings.Contains(p.Body, "Alice") {
		t.Fatalf("code of another sign-in accepted: %d", p.Status)
	}
	if p := b.Get(in.URL + "/account"); !strings.HasSuffix(p.URL.Path, "/login") {
		t.Fatal("signed in with a code of another sign-in")
	}
}

// TestAccountEndsOnlyOwnSessions: the session handle in the account page's
// form ends the signed-in user's own sessions, never another user's.
func TestAccountEndsOnlyOwnSessions(t *testing.T) {
	in := servertest.Start(t, servertest.DevConfig, nil)
	laptop, phone, eve := servertest.NewBrowser(t), servertest.NewBrowser(t), servertest.NewBrowser(t)
	laptop.SignInDev(in.URL+"/login", "alice")
	phone.SignInDev(in.URL+"/login", "alice")
	eve.SignInDev(in.URL+"/login", "eve")

	// The laptop's account page offers to end the phone's session.
	_, aliceForm := laptop.Get(in.URL+"/account").Form(t, "/account/sessions/end")
	// Eve posts that handle with her own valid CSRF token.
	_, eveLogout := eve.Get(in.URL+"/account").Form(t, "/logout")
	eve.PostForm(in.URL+"/account/sessions/end", url.Values{"csrf": {eveLogout.Get("csrf")}, "session": {aliceForm.Get("session")}})
	if p := phone.Get(in.URL + "/account"); p.URL.Path != "/account" {
		t.Fatal("eve ended alice's session")
	}
	// Alice ends it herself from the laptop.
	laptop.PostForm(in.URL+"/account/sessions/end", aliceForm)
	if p := phone.Get(in.URL + "/account"); !strings.HasSuffix(p.URL.Path, "/login") {
		t.Fatal("the phone's session survived being ended from the laptop")
	}
	if p := laptop.Get(in.URL + "/account"); p.URL.Path != "/account" {
		t.Fatal("ending the phone's session ended the laptop's")
	}
}
