package authz_test

import (
	"encoding/json"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store"
)

// nodeClient is a client as openid-client (testdata/node) is told it.
type nodeClient struct {
	ID     string          `json:"id"`
	Auth   string          `json:"auth"`
	Secret string          `json:"secret,omitempty"`
	JWK    json.RawMessage `json:"jwk,omitempty"`
	Alg    string          `json:"alg,omitempty"`
}

func jwtClient(t *testing.T, id string, k clientKey) nodeClient {
	b, err := json.Marshal(jose.JSONWebKey{Key: k.priv, KeyID: k.kid})
	if err != nil {
		t.Fatal(err)
	}
	return nodeClient{ID: id, Auth: "private_key_jwt", JWK: b, Alg: string(k.alg)}
}

// nodeCmd is a command for client.mjs.
func nodeCmd(e *env, c nodeClient, op string, args map[string]any) map[string]any {
	m := map[string]any{"issuer": e.in.URL, "client": c, "op": op}
	for k, v := range args {
		m[k] = v
	}
	return m
}

// nodeOK fails the test when openid-client reported an error.
func nodeOK(t *testing.T, what string, m map[string]any) map[string]any {
	t.Helper()
	if m["error"] != nil {
		t.Fatalf("openid-client, %s: %v: %v (status %v)", what, m["error"], m["error_description"], m["status"])
	}
	return m
}

// nodeCodeFlow runs a whole code flow with openid-client: it builds the
// authorization URL (through PAR when par is set), the Go browser signs
// alice in, and openid-client redeems the code, then (as after asks)
// calls userinfo, introspection and refresh.
func nodeCodeFlow(t *testing.T, e *env, b *servertest.Browser, c nodeClient, par bool, after map[string]any) map[string]any {
	t.Helper()
	az := nodeOK(t, "authorization URL", servertest.RunNode(t, nodeCmd(e, c, "authorize", map[string]any{
		"redirect_uri": webRedirect, "scope": "openid profile", "par": par})))
	res := e.response(b.SignInDev(az["url"].(string), "alice"))
	args := map[string]any{"callback_url": res.URL.String(), "verifier": az["verifier"], "state": az["state"], "nonce": az["nonce"]}
	for k, v := range after {
		args[k] = v
	}
	return nodeOK(t, "code exchange", servertest.RunNode(t, nodeCmd(e, c, "callback", args)))
}

// TestOpenIDClientPrivateKeyJWT: openid-client authenticates with
// private_key_jwt (its own assertion: aud the issuer, its own jti and
// exp) for client credentials, and through a code flow with refresh and
// introspection.
func TestOpenIDClientPrivateKeyJWT(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		k1, ec := newRSAKey(t, "k1"), newECKey(t, "r1")
		js := newJWKSServer(t, jwksJSON(t, ec))
		e := start(t, assertionConfig(t, []clientKey{k1}, js.URL), st)

		md := nodeOK(t, "discovery", servertest.RunNode(t, nodeCmd(e, jwtClient(t, "signer", k1), "metadata", nil)))["metadata"].(map[string]any)
		if methods, _ := md["token_endpoint_auth_methods_supported"].([]any); !containsAny(methods, "private_key_jwt") {
			t.Fatalf("discovery: token_endpoint_auth_methods_supported %v", methods)
		}

		for _, c := range []nodeClient{jwtClient(t, "signer", k1), jwtClient(t, "rotator", ec)} {
			m := nodeOK(t, "client credentials as "+c.ID, servertest.RunNode(t, nodeCmd(e, c, "client_credentials", map[string]any{"scope": "api:read"})))
			if tok := m["tokens"].(map[string]any); tok["access_token"] == nil {
				t.Fatalf("%s: %v", c.ID, m)
			}
		}

		m := nodeCodeFlow(t, e, e.browser(), jwtClient(t, "signer", k1), false, map[string]any{"introspect": true, "refresh": true})
		if aud, _ := m["claims"].(map[string]any)["aud"].([]any); !containsAny(aud, "signer") {
			t.Fatalf("ID token: %v", m["claims"])
		}
		if in := m["introspection"].(map[string]any); in["active"] != true || in["client_id"] != "signer" {
			t.Fatalf("introspection by private_key_jwt: %v", in)
		}
		if r := m["refreshed"].(map[string]any)["tokens"].(map[string]any); r["access_token"] == nil || r["refresh_token"] == nil {
			t.Fatalf("refresh by private_key_jwt: %v", r)
		}

		// A key that is not the client's: openid-client signs, Aero2
		// refuses.
		m = servertest.RunNode(t, nodeCmd(e, jwtClient(t, "signer", newRSAKey(t, "k1")), "client_credentials", map[string]any{"scope": "api:read"}))
		if m["error"] != "invalid_client" {
			t.Fatalf("assertion signed by a key not in the JWKS: %v", m)
		}
	})
}

func containsAny(list []any, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
