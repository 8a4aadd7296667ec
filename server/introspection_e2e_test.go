package server_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/aero2/aero2/server"
	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store"
)

// audienceConfig: the proxy accepts bearer tokens for an API audience
// that is not its client ID.
const audienceConfig = `
insecure_dev: true
server: {public_url: "{{.URL}}"}
secrets:
  cookie_keys: ["` + servertest.CookieKey + `"]
  storage_key: "` + servertest.StorageKey + `"
identity_providers: [{id: dev, type: dev, config: {users: [{username: alice}]}}]
proxy: {audiences: [https://api.example], token_cache: 1s}
clients:
  - id: service
    secret: "` + bearerServiceSecret + `"
    grant_types: [client_credentials]
    audience: [https://api.example, https://other.example]
routes:
  - {path: /api, upstream: "UP", policy: {allow_client_credentials: true}}
`

// TestProxyIntrospectsTokensForItsAudiences: introspection answers
// "active" only to a token's parties (RFC 7662 §4). The proxy checks
// bearer tokens issued to other clients as a resource server: its client
// is named by the audiences it accepts (proxy.audiences), so such a token
// is admitted, while the same client learns nothing about tokens for
// other audiences.
func TestProxyIntrospectsTokensForItsAudiences(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		rc := &recorder{}
		up := httptest.NewServer(rc)
		t.Cleanup(up.Close)
		in := servertest.Start(t, strings.ReplaceAll(audienceConfig, "UP", up.URL), st)
		api := in.URL + "/api/things"

		forAPI := clientToken(t, in.URL, "service", bearerServiceSecret, "https://api.example")
		if h := bearerAdmitted(t, rc, api, forAPI); h.Get("X-Forwarded-User") != "service" {
			t.Errorf("upstream saw user %q", h.Get("X-Forwarded-User"))
		}
		forOther := clientToken(t, in.URL, "service", bearerServiceSecret, "https://other.example")
		bearerRefused(t, rc, api, forOther, "token for another audience")

		// What the proxy's client may learn at the introspection endpoint.
		proxySecret := server.ProxyClientSecret(in.Config, in.Config.Apps()[0].Name)
		for _, c := range []struct {
			name, token string
			active      bool
		}{
			{"a token for the proxy's audience", forAPI, true},
			{"a token for another audience", forOther, false},
		} {
			req, _ := http.NewRequest(http.MethodPost, in.URL+"/oauth2/introspect", strings.NewReader(url.Values{"token": {c.token}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth("aero2-proxy", url.QueryEscape(proxySecret))
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			err = json.NewDecoder(res.Body).Decode(&m)
			res.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != http.StatusOK || (m["active"] == true) != c.active {
				t.Errorf("proxy client introspecting %s: %d %v, want active %t", c.name, res.StatusCode, m, c.active)
			}
		}
	})
}
