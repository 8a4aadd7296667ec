package authz_test

import (
	"net/http"
	"net/url"
	"testing"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/aero2/aero2/store"
)

const (
	apiSecret    = "api-rs-secret-0123456789abcdef-0123456"
	callerSecret = "caller-secret-0123456789abcdef-0123456"
)

// introspectionConfig adds a resource server client (api-rs, which only
// introspects) and a service that gets tokens for it.
const introspectionConfig = providerConfig + `
  - id: api-rs
    secret: "` + apiSecret + `"
    grant_types: [client_credentials]
  - id: caller
    secret: "` + callerSecret + `"
    grant_types: [client_credentials]
    audience: [api-rs]
`

// TestIntrospectionIsForTheTokensParties: introspection says "active" only
// to the client the token was issued to, to a resource server its
// audience names, and to configured introspectors; to any other client a
// live token is exactly {"active": false}, like a dead one (RFC 7662 §4).
func TestIntrospectionIsForTheTokensParties(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		e := start(t, introspectionConfig, st)
		cc := &clientcredentials.Config{ClientID: "caller", ClientSecret: callerSecret, TokenURL: e.provider.Endpoint().TokenURL,
			EndpointParams: url.Values{"audience": {"api-rs"}}}
		forAPI, err := cc.Token(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		user := grant(e) // web's, for the issuer's own audience

		secrets := map[string]string{"web": webSecret, "third": thirdSecret, "service": serviceSecret, "api-rs": apiSecret, "caller": callerSecret}
		for _, c := range []struct {
			name, token, hint, as string
			active                bool
		}{
			{"service token, its client", forAPI.AccessToken, "", "caller", true},
			{"service token, the resource server its audience names", forAPI.AccessToken, "", "api-rs", true},
			{"service token, an introspector", forAPI.AccessToken, "", "service", true},
			{"service token, an unrelated client", forAPI.AccessToken, "", "third", false},
			{"service token, another client of the user", forAPI.AccessToken, "", "web", false},
			{"user access token, its client", user.AccessToken, "", "web", true},
			{"user access token, an introspector", user.AccessToken, "", "service", true},
			{"user access token, an unrelated client", user.AccessToken, "", "third", false},
			{"user access token, a resource server it does not name", user.AccessToken, "", "api-rs", false},
			{"refresh token, its client", user.RefreshToken, "refresh_token", "web", true},
			{"refresh token, an introspector", user.RefreshToken, "refresh_token", "service", true},
			{"refresh token, an unrelated client", user.RefreshToken, "refresh_token", "third", false},
			{"refresh token, without a hint, an unrelated client", user.RefreshToken, "", "api-rs", false},
		} {
			form := url.Values{"token": {c.token}}
			if c.hint != "" {
				form.Set("token_type_hint", c.hint)
			}
			id, secret := c.as, secrets[c.as]
			if c.as == "third" { // client_secret_post
				form.Set("client_id", id)
				form.Set("client_secret", secret)
				id, secret = "", ""
			}
			status, _, m := e.post("/oauth2/introspect", form, id, secret)
			if status != http.StatusOK {
				t.Fatalf("%s: %d %v", c.name, status, m)
			}
			if c.active {
				if m["active"] != true || m["sub"] == nil {
					t.Errorf("%s: %v, want active with its claims", c.name, m)
				}
			} else if len(m) != 1 || m["active"] != false {
				t.Errorf("%s: %v, want exactly {\"active\": false}", c.name, m)
			}
		}
	})
}
