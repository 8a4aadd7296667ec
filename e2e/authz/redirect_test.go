package authz_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

const desktopSecret = "desktop-secret-0123456789abcdef-012345"

// loopbackConfig adds a native public client registered on loopback IP
// literals without a port, and a confidential client on a fixed loopback
// port.
const loopbackConfig = providerConfig + `
  - id: native
    redirect_uris: ["http://127.0.0.1/cb", "http://[::1]/cb"]
    first_party: true
  - id: desktop
    secret: "` + desktopSecret + `"
    redirect_uris: ["http://127.0.0.1:9790/cb"]
    first_party: true
`

// TestLoopbackRedirectURIs: RFC 8252 §7.3 lets a native app pick any port
// on a loopback IP literal at request time; that rule is for public
// (native) clients only. A confidential client's redirect URIs match
// character for character, port included: another port on the same
// machine is another program, and must never receive its codes.
func TestLoopbackRedirectURIs(t *testing.T) {
	e := start(t, loopbackConfig, nil)
	b := e.browser()
	// Sign in once, through a flow that is allowed.
	desktop := e.oauth("desktop", desktopSecret, "http://127.0.0.1:9790/cb", oauth2.AuthStyleInHeader)
	f := newFlow(desktop)
	if _, err := e.exchange(f, e.login(b, f, "alice")); err != nil {
		t.Fatalf("confidential client at its exact loopback URI: %v", err)
	}

	// The native client, on any port of the registered IP literal.
	for _, redirect := range []string{"http://127.0.0.1:51234/cb", "http://127.0.0.1/cb", "http://[::1]:4242/cb"} {
		f := newFlow(e.oauth("native", "", redirect, oauth2.AuthStyleInParams))
		res := e.response(b.Get(f.authURL))
		e.checkAuthResponse(f, res)
		if _, err := e.exchange(f, res); err != nil {
			t.Errorf("native client at %s: %v", redirect, err)
		}
	}

	refused := []struct {
		name, client, redirect string
	}{
		{"confidential client, another port", "desktop", "http://127.0.0.1:9791/cb"},
		{"confidential client, port left out", "desktop", "http://127.0.0.1/cb"},
		{"confidential client, IPv6 loopback", "desktop", "http://[::1]:9790/cb"},
		{"native client, another path", "native", "http://127.0.0.1:51234/other"},
		{"native client, another loopback address", "native", "http://127.0.0.2:51234/cb"},
		{"native client, https on the loopback address", "native", "https://127.0.0.1:51234/cb"},
		{"public client registered on localhost, another port", "spa", "http://localhost:8080/spa"},
	}
	for _, c := range refused {
		for _, mod := range []struct {
			name string
			fn   func(url.Values)
		}{
			{"valid request", func(url.Values) {}},
			// An error must not go there either.
			{"bad scope", func(v url.Values) { v.Set("scope", "openid admin") }},
		} {
			u := authorizeURL(e, func(v url.Values) {
				v.Set("client_id", c.client)
				v.Set("redirect_uri", c.redirect)
				mod.fn(v)
			})
			res, err := b.NoRedirects().Client.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if loc := res.Header.Get("Location"); res.StatusCode != http.StatusBadRequest || loc != "" {
				t.Errorf("%s (%s): %d to %q, want an error page and no redirect", c.name, mod.name, res.StatusCode, loc)
			}
		}
	}
	// The token endpoint compares the redirect URI with the authorization
	// request's, exactly: a code issued for one port is not redeemed with
	// another.
	f = newFlow(e.oauth("native", "", "http://127.0.0.1:51234/cb", oauth2.AuthStyleInParams))
	res := e.response(b.Get(f.authURL))
	other := e.oauth("native", "", "http://127.0.0.1:51235/cb", oauth2.AuthStyleInParams)
	if _, err := other.Exchange(e.ctx, res.Query.Get("code"), oauth2.VerifierOption(f.verifier)); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("code redeemed with another port's redirect URI: %v", err)
	}
}
