package proxy_test

import (
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/aero2/aero2/server/servertest"
)

var startAgainRE = regexp.MustCompile(`<a href="([^"]*)">Start again</a>`)

// startAgain is the "Start again" link of an error page, or "".
func startAgain(p *servertest.Page) string {
	m := startAgainRE.FindStringSubmatch(p.Body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// TestSignInErrorPagesOfferAWayOn: the proxy's /.aero2/ sign-in error
// pages have "Start again", as the /rp/ ones do: to a new sign-in of the
// page the sign-in was for once its record is known, else to the host's
// start page. The 404 page leads on too, and JSON clients get explicit
// codes.
func TestSignInErrorPagesOfferAWayOn(t *testing.T) {
	s := start(t, nil, routesYAML, nil)
	b := servertest.NewBrowser(t)

	// A callback nobody started: start again at the host's start page.
	p := b.Get(s.in.URL + "/.aero2/callback?state=default.forged&code=x")
	if p.Status != http.StatusBadRequest || startAgain(p) != "/" {
		t.Errorf("forged callback: %d, Start again %q\n%s", p.Status, startAgain(p), p.Body)
	}

	// The provider refused: start again signs in to the same page.
	callback := flowTo(t, b, s.in.URL+"/app/page?x=1&y=2", s.in.URL+"/.aero2/callback")
	u, _ := url.Parse(callback)
	q := u.Query()
	q.Del("code")
	q.Set("error", "access_denied")
	u.RawQuery = q.Encode()
	p = b.Get(u.String())
	again := startAgain(p)
	if p.Status != http.StatusForbidden || again != s.in.URL+"/.aero2/start?rd=%2Fapp%2Fpage%3Fx%3D1%26y%3D2" {
		t.Fatalf("refused sign-in: %d, Start again %q\n%s", p.Status, again, p.Body)
	}
	if p := b.Get(again); p.Status != http.StatusOK || p.URL.Path != "/app/page" || p.URL.RawQuery != "x=1&y=2" {
		t.Fatalf("Start again led to %d %s", p.Status, p.URL)
	}

	// A handoff in a browser that did not start it.
	handoff := flowTo(t, servertest.NewBrowser(t), s.in.URL+"/app", s.in.URL+"/.aero2/handoff")
	mallory := servertest.NewBrowser(t)
	flowTo(t, mallory, s.in.URL+"/app", s.in.URL+"/.aero2/callback")
	if p := mallory.Get(handoff); p.Status != http.StatusBadRequest || startAgain(p) == "" {
		t.Errorf("handoff in another browser: %d without Start again\n%s", p.Status, p.Body)
	}

	// 404: a way on for people, an explicit code for programs.
	if p := b.Get(s.in.URL + "/.aero2/nothing"); p.Status != http.StatusNotFound || !strings.Contains(p.Body, `<a href="/">Go to the start page</a>`) {
		t.Errorf("404 page: %d\n%s", p.Status, p.Body)
	}
	req, _ := http.NewRequest(http.MethodGet, s.in.URL+"/.aero2/nothing", nil)
	req.Header.Set("Accept", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]string
	json.NewDecoder(res.Body).Decode(&body)
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound || body["error"] != "not_found" {
		t.Errorf("404 for JSON: %d %v", res.StatusCode, body)
	}

	// One signed-out page, one wording.
	if p := b.Get(s.in.URL + "/.aero2/signed_out"); !strings.Contains(p.Body, "You are signed out.") || !strings.Contains(p.Body, `<a href="/">Sign in again</a>`) {
		t.Errorf("signed-out page:\n%s", p.Body)
	}
}
