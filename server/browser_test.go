package server_test

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/aero2/aero2/server/servertest"
)

// chromiumPath is Debian's Chromium, which ./scripts/test installs;
// $AERO2_TEST_CHROMIUM overrides it.
func chromiumPath() string {
	if p := os.Getenv("AERO2_TEST_CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// startChromium starts one headless Chromium for the test and returns its
// context; each scenario opens its own browser context (own cookies) in
// it. A missing Chromium fails the test: it never skips.
func startChromium(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath()
	if fi, err := os.Stat(path); err != nil || fi.IsDir() {
		t.Fatalf("the browser tests need Chromium at %s (%v): run ./scripts/test, which installs Debian's chromium, or set AERO2_TEST_CHROMIUM", path, err)
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		// This machine has no network: without these, Chromium's own
		// background connections fail and its connections are refused.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
	)
	log := servertest.Logger(t)
	ctx, cancel := chromedp.NewContext(alloc, chromedp.WithErrorf(func(f string, a ...any) {
		log.Warn("chromedp: " + fmt.Sprintf(f, a...))
	}))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// Start the browser now, with no deadline: a deadline on the first
	// run would end the whole browser with it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting Chromium at %s: %v", path, err)
	}
	return ctx
}

// headersPage is an upstream that shows the request it received as a
// page: the request URI and every header, one "Name: value" a line.
func headersPage(t *testing.T) *httptest.Server {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var lines []string
		for name, values := range r.Header {
			for _, v := range values {
				lines = append(lines, name+": "+v)
			}
		}
		slices.Sort(lines)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><title>upstream</title><p id=uri>%s</p><pre id=headers>%s</pre>",
			html.EscapeString(r.URL.RequestURI()), html.EscapeString(strings.Join(lines, "\n")))
	}))
	t.Cleanup(up.Close)
	return up
}

// tab is one scenario's browser context, with the documents it loaded.
type tab struct {
	ctx  context.Context
	mu   sync.Mutex
	docs []string // every document request, redirects included, in order
}

func newTab(t *testing.T, browser context.Context) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	ctx, cancelTimeout := context.WithTimeout(ctx, 30*time.Second)
	t.Cleanup(func() {
		cancelTimeout()
		cancel()
	})
	tb := &tab{ctx: ctx}
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok && e.Type == network.ResourceTypeDocument {
			tb.mu.Lock()
			tb.docs = append(tb.docs, e.Request.URL)
			tb.mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	return tb
}

func (tb *tab) do(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(tb.ctx, steps...); err != nil {
		t.Fatalf("%s: %v (documents so far: %v)", what, err, tb.documents())
	}
}

