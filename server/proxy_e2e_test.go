package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/aero2/aero2/authz"
	"github.com/aero2/aero2/proxy"
	"github.com/aero2/aero2/server"
	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store"
)

// recorder is an upstream that records the headers it receives.
type recorder struct {
	mu   sync.Mutex
	seen []http.Header
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	rc.seen = append(rc.seen, r.Header.Clone())
	rc.mu.Unlock()
	w.Write([]byte("upstream " + r.URL.RequestURI()))
}

func (rc *recorder) last(t *testing.T) http.Header {
	t.Helper()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.seen) == 0 {
		t.Fatal("the upstream received nothing")
	}
	return rc.seen[len(rc.seen)-1]
}

// TestProxySignsInThroughOwnProvider: a browser on a protected route goes
// through Aero2's own provider (code flow with PKCE, as a first-party
// client), the login page and the dev provider, and comes back to the exact
// URL with its identity in headers.
func TestProxySignsInThroughOwnProvider(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		rc := &recorder{}
		up := httptest.NewServer(rc)
		defer up.Close()
		in := servertest.Start(t, servertest.DevConfig+`
routes:
  - path: /app
    upstream: "`+up.URL+`"
`, st)
		b := servertest.NewBrowser(t)
		p := b.SignInDev(in.URL+"/app/reports?q=1", "alice")
		if p.Status != 200 || p.URL.RequestURI() != "/app/reports?q=1" || p.Body != "upstream /app/reports?q=1" {
			t.Fatalf("ended at %d %s: %q", p.Status, p.URL, p.Body)
		}
		h := rc.last(t)
		if h.Get("X-Forwarded-Email") != "alice@example.com" || h.Get("X-Forwarded-Preferred-Username") != "alice" ||
			h.Get("X-Forwarded-Groups") != "admins,engineering" || h.Get("X-Forwarded-User") == "" {
			t.Fatalf("identity headers: %v", h)
		}
		if strings.Contains(h.Get("Cookie"), "aero2") {
			t.Errorf("Aero2 cookies reached the upstream: %q", h.Get("Cookie"))
		}
		// The proxy is first-party: no consent page was shown, and the
		// second visit needs no sign-in at all.
		if p := b.NoRedirects().Get(in.URL + "/app/x"); p.Status != 200 {
			t.Fatalf("second request: %d", p.Status)
		}
	})
}

// proxyWithUpstream starts Aero2 with one protected route /app in front of
// a recording upstream.
func proxyWithUpstream(t *testing.T, st store.Store, extra string) (*servertest.Instance, *recorder) {
	t.Helper()
	rc := &recorder{}
	up := httptest.NewServer(rc)
	t.Cleanup(up.Close)
	in := servertest.Start(t, servertest.DevConfig+extra+`
routes:
  - path: /app
    upstream: "`+up.URL+`"
    headers: {access_token: [X-Forwarded-Access-Token]}
`, st)
	return in, rc
}

// eventuallyRefused polls the route without following redirects until the
// proxy stops admitting the browser (302 to sign in), for at most 10s: the
// proxy trusts a validated session for session_cache (2s by default).
func eventuallyRefused(t *testing.T, b *servertest.Browser, u string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p := b.NoRedirects().Get(u)
		if p.Status == http.StatusFound {
			return
		}
		if p.Status != http.StatusOK {
			t.Fatalf("unexpected %d while waiting for the proxy to refuse", p.Status)
		}
		if time.Now().After(deadline) {
			t.Fatal("the proxy still admits a browser whose provider session ended")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestProxySignOutEndsTheProviderSession(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		in, rc := proxyWithUpstream(t, st, "")
		b := servertest.NewBrowser(t)
		b.SignInDev(in.URL+"/app", "alice")
		token := rc.last(t).Get("X-Forwarded-Access-Token")
		if token == "" {
			t.Fatal("no access token forwarded")
		}
		p := b.Get(in.URL + "/.aero2/sign_out")
		action, v := p.Form(t, "/.aero2/sign_out")
		p = b.PostForm(in.URL+action, v)
		if p.Status != 200 || p.URL.Path != "/.aero2/signed_out" {
			t.Fatalf("sign-out ended at %d %s:\n%s", p.Status, p.URL, p.Body)
		}
		// The provider session is gone: its pages ask to sign in again...
		if p := b.Get(in.URL + "/account"); !strings.HasSuffix(p.URL.Path, "/login") {
			t.Errorf("provider session survived the proxy sign-out: %s", p.URL)
		}
		// ...the proxy does too, at once on this host...
		if p := b.NoRedirects().Get(in.URL + "/app"); p.Status != http.StatusFound {
			t.Errorf("proxy still admits after its sign-out: %d", p.Status)
		}
		// ...and the tokens issued in it are revoked.
		if active := introspectActive(t, in, token); active {
			t.Error("the proxy's access token is still active after sign-out")
		}
	})
}

