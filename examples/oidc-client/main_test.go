package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/aero2/aero2/server/servertest"
)

// TestAgainstQuickstart runs the example against an Aero2 using the
// quickstart's own client entry, and a browser through sign-in, consent,
// refresh and logout.
func TestAgainstQuickstart(t *testing.T) {
	quick, err := os.ReadFile("../quickstart/aero2.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The quickstart's clients section, pointed at this test's port.
	clients := string(quick[strings.Index(string(quick), "\nclients:"):])
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	public := fmt.Sprintf("http://localhost:%d", ln.Addr().(*net.TCPAddr).Port)
	clients = strings.ReplaceAll(clients, "http://localhost:5555", public)
	clients = strings.ReplaceAll(clients, "${OIDC_EXAMPLE_SECRET:-quickstart-oidc-example-secret-not-for-production}", "quickstart-oidc-example-secret-not-for-production")
	in := servertest.Start(t, servertest.DevConfig+clients, nil)

	h, err := newApp(context.Background(), in.URL, "oidc-example", "quickstart-oidc-example-secret-not-for-production", public)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	defer srv.Close()

	b := servertest.NewBrowser(t)
	p := b.SignInDev(public+"/login", "alice")
	// A third-party client: the consent page.
	action, fields := p.Form(t, "/oauth2/consent")
	fields.Set("decision", "allow")
	p = b.PostForm(action, fields)
	for _, want := range []string{"Signed in.", "alice@example.com", "sid", "Userinfo", "engineering"} {
		if !strings.Contains(p.Body, want) {
			t.Fatalf("home page after sign-in lacks %q:\n%s", want, p.Body)
		}
	}
	if strings.Contains(p.Body, `color:#b00`) {
		t.Fatalf("error shown:\n%s", p.Body)
	}
	p = b.PostForm(public+"/refresh", nil)
	if !strings.Contains(p.Body, "Signed in.") || strings.Contains(p.Body, `color:#b00`) {
		t.Fatalf("after refresh:\n%s", p.Body)
	}
	p = b.PostForm(public+"/logout", nil)
	if p.Status != http.StatusOK || !strings.Contains(p.Body, "Sign in with Aero2") || strings.Contains(p.Body, `color:#b00`) {
		t.Fatalf("after logout: %d\n%s", p.Status, p.Body)
	}
	// Aero2's session is gone: signing in again shows the login page.
	if p := b.Get(public + "/login"); !strings.HasSuffix(p.URL.Path, "/login") || p.URL.Host == strings.TrimPrefix(public, "http://") {
		t.Fatalf("after logout, sign-in did not ask again: %s", p.URL)
	}
}