func (tb *tab) location(t *testing.T) string {
	t.Helper()
	loc, err := chromedp.Run(tb.ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func (tb *tab) text(t *testing.T, sel chromedp.CSS) string {
	t.Helper()
	s, err := chromedp.Run(tb.ctx, chromedp.Text(sel))
	if err != nil {
		t.Fatalf("reading %s: %v", sel, err)
	}
	return s
}

func (tb *tab) documents() []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return slices.Clone(tb.docs)
}

// signInThroughBrowser visits start in the tab, which must lead to
// Aero2's login page on the issuer; it continues with the dev provider,
// chooses user, and waits for the upstream's page.
func signInThroughBrowser(t *testing.T, tb *tab, start, issuer, user string) {
	t.Helper()
	tb.do(t, "visiting "+start, chromedp.Navigate(start), chromedp.WaitVisible(chromedp.CSS(`ul.providers a.button`)))
	if loc := tb.location(t); !strings.HasPrefix(loc, issuer+"/login") {
		t.Fatalf("a protected route without a session should lead to %s/login, got %s", issuer, loc)
	}
	if link := tb.text(t, `ul.providers a.button`); link != "Continue with dev" {
		t.Fatalf("login page link: %q", link)
	}
	tb.do(t, "continuing with the dev provider", chromedp.Click(chromedp.CSS(`ul.providers a.button`)),
		chromedp.WaitVisible(chromedp.CSS(`button[name=user][value=`+user+`]`)))
	tb.do(t, "choosing "+user, chromedp.Click(chromedp.CSS(`button[name=user][value=`+user+`]`)),
		chromedp.WaitVisible(chromedp.CSS(`#headers`)))
}

// checkIdentityPage checks that the upstream's page shows alice's
// identity headers and no Aero2 cookie.
func checkIdentityPage(t *testing.T, tb *tab) {
	t.Helper()
	headers := strings.Split(tb.text(t, `#headers`), "\n")
	for _, want := range []string{
		"X-Forwarded-Email: alice@example.com",
		"X-Auth-Request-Email: alice@example.com",
		"X-Forwarded-Preferred-Username: alice",
		"X-Forwarded-Groups: admins,engineering",
	} {
		if !slices.Contains(headers, want) {
			t.Errorf("the upstream's page lacks %q:\n%s", want, strings.Join(headers, "\n"))
		}
	}
	user := ""
	for _, h := range headers {
		if v, ok := strings.CutPrefix(h, "X-Forwarded-User: "); ok {
			user = v
		}
		if strings.HasPrefix(h, "Cookie: ") && strings.Contains(h, "aero2") {
			t.Errorf("an Aero2 cookie reached the upstream: %s", h)
		}
	}
	if user == "" {
		t.Error("no X-Forwarded-User on the upstream's page")
	}
}

// TestBrowserSignIn drives headless Chromium through the whole browser
// path, with Aero2's own provider: a protected route, the login page, the
// dev provider, and back on the exact URL asked for, where the upstream
// shows the identity headers it received. The second scenario's route is
// on another host than the issuer (app.localhost, which Chromium resolves
// to loopback): the sign-in crosses to the issuer's host and back through
// the proxy's handoff.
func TestBrowserSignIn(t *testing.T) {
	browser := startChromium(t)
	up := headersPage(t)
	in := servertest.Start(t, servertest.DevConfig+`
routes:
  - {path: /app, upstream: "`+up.URL+`"}
  - {host: "app.localhost:{{.Port}}", path: /, upstream: "`+up.URL+`"}
`, nil)
	issuerURL, _ := url.Parse(in.URL)

	t.Run("same host", func(t *testing.T) {
		tb := newTab(t, browser)
		start := in.URL + "/app/page?x=1"
		signInThroughBrowser(t, tb, start, in.URL, "alice")
		if loc := tb.location(t); loc != start {
			t.Errorf("the sign-in ended at %s, want %s", loc, start)
		}
		if uri := tb.text(t, `#uri`); uri != "/app/page?x=1" {
			t.Errorf("the upstream received %s", uri)
		}
		checkIdentityPage(t, tb)
	})

	t.Run("route on another host", func(t *testing.T) {
		tb := newTab(t, browser)
		appOrigin := "http://app.localhost:" + issuerURL.Port()
		start := appOrigin + "/dash/board?y=2"
		signInThroughBrowser(t, tb, start, in.URL, "alice")
		if loc := tb.location(t); loc != start {
			t.Errorf("the sign-in ended at %s, want %s", loc, start)
		}
		if uri := tb.text(t, `#uri`); uri != "/dash/board?y=2" {
			t.Errorf("the upstream received %s", uri)
		}
		checkIdentityPage(t, tb)
		// The way there: the provider on the issuer's host, the proxy's
		// callback on the issuer's host, the handoff on the app's host.
		docs := tb.documents()
		next := 0
		for _, want := range []string{
			start,
			in.URL + "/oauth2/authorize?",
			in.URL + "/login",
			in.URL + "/.aero2/callback?",
			appOrigin + "/.aero2/handoff?",
			start,
		} {
			i := slices.IndexFunc(docs[next:], func(d string) bool { return strings.HasPrefix(d, want) })
			if i < 0 {
				t.Fatalf("the browser did not load %s… (in order) on its way; it loaded:\n%s", want, strings.Join(docs, "\n"))
			}
			next += i + 1
		}
		// The proxy's session cookie belongs to the app's host alone; the
		// issuer's host holds the provider's session.
		if names := cookieNames(t, tb, appOrigin); !slices.Contains(names, "aero2_proxy") || slices.Contains(names, "aero2_session") {
			t.Errorf("cookies on the app's host: %v", names)
		}
		if names := cookieNames(t, tb, in.URL); slices.Contains(names, "aero2_proxy") || !slices.Contains(names, "aero2_session") {
			t.Errorf("cookies on the issuer's host: %v", names)
		}
	})
}

// cookieNames lists the names of the tab's cookies sent to u.
func cookieNames(t *testing.T, tb *tab, u string) []string {
	t.Helper()
	res, err := chromedp.Run(tb.ctx, func(ctx context.Context, tg *chromedp.Target) (network.GetCookiesResult, error) {
		return cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{u}})
	})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range res.Cookies {
		names = append(names, c.Name)
	}
	return names
}
