package server_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store"
)

// Clients of the bearer tests. "service" exists, with the same secret, in
// both applications: the only difference between its tokens is the
// application that issued them.
const (
	bearerServiceSecret = "service-secret-0123456789abcdef-012345"
	bearerShortSecret   = "short-secret-0123456789abcdef-01234567"
	bearerCLISecret     = "cli-secret-0123456789abcdef-0123456789"
	bearerThirdSecret   = "third-secret-0123456789abcdef-01234567"
	bearerRedirect      = "http://127.0.0.1/cb" // never fetched: the flow stops at it
)

// bearerConfig is two applications of one Aero2. Application a protects
// /api (any signed-in caller, services with client credentials too),
// /people (signed-in users only) and /admin (group admins) and accepts
// bearer tokens for the proxy's audience; application b protects /b-api.
const bearerConfig = `
insecure_dev: true
store: {type: memory}
secrets:
  cookie_keys: ["` + servertest.CookieKey + `"]
  storage_key: "` + servertest.StorageKey + `"
applications:
  - name: a
    issuer: "{{.URL}}/a"
    identity_providers:
      - id: dev
        type: dev
        config:
          users:
            - {username: alice, name: Alice Admin, email: alice@example.com, groups: [admins, engineering]}
            - {username: eve, name: Eve, email: eve@example.org, email_verified: false}
    proxy: {token_cache: 1s}
    clients:
      - id: service
        secret: "` + bearerServiceSecret + `"
        grant_types: [client_credentials]
        audience: [aero2-proxy]
      - id: short
        secret: "` + bearerShortSecret + `"
        grant_types: [client_credentials]
        audience: [aero2-proxy]
        tokens: {access_token: 2s}
      - id: cli
        secret: "` + bearerCLISecret + `"
        redirect_uris: ["` + bearerRedirect + `"]
        scopes: [openid, profile, email, groups]
        audience: [aero2-proxy]
        first_party: true
      - id: third
        name: Third Party
        secret: "` + bearerThirdSecret + `"
        redirect_uris: ["` + bearerRedirect + `"]
        scopes: [openid, profile, email, groups]
    routes:
      - {path: /api, upstream: "UP", policy: {allow_client_credentials: true}}
      - {path: /people, upstream: "UP"}
      - {path: /admin, upstream: "UP", policy: {allowed_groups: [admins]}}
  - name: b
    issuer: "{{.URL}}/b"
    identity_providers: [{id: dev, type: dev, config: {users: [{username: alice}]}}]
    clients:
      - id: service
        secret: "` + bearerServiceSecret + `"
        grant_types: [client_credentials]
        audience: [aero2-proxy]
    routes:
      - {path: /b-api, upstream: "UP", policy: {allow_client_credentials: true}}
`

