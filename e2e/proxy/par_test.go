package proxy_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aero2/aero2/proxy/proxytest"
	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store"
)

// TestProxySignsInWithPAR: at a provider that advertises a PAR endpoint
// (its own application's), the proxy pushes its authorization requests
// (RFC 9126): the browser is sent to the authorization endpoint with only
// client_id and request_uri, so no sign-in parameter passes through it.
// An application that requires PAR of every client still lets the proxy
// sign users in.
func TestProxySignsInWithPAR(t *testing.T) {
	for _, c := range []struct {
		name string
		st   func(t *testing.T) store.Store
	}{{"memory", func(*testing.T) store.Store { return nil }}, {"redis", func(t *testing.T) store.Store { return servertest.SharedStore(t) }}} {
		t.Run(c.name, func(t *testing.T) {
			up, _ := proxytest.StartUpstream(t)
			cfg := servertest.DevConfig + "require_pushed_authorization_requests: true\n" + strings.ReplaceAll(ownProviderConfig, "UP", up.URL)
			in := servertest.Start(t, cfg, c.st(t))
			b := servertest.NewBrowser(t)
			authz := b.FollowUntil(in.URL+"/app/x", in.URL+"/oauth2/authorize")
			u, err := url.Parse(authz)
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			if len(q) != 2 || q.Get("client_id") == "" || !strings.HasPrefix(q.Get("request_uri"), "urn:ietf:params:oauth:request_uri:") {
				t.Fatalf("the proxy sent the browser to %s: want only client_id and a PAR request_uri", authz)
			}
			// The whole sign-in, through the pushed request.
			if pg := b.SignInDev(authz, "alice"); pg.Status != http.StatusOK || len(up.Seen()) != 1 {
				t.Fatalf("sign-in through the proxy with PAR: %d %s\n%s", pg.Status, pg.URL, pg.Body)
			}
		})
	}
}
