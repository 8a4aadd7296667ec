package server_test

import (
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/aero2/aero2/server/servertest"
)

// exampleConfig reads a config under examples/ and makes a test template
// of it: each of replace's pairs (an address in the file, its stand-in)
// is replaced.
func exampleConfig(t *testing.T, file string, replace ...string) string {
	t.Helper()
	data, err := os.ReadFile("../examples/" + file)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	for i := 0; i+1 < len(replace); i += 2 {
		if !strings.Contains(s, replace[i]) {
			t.Fatalf("%s does not mention %s", file, replace[i])
		}
		s = strings.ReplaceAll(s, replace[i], replace[i+1])
	}
	return s
}

// TestQuickstartAddressesWork: the quickstart's documented addresses, with
// its own config: "/" is the account page (through sign-in) and /demo the
// app behind the proxy.
func TestQuickstartAddressesWork(t *testing.T) {
	ir, upURL := newIdentityUpstream(t)
	in := servertest.Start(t, exampleConfig(t, "quickstart/aero2.yaml", "http://localhost:8080", "{{.URL}}", "http://127.0.0.1:8081", upURL), nil)
	b := servertest.NewBrowser(t)
	if p := b.SignInDev(in.URL+"/", "alice"); p.Status != 200 || p.URL.Path != "/account" || !strings.Contains(p.Body, "alice@example.com") {
		t.Fatalf("/ ended at %d %s", p.Status, p.URL)
	}
	if p := b.Get(in.URL + "/demo"); p.Status != 200 || !strings.HasPrefix(p.Body, "upstream") || !ir.saw("alice@example.com") {
		t.Errorf("/demo: %d %q", p.Status, p.Body)
	}
}

// TestSidecarKeepsTheAppsOwnPaths: the sidecar example puts its issuer at
// /.aero2, so every one of Aero2's pages and endpoints is under the
// reserved prefix and the legacy app keeps all its own paths, /login and
// /account included; signing in goes through /.aero2/login.
func TestSidecarKeepsTheAppsOwnPaths(t *testing.T) {
	_, upURL := newIdentityUpstream(t)
	in := servertest.Start(t, exampleConfig(t, "sidecar/aero2.yaml", "https://legacy.example.com", "{{.URL}}", "http://127.0.0.1:3000", upURL), nil)
	b := servertest.NewBrowser(t)
	p := b.Get(in.URL + "/reports?q=1")
	if p.Status != 200 || p.URL.Path != "/.aero2/login" {
		t.Fatalf("a protected page led to %d %s", p.Status, p.URL)
	}
	if p := b.SignInDev(in.URL+"/reports?q=1", "alice"); p.Status != 200 || p.URL.RequestURI() != "/reports?q=1" || p.Body != "upstream /reports?q=1" {
		t.Fatalf("the sign-in ended at %d %s: %q", p.Status, p.URL, p.Body)
	}
	for _, path := range []string{"/login", "/account", "/logout", "/oauth2/token", "/.well-known/openid-configuration", "/"} {
		if p := b.NoRedirects().Get(in.URL + path); p.Status != 200 || p.Body != "upstream "+path {
			t.Errorf("the app's own %s: %d %q", path, p.Status, p.Body)
		}
	}
	if p := b.Get(in.URL + "/.aero2/account"); p.Status != 200 || !strings.Contains(p.Body, "alice@example.com") {
		t.Errorf("Aero2's account page: %d %s", p.Status, p.URL)
	}
	res, err := http.Get(in.URL + "/.aero2/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("discovery under the issuer: %d", res.StatusCode)
	}
}