// TestBearerTokensAgainstOwnProvider: API clients call protected routes
// with access tokens from Aero2's own provider. A token for the proxy's
// audience from the route's application is admitted and put through the
// route's policy; every other token is refused with 401 and
// WWW-Authenticate, without reaching the upstream: revoked, expired, from
// another application, for another audience, forged (alg none, HS256 with
// the public key), and a third-party client's user token.
func TestBearerTokensAgainstOwnProvider(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		rc := &recorder{}
		up := httptest.NewServer(rc)
		t.Cleanup(up.Close)
		in := servertest.Start(t, strings.ReplaceAll(bearerConfig, "UP", up.URL), st)
		issA, issB := in.URL+"/a", in.URL+"/b"
		api, admin := in.URL+"/api/things", in.URL+"/admin/things"

		// The short-lived token first: it expires while the other cases
		// run.
		short := clientToken(t, issA, "short", bearerShortSecret, "aero2-proxy")
		bearerAdmitted(t, rc, api, short)

		// Allowed: a service token for the proxy's audience, on an
		// authenticated route. Its identity is the client (RFC 9068 §2.2).
		service := clientToken(t, issA, "service", bearerServiceSecret, "aero2-proxy")
		if c := claims(t, service); !slices.Contains(audiences(c), "aero2-proxy") || c["iss"] != issA {
			t.Fatalf("service token claims: %v", c)
		}
		h := bearerAdmitted(t, rc, api, service)
		if h.Get("X-Forwarded-User") != "service" || h.Get("Authorization") != "" {
			t.Errorf("upstream saw user %q, Authorization %q", h.Get("X-Forwarded-User"), h.Get("Authorization"))
		}
		// It is a caller without groups: the admins' route refuses it.
		bearerStatus(t, rc, admin, service, http.StatusForbidden, "service token at the admins' route")
		// And a route for people, which does not allow client
		// credentials, refuses it though any signed-in user passes there.
		bearerStatus(t, rc, in.URL+"/people/x", service, http.StatusForbidden, "service token at a route for people")

		// Another application's token, though the same client ID, secret
		// and audience: it is admitted at its own application's route...
		foreign := clientToken(t, issB, "service", bearerServiceSecret, "aero2-proxy")
		bearerAdmitted(t, rc, in.URL+"/b-api/x", foreign)
		// ...and refused at a's.
		bearerRefused(t, rc, api, foreign, "application b's token")

		// No audience asked for: the token is for the provider's own
		// endpoints (aud = the issuer), not for the proxy.
		own := clientToken(t, issA, "service", bearerServiceSecret, "")
		if aud := audiences(claims(t, own)); !slices.Equal(aud, []string{issA}) {
			t.Fatalf("token without an audience parameter has aud %v, want [%s]", aud, issA)
		}
		bearerRefused(t, rc, api, own, "token for the issuer's audience")

		// Forgeries carrying a valid token's claims.
		bearerRefused(t, rc, api, forgeNone(t, service), "alg none")
		bearerRefused(t, rc, api, forgeHS256(t, issA, service), "HS256 signed with the public key")

		// Users. A first-party client allowed the proxy's audience gets
		// user tokens for it: the route's policy applies to them.
		alice := userToken(t, issA, "alice", "cli", bearerCLISecret, "aero2-proxy")
		eve := userToken(t, issA, "eve", "cli", bearerCLISecret, "aero2-proxy")
		h = bearerAdmitted(t, rc, admin, alice)
		if h.Get("X-Forwarded-Email") != "alice@example.com" || h.Get("X-Forwarded-Groups") != "admins,engineering" {
			t.Errorf("alice's identity headers: %v", h)
		}
		bearerStatus(t, rc, admin, eve, http.StatusForbidden, "eve's token at the admins' route")
		bearerAdmitted(t, rc, api, eve) // signed in, just not an admin
		bearerAdmitted(t, rc, in.URL+"/people/x", eve)

		// A third-party client's user token is for the provider (aud =
		// issuer): refused. And the client cannot ask for the proxy's
		// audience, which its configuration does not list.
		third := userToken(t, issA, "alice", "third", bearerThirdSecret, "")
		if aud := audiences(claims(t, third)); !slices.Equal(aud, []string{issA}) {
			t.Fatalf("third-party token has aud %v", aud)
		}
		bearerRefused(t, rc, api, third, "third-party client's user token")
		if loc := authorizeRedirect(t, issA, "alice", "third", "aero2-proxy"); loc.Query().Get("code") != "" || loc.Query().Get("error") == "" {
			t.Errorf("third-party client asking for the proxy's audience got %s", loc)
		}

		// Revoked at the provider: refused once the proxy's cache of the
		// introspection answer (token_cache: 1s) lapses.
		revokeToken(t, issA, "service", bearerServiceSecret, service)
		eventuallyRefused401(t, rc, api, service)

		// Expired: wait out the short token's exp (whole seconds), then it
		// is refused.
		time.Sleep(time.Until(time.Unix(int64(claims(t, short)["exp"].(float64)), 0).Add(1100 * time.Millisecond)))
		bearerRefused(t, rc, api, short, "expired token")
	})
}