func TestProviderSignOutStopsTheProxy(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		in, rc := proxyWithUpstream(t, st, "")
		b := servertest.NewBrowser(t)
		b.SignInDev(in.URL+"/app", "alice")
		token := rc.last(t).Get("X-Forwarded-Access-Token")
		// Sign out on Aero2's own account page, not at the proxy.
		p := b.Get(in.URL + "/account")
		action, v := p.Form(t, "/logout")
		if p := b.PostForm(action, v); !strings.Contains(p.Body, "You are signed out") {
			t.Fatalf("logout: %d %s", p.Status, p.URL)
		}
		eventuallyRefused(t, b, in.URL+"/app")
		if introspectActive(t, in, token) {
			t.Error("access token still active after the provider sign-out")
		}
	})
}

func TestSessionEndedOnAnotherDeviceStopsTheProxy(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		in, _ := proxyWithUpstream(t, st, "")
		laptop, phone := servertest.NewBrowser(t), servertest.NewBrowser(t)
		laptop.SignInDev(in.URL+"/login", "alice")
		if p := phone.SignInDev(in.URL+"/app", "alice"); p.Status != 200 {
			t.Fatalf("phone sign-in through the proxy: %d", p.Status)
		}
		// The laptop ends the phone's session from the account page.
		_, v := laptop.Get(in.URL+"/account").Form(t, "/account/sessions/end")
		laptop.PostForm(in.URL+"/account/sessions/end", v)
		eventuallyRefused(t, phone, in.URL+"/app")
		if p := laptop.NoRedirects().Get(in.URL + "/account"); p.Status != 200 {
			t.Errorf("the laptop lost its own session: %d", p.Status)
		}
	})
}

// introspectActive asks the provider, as the proxy's own client, whether a
// token is active.
func introspectActive(t *testing.T, in *servertest.Instance, token string) bool {
	t.Helper()
	return introspectAs(t, in, "aero2-proxy", server.ProxyClientSecret(in.Config, "default"), token)
}

// introspectAs asks the provider, as clientID, whether a token is active.
func introspectAs(t *testing.T, in *servertest.Instance, clientID, secret, token string) bool {
	t.Helper()
	return introspectForm(t, in, clientID, secret, url.Values{"token": {token}})
}

// introspectForm is introspectAs with the whole form (a token_type_hint).
func introspectForm(t *testing.T, in *servertest.Instance, clientID, secret string, form url.Values) bool {
	t.Helper()
	req, _ := http.NewRequest("POST", in.URL+"/oauth2/introspect", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, secret)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		Active bool `json:"active"`
	}
	if res.StatusCode != 200 || json.NewDecoder(res.Body).Decode(&body) != nil {
		t.Fatalf("introspection: %d", res.StatusCode)
	}
	return body.Active
}

// TestAssertionCannotPassForAnAccessToken: with Aero2's own provider and a
// route for "/" on the issuer's own origin, the identity assertion's
// audience is not the issuer (the audience of access tokens asked for
// without a resource) and its typ is neither an access token's nor an ID
// token's: the provider's userinfo and the proxy's bearer check both
// refuse it, and a verifier expecting the issuer as audience does too.
func TestAssertionCannotPassForAnAccessToken(t *testing.T) {
	rc := &recorder{}
	up := httptest.NewServer(rc)
	defer up.Close()
	in := servertest.Start(t, servertest.DevConfig+`
routes:
  - path: /
    upstream: "`+up.URL+`"
    headers: {assertion: X-Aero2-Assertion}
`, nil)
	b := servertest.NewBrowser(t)
	if p := b.SignInDev(in.URL+"/x", "alice"); p.Status != 200 {
		t.Fatalf("sign-in: %d %s", p.Status, p.URL)
	}
	jwt := rc.last(t).Get("X-Aero2-Assertion")
	if jwt == "" {
		t.Fatal("no assertion reached the upstream")
	}
	if proxy.AssertionType != authz.AssertionType {
		t.Fatalf("the proxy requires typ %q, the provider signs %q", proxy.AssertionType, authz.AssertionType)
	}
	typ, aud := header(t, jwt)["typ"], claims(t, jwt)["aud"]
	if typ != authz.AssertionType || aud != "urn:aero2:assertion:"+in.URL {
		t.Errorf("assertion typ %q, aud %q (issuer %s)", typ, aud, in.URL)
	}
	ks := oidc.NewRemoteKeySet(context.Background(), in.URL+"/.well-known/jwks.json")
	if _, err := oidc.NewVerifier(in.URL, ks, &oidc.Config{ClientID: "urn:aero2:assertion:" + in.URL}).Verify(context.Background(), jwt); err != nil {
		t.Errorf("the assertion does not verify against the provider's JWKS: %v", err)
	}
	if _, err := oidc.NewVerifier(in.URL, ks, &oidc.Config{ClientID: in.URL}).Verify(context.Background(), jwt); err == nil {
		t.Error("the assertion verifies with the issuer as audience")
	}
	for _, u := range []string{in.URL + "/oauth2/userinfo", in.URL + "/x"} {
		before := rc.count()
		res := bearerDo(t, u, jwt)
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("the assertion as a bearer token at %s: %d, want 401", u, res.StatusCode)
		}
		if rc.count() != before {
			t.Errorf("the assertion as a bearer token reached the upstream")
		}
	}
}
