package server_test

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/aero2/aero2/server/servertest"
)

// screenshotWidths are a desktop and a phone (WCAG 1.4.10 Reflow: content
// must fit 320 CSS px without scrolling sideways; 390 px is a common
// phone).
var screenshotWidths = []int64{1280, 390}

// TestPagesFitTheScreen renders the sign-in, consent, account and 403
// pages in headless Chromium at 1280 px and 390 px wide and checks that
// none is wider than the window (no horizontal scrolling). Screenshots go
// to $AERO2_SCREENSHOTS when set, else to the test's temporary folder:
// the assertion is what counts.
func TestPagesFitTheScreen(t *testing.T) {
	browser := startChromium(t)
	up := headersPage(t)
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, "<!doctype html><title>client</title><p id=done>back at the client</p>")
	}))
	t.Cleanup(cb.Close)
	in := servertest.Start(t, servertest.DevConfig+`
display_name: Example Corporation Single Sign-On
clients:
  - id: reports
    name: Quarterly Reporting Dashboard (third party)
    secret: "reports-secret-0123456789abcdef-0123456"
    redirect_uris: ["`+cb.URL+`/cb"]
    scopes: [openid, profile, email, groups, offline_access]
routes:
  - {path: /app, upstream: "`+up.URL+`"}
  - {path: /admin, upstream: "`+up.URL+`", policy: {allowed_groups: [nobody-has-this-group]}}
`, nil)
	dir := os.Getenv("AERO2_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Other sessions of alice's, so that the account page lists several.
	for range 2 {
		servertest.NewBrowser(t).SignInDev(in.URL+"/login", "alice")
	}

	tb := newTab(t, browser)
	card := chromedp.CSS(`main.card`)
	fits := func(name string) {
		t.Helper()
		for _, width := range screenshotWidths {
			tb.do(t, fmt.Sprintf("%s at %d px", name, width), chromedp.EmulateViewport(width, 900))
			type size struct{ ScrollWidth, InnerWidth int64 }
			got, err := chromedp.Run(tb.ctx, chromedp.Evaluate[size](`({ScrollWidth: document.documentElement.scrollWidth, InnerWidth: window.innerWidth})`))
			if err != nil {
				t.Fatalf("%s at %d px: %v", name, width, err)
			}
			if got.InnerWidth != width {
				t.Fatalf("%s: the window is %d px wide, want %d", name, got.InnerWidth, width)
			}
			if got.ScrollWidth > got.InnerWidth {
				t.Errorf("the %s page is %d px wide in a %d px window: it scrolls sideways (WCAG 1.4.10)", name, got.ScrollWidth, got.InnerWidth)
			}
			png, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatalf("screenshot of %s: %v", name, err)
			}
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%d.png", name, width)), png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Sign-in.
	tb.do(t, "the sign-in page", chromedp.Navigate(in.URL+"/login"), chromedp.WaitVisible(chromedp.CSS(`ul.providers a.button`)))
	fits("sign-in")
	tb.do(t, "signing in", chromedp.Click(chromedp.CSS(`ul.providers a.button`)), chromedp.WaitVisible(chromedp.CSS(`button[name=user][value=alice]`)),
		chromedp.Click(chromedp.CSS(`button[name=user][value=alice]`)), chromedp.WaitVisible(chromedp.CSS(`dl.who`)))

	// Consent, for a third-party client asking for every scope.
	verifier := strings.Repeat("v", 50)
	sum := sha256.Sum256([]byte(verifier))
	authorize := in.URL + "/oauth2/authorize?" + url.Values{
		"client_id": {"reports"}, "redirect_uri": {cb.URL + "/cb"}, "response_type": {"code"},
		"scope": {"openid profile email groups offline_access"}, "state": {"state-0123456789"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}.Encode()
	tb.do(t, "the consent page", chromedp.Navigate(authorize), chromedp.WaitVisible(chromedp.CSS(`button[value=allow]`)))
	fits("consent")
	tb.do(t, "allowing", chromedp.Click(chromedp.CSS(`button[value=allow]`)), chromedp.WaitVisible(chromedp.CSS(`#done`)))

	// The account page: identities, several sessions, the allowed
	// application.
	tb.do(t, "the account page", chromedp.Navigate(in.URL+"/account"), chromedp.WaitVisible(card))
	count := func(sel string) int {
		n, err := chromedp.Run(tb.ctx, chromedp.Evaluate[int](`document.querySelectorAll('`+sel+`').length`))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(`button[aria-label^="Sign out this session: "]`); n != 2 {
		t.Errorf("the account page has %d labelled session buttons, want 2", n)
	}
	if n := count(`button[aria-label^="Remove access for "]`); n != 1 {
		t.Errorf("the account page has %d Remove access buttons, want 1", n)
	}
	fits("account")

	// 403: signed in, but the route's policy does not admit alice.
	tb.do(t, "the 403 page", chromedp.Navigate(in.URL+"/admin"), chromedp.WaitVisible(card))
	if h1 := tb.text(t, `h1`); h1 != "Access denied" {
		t.Fatalf("/admin shows %q, want the 403 page", h1)
	}
	fits("403")
	t.Logf("screenshots in %s", dir)
}