func (rc *recorder) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.seen)
}

// bearerDo calls u with the token and returns the response (body read).
func bearerDo(t *testing.T, u, token string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res
}

// bearerAdmitted checks that the token reaches the upstream and returns
// the headers the upstream received.
func bearerAdmitted(t *testing.T, rc *recorder, u, token string) http.Header {
	t.Helper()
	before := rc.count()
	if res := bearerDo(t, u, token); res.StatusCode != http.StatusOK || rc.count() != before+1 {
		t.Fatalf("valid token at %s: %d", u, res.StatusCode)
	}
	return rc.last(t)
}

// bearerStatus checks that the token gets status and does not reach the
// upstream.
func bearerStatus(t *testing.T, rc *recorder, u, token string, status int, what string) *http.Response {
	t.Helper()
	before := rc.count()
	res := bearerDo(t, u, token)
	if res.StatusCode != status {
		t.Errorf("%s at %s: %d, want %d", what, u, res.StatusCode, status)
	}
	if rc.count() != before {
		t.Errorf("%s at %s: reached the upstream", what, u)
	}
	return res
}

// bearerRefused checks 401 with a Bearer challenge (RFC 6750 §3).
func bearerRefused(t *testing.T, rc *recorder, u, token, what string) {
	t.Helper()
	res := bearerStatus(t, rc, u, token, http.StatusUnauthorized, what)
	if ch := res.Header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Bearer ") || !strings.Contains(ch, `error="invalid_token"`) {
		t.Errorf("%s: WWW-Authenticate %q", what, ch)
	}
}

// eventuallyRefused401 polls until the token is refused, for at most 10s.
func eventuallyRefused401(t *testing.T, rc *recorder, u, token string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res := bearerDo(t, u, token)
		if res.StatusCode == http.StatusUnauthorized {
			bearerRefused(t, rc, u, token, "revoked token")
			return
		}
		if res.StatusCode != http.StatusOK {
			t.Fatalf("unexpected %d while waiting for the revoked token to be refused", res.StatusCode)
		}
		if time.Now().After(deadline) {
			t.Fatal("the proxy still admits a revoked token")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// clientToken gets a client-credentials token, for audience when not "".
func clientToken(t *testing.T, issuer, id, secret, audience string) string {
	t.Helper()
	c := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: issuer + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader}
	if audience != "" {
		c.EndpointParams = url.Values{"audience": {audience}}
	}
	tok, err := c.Token(context.Background())
	if err != nil {
		t.Fatalf("client credentials for %s at %s: %v", id, issuer, err)
	}
	return tok.AccessToken
}

// revokeToken revokes a token at the provider (RFC 7009).
func revokeToken(t *testing.T, issuer, id, secret, token string) {
	t.Helper()
	req, _ := http.NewRequest("POST", issuer+"/oauth2/revoke", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("revocation: %d", res.StatusCode)
	}
}

// authorizeRedirect signs user in with the dev provider, then runs an
// authorization request (PKCE S256) for the client, allowing consent
// when asked, and returns where the provider finally sends the browser.
func authorizeRedirect(t *testing.T, issuer, user, clientID, audience string) *url.URL {
	t.Helper()
	u, _ := authorize(t, issuer, user, clientID, "", audience)
	return u
}

func authorize(t *testing.T, issuer, user, clientID, secret, audience string) (*url.URL, func(code string) *oauth2.Token) {
	t.Helper()
	return authorizeIn(t, servertest.NewBrowser(t), issuer, user, clientID, secret, audience)
}

// authorizeIn is authorize in browser b, which stays signed in.
func authorizeIn(t *testing.T, b *servertest.Browser, issuer, user, clientID, secret, audience string) (*url.URL, func(code string) *oauth2.Token) {
	t.Helper()
	if p := b.SignInDev(issuer+"/login", user); p.Status != http.StatusOK {
		t.Fatalf("sign-in of %s: %d at %s", user, p.Status, p.URL)
	}
	c := oauth2.Config{
		ClientID: clientID, ClientSecret: secret, RedirectURL: bearerRedirect,
		Endpoint: oauth2.Endpoint{AuthURL: issuer + "/oauth2/authorize", TokenURL: issuer + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader},
		Scopes:   []string{"openid", "profile", "email", "groups"},
	}
	verifier := oauth2.GenerateVerifier()
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
	if audience != "" {
		opts = append(opts, oauth2.SetAuthURLParam("audience", audience))
	}
	next := c.AuthCodeURL("state-0123456789", opts...)
	nb := b.NoRedirects()
	for range 10 {
		if strings.HasPrefix(next, bearerRedirect) {
			u, _ := url.Parse(next)
			return u, func(code string) *oauth2.Token {
				tok, err := c.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
				if err != nil {
					t.Fatalf("code exchange for %s: %v", clientID, err)
				}
				return tok
			}
		}
		p := nb.Get(next)
		if p.Status == http.StatusOK {
			// The consent page of a third-party client: allow.
			action, v := p.Form(t, "/oauth2/consent")
			v.Set("decision", "allow")
			p = nb.PostForm(resolveURL(p.URL, action), v)
		}
		loc := p.Header.Get("Location")
		if loc == "" {
			t.Fatalf("authorization for %s stopped at %d %s:\n%s", clientID, p.Status, p.URL, p.Body)
		}
		next = resolveURL(p.URL, loc)
	}
	t.Fatalf("authorization for %s did not reach the redirect URI", clientID)
	return nil, nil
}

func resolveURL(base *url.URL, ref string) string {
	u, err := base.Parse(ref)
	if err != nil {
		return ref
	}
	return u.String()
}

// userToken gets user's access token for clientID through the code flow.
func userToken(t *testing.T, issuer, user, clientID, secret, audience string) string {
	t.Helper()
	u, exchange := authorize(t, issuer, user, clientID, secret, audience)
	code := u.Query().Get("code")
	if code == "" {
		t.Fatalf("no code for %s: %s", clientID, u)
	}
	return exchange(code).AccessToken
}

// claims decodes a JWT's payload without verifying it (the test's own
// look at what the provider issued).
func claims(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	c := map[string]any{}
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func audiences(c map[string]any) []string {
	switch a := c["aud"].(type) {
	case string:
		return []string{a}
	case []any:
		var out []string
		for _, v := range a {
			s, _ := v.(string)
			out = append(out, s)
		}
		return out
	}
	return nil
}

// header returns a JWT's decoded header.
func header(t *testing.T, token string) map[string]any {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	h := map[string]any{}
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

func b64JSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// forgeNone is the token's claims, unsigned (alg none), under the same
// kid and typ.
func forgeNone(t *testing.T, token string) string {
	t.Helper()
	h := header(t, token)
	h["alg"] = "none"
	return b64JSON(t, h) + "." + strings.Split(token, ".")[1] + "."
}

// forgeHS256 is the token's claims signed with HS256, keyed with the
// provider's published RSA public key (PEM): the algorithm-confusion
// attack on verifiers that let the token choose the algorithm.
func forgeHS256(t *testing.T, issuer, token string) string {
	t.Helper()
	h := header(t, token)
	kid, _ := h["kid"].(string)
	res, err := http.Get(issuer + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(res.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	keys := set.Key(kid)
	if len(keys) == 0 {
		t.Fatalf("kid %q not in the JWKS", kid)
	}
	der, err := x509.MarshalPKIXPublicKey(keys[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	h["alg"] = "HS256"
	signing := b64JSON(t, h) + "." + strings.Split(token, ".")[1]
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
