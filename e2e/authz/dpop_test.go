package authz_test

import (
	"crypto"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/aero2/aero2/dpop/dpoptest"
	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store"
)

// dpopConfig adds a client that must use DPoP for every token request.
const dpopConfig = providerConfig + `
  - id: bound-service
    secret: "` + serviceSecret + `"
    grant_types: [client_credentials]
    scopes: [api:read]
    require_dpop: true
`

// tokenPost posts a token request with the given DPoP header values.
func (e *env) tokenPost(form url.Values, user, pass string, proofs ...string) (int, http.Header, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.in.URL+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	for _, p := range proofs {
		req.Header.Add("DPoP", p)
	}
	return e.do(req)
}

// resourceGet calls userinfo with an Authorization header and proofs.
func (e *env) userinfoWith(auth string, proofs ...string) (int, http.Header, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.in.URL+"/oauth2/userinfo", nil)
	req.Header.Set("Authorization", auth)
	for _, p := range proofs {
		req.Header.Add("DPoP", p)
	}
	return e.do(req)
}

func jwtClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	var c map[string]any
	if err := json.Unmarshal([]byte(decodeSegment(t, strings.Split(tok, ".")[1])), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func cnfJKT(c map[string]any) string {
	cnf, _ := c["cnf"].(map[string]any)
	s, _ := cnf["jkt"].(string)
	return s
}

// TestDPoPBindsTokens: a public client that sends a DPoP proof (RFC 9449)
// with its code exchange gets token_type DPoP and an access token whose
// cnf.jkt is its key's thumbprint (also at introspection); userinfo takes
// that token only as "DPoP" with a fresh proof by the key that hashes it;
// its refresh token is refreshed only with a proof by the same key, and a
// refused refresh leaves it usable.
func TestDPoPBindsTokens(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		e := start(t, dpopConfig, st)
		tokenURL, userinfoURL := e.in.URL+"/oauth2/token", e.in.URL+"/oauth2/userinfo"
		key, thief := dpoptest.NewKey(t, jose.ES256), dpoptest.NewKey(t, jose.ES256)

		f := newFlow(e.oauth("spa", "", spaRedirect, oauth2.AuthStyleInParams, "openid", "profile", "offline_access"))
		res := e.login(e.browser(), f, "alice")
		code := url.Values{"grant_type": {"authorization_code"}, "code": {res.Query.Get("code")}, "redirect_uri": {spaRedirect},
			"client_id": {"spa"}, "code_verifier": {f.verifier}}
		status, _, tok := e.tokenPost(code, "", "", key.Proof(t, "POST", tokenURL, dpoptest.Options{}))
		if status != http.StatusOK || tok["token_type"] != "DPoP" {
			t.Fatalf("code exchange with a proof: %d %v", status, tok)
		}
		at, rt := tok["access_token"].(string), tok["refresh_token"].(string)
		if got := cnfJKT(jwtClaims(t, at)); got != key.JKT {
			t.Fatalf("access token cnf.jkt %q, want %q", got, key.JKT)
		}
		if in := e.introspect(at); in["token_type"] != "DPoP" || cnfJKT(in) != key.JKT {
			t.Fatalf("introspection of a bound token: %v", in)
		}

		// Userinfo: DPoP with a good proof; everything else refused.
		good := func() string { return key.Proof(t, "GET", userinfoURL, dpoptest.Options{Token: at}) }
		if st, _, m := e.userinfoWith("DPoP "+at, good()); st != http.StatusOK || m["sub"] == nil {
			t.Fatalf("userinfo with DPoP: %d %v", st, m)
		}
		replayed := good()
		if st, _, _ := e.userinfoWith("DPoP "+at, replayed); st != http.StatusOK {
			t.Fatal(st)
		}
		for name, c := range map[string]struct {
			auth   string
			proofs []string
		}{
			"as Bearer":              {"Bearer " + at, nil},
			"as Bearer with a proof": {"Bearer " + at, []string{good()}},
			"without a proof":        {"DPoP " + at, nil},
			"replayed proof":         {"DPoP " + at, []string{replayed}},
			"proof by another key":   {"DPoP " + at, []string{thief.Proof(t, "GET", userinfoURL, dpoptest.Options{Token: at})}},
			"wrong ath":              {"DPoP " + at, []string{key.Proof(t, "GET", userinfoURL, dpoptest.Options{Token: at + "x"})}},
			"no ath":                 {"DPoP " + at, []string{key.Proof(t, "GET", userinfoURL, dpoptest.Options{})}},
			"wrong htu":              {"DPoP " + at, []string{key.Proof(t, "GET", tokenURL, dpoptest.Options{Token: at})}},
			"wrong htm":              {"DPoP " + at, []string{key.Proof(t, "POST", userinfoURL, dpoptest.Options{Token: at})}},
			"stale iat":              {"DPoP " + at, []string{key.Proof(t, "GET", userinfoURL, dpoptest.Options{Token: at, IAT: time.Now().Add(-time.Hour)})}},
			"two proofs":             {"DPoP " + at, []string{good(), good()}},
			"private key in the jwk": {"DPoP " + at, []string{key.Proof(t, "GET", userinfoURL, dpoptest.Options{Token: at, PrivateJWK: true})}},
			"HS256 proof":            {"DPoP " + at, []string{key.Proof(t, "GET", userinfoURL, dpoptest.Options{Token: at, HMACKey: []byte(strings.Repeat("k", 32))})}},
			"signed by another key":  {"DPoP " + at, []string{key.Proof(t, "GET", userinfoURL, dpoptest.Options{Token: at, SignWith: thief})}},
			"typ JWT":                {"DPoP " + at, []string{key.Proof(t, "GET", userinfoURL, dpoptest.Options{Token: at, Typ: "JWT"})}},
		} {
			st, h, _ := e.userinfoWith(c.auth, c.proofs...)
			if st != http.StatusUnauthorized || !strings.HasPrefix(h.Get("WWW-Authenticate"), "DPoP ") {
				t.Errorf("userinfo, %s: %d %q, want 401 with a DPoP challenge", name, st, h.Get("WWW-Authenticate"))
			}
		}

		// Refresh: only with a proof by the bound key.
		refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"spa"}}
		for name, proofs := range map[string][]string{
			"without a proof":      nil,
			"with another key":     {thief.Proof(t, "POST", tokenURL, dpoptest.Options{})},
			"with two proofs":      {key.Proof(t, "POST", tokenURL, dpoptest.Options{}), key.Proof(t, "POST", tokenURL, dpoptest.Options{})},
			"with the wrong htu":   {key.Proof(t, "POST", userinfoURL, dpoptest.Options{})},
			"with the wrong htm":   {key.Proof(t, "GET", tokenURL, dpoptest.Options{})},
			"with a stale iat":     {key.Proof(t, "POST", tokenURL, dpoptest.Options{IAT: time.Now().Add(-10 * time.Minute)})},
			"with a symmetric alg": {key.Proof(t, "POST", tokenURL, dpoptest.Options{HMACKey: []byte(strings.Repeat("k", 32))})},
		} {
			st, _, m := e.tokenPost(refresh, "", "", proofs...)
			if st != http.StatusBadRequest || m["error"] != "invalid_dpop_proof" {
				t.Errorf("refresh %s: %d %v, want invalid_dpop_proof", name, st, m)
			}
		}
		// The refused attempts left the refresh token usable, with a proof
		// by its key; the jti of that proof is then spent.
		if st, _, m := e.tokenPost(refresh, "", "", key.Proof(t, "POST", tokenURL, dpoptest.Options{JTI: "once"})); st != http.StatusOK || cnfJKT(jwtClaims(t, m["access_token"].(string))) != key.JKT {
			t.Fatalf("refresh with the bound key after refusals: %d %v", st, m)
		}
		if st, _, m := e.tokenPost(url.Values{"grant_type": {"client_credentials"}, "scope": {"api:read"}}, "service", serviceSecret,
			key.Proof(t, "POST", tokenURL, dpoptest.Options{JTI: "once"})); st != http.StatusBadRequest || m["error"] != "invalid_dpop_proof" {
			t.Fatalf("a replayed jti at the token endpoint: %d %v", st, m)
		}
	})
}

// TestDPoPAtTheTokenEndpoint: every bad proof is invalid_dpop_proof and
// issues nothing; a client with require_dpop gets nothing without one;
// client credentials with a proof are bound.
func TestDPoPAtTheTokenEndpoint(t *testing.T) {
	e := start(t, dpopConfig, nil)
	tokenURL := e.in.URL + "/oauth2/token"
	key, other := dpoptest.NewKey(t, jose.EdDSA), dpoptest.NewKey(t, jose.ES256)
	cc := url.Values{"grant_type": {"client_credentials"}, "scope": {"api:read"}}

	st, _, m := e.tokenPost(cc, "bound-service", serviceSecret)
	if st != http.StatusBadRequest || m["error"] != "invalid_dpop_proof" {
		t.Fatalf("require_dpop without a proof: %d %v", st, m)
	}
	st, _, m = e.tokenPost(cc, "bound-service", serviceSecret, key.Proof(t, "POST", tokenURL, dpoptest.Options{}))
	if st != http.StatusOK || m["token_type"] != "DPoP" || cnfJKT(jwtClaims(t, m["access_token"].(string))) != key.JKT {
		t.Fatalf("require_dpop with a proof: %d %v", st, m)
	}
	// Without a proof, a client that may choose gets a Bearer token
	// without cnf.
	st, _, m = e.tokenPost(cc, "service", serviceSecret)
	if st != http.StatusOK || !strings.EqualFold(m["token_type"].(string), "bearer") || jwtClaims(t, m["access_token"].(string))["cnf"] != nil {
		t.Fatalf("no proof: %d %v", st, m)
	}

	replayed := key.Proof(t, "POST", tokenURL, dpoptest.Options{})
	if st, _, _ := e.tokenPost(cc, "service", serviceSecret, replayed); st != http.StatusOK {
		t.Fatal(st)
	}
	pub, _ := json.Marshal(jose.JSONWebKey{Key: key.Priv.Public()})
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"dpop+jwt","jwk":` + string(pub) + `}`))
	payload := base64.RawURLEncoding.EncodeToString([]byte(`{"htm":"POST","htu":"` + tokenURL + `","iat":` + jsonInt(time.Now().Unix()) + `,"jti":"n1"}`))
	for name, proofs := range map[string][]string{
		"replayed jti":              {replayed},
		"wrong htu":                 {key.Proof(t, "POST", e.in.URL+"/oauth2/par", dpoptest.Options{})},
		"htu of another host":       {key.Proof(t, "POST", "https://evil.example/oauth2/token", dpoptest.Options{})},
		"wrong htm":                 {key.Proof(t, "PUT", tokenURL, dpoptest.Options{})},
		"stale iat":                 {key.Proof(t, "POST", tokenURL, dpoptest.Options{IAT: time.Now().Add(-6 * time.Minute)})},
		"iat in the future":         {key.Proof(t, "POST", tokenURL, dpoptest.Options{IAT: time.Now().Add(5 * time.Minute)})},
		"signed by another key":     {key.Proof(t, "POST", tokenURL, dpoptest.Options{SignWith: other})},
		"symmetric alg":             {key.Proof(t, "POST", tokenURL, dpoptest.Options{HMACKey: []byte(strings.Repeat("k", 32))})},
		"alg none":                  {header + "." + payload + "."},
		"private key in the header": {key.Proof(t, "POST", tokenURL, dpoptest.Options{PrivateJWK: true})},
		"typ JWT":                   {key.Proof(t, "POST", tokenURL, dpoptest.Options{Typ: "JWT"})},
		"two proofs":                {key.Proof(t, "POST", tokenURL, dpoptest.Options{}), key.Proof(t, "POST", tokenURL, dpoptest.Options{})},
		"oversized":                 {strings.Repeat("e", 10000)},
		"garbage":                   {"not.a.jwt"},
	} {
		st, _, m := e.tokenPost(cc, "service", serviceSecret, proofs...)
		if st != http.StatusBadRequest || m["error"] != "invalid_dpop_proof" || m["access_token"] != nil {
			t.Errorf("%s: %d %v, want 400 invalid_dpop_proof", name, st, m)
		}
	}

	// Discovery names the proof algorithms: asymmetric only.
	var md struct {
		Algs []string `json:"dpop_signing_alg_values_supported"`
	}
	if err := e.provider.Claims(&md); err != nil {
		t.Fatal(err)
	}
	if len(md.Algs) == 0 || !strings.Contains(strings.Join(md.Algs, " "), "ES256") || strings.Contains(strings.Join(md.Algs, " "), "HS") || strings.Contains(strings.Join(md.Algs, " "), "none") {
		t.Fatalf("dpop_signing_alg_values_supported %v", md.Algs)
	}
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

// TestDPoPNonce: with require_dpop_nonce, a proof without the provider's
// nonce is answered use_dpop_nonce with a DPoP-Nonce header (RFC 9449 §8),
// and the same request with that nonce succeeds; a made-up nonce fails.
func TestDPoPNonce(t *testing.T) {
	e := start(t, dpopConfig+"require_dpop_nonce: true\n", nil)
	tokenURL := e.in.URL + "/oauth2/token"
	key := dpoptest.NewKey(t, jose.ES256)
	cc := url.Values{"grant_type": {"client_credentials"}, "scope": {"api:read"}}
	for name, nonce := range map[string]string{"no nonce": "", "made-up nonce": "abc"} {
		st, h, m := e.tokenPost(cc, "service", serviceSecret, key.Proof(t, "POST", tokenURL, dpoptest.Options{Nonce: nonce}))
		if st != http.StatusBadRequest || m["error"] != "use_dpop_nonce" || h.Get("DPoP-Nonce") == "" {
			t.Fatalf("%s: %d %v %q", name, st, m, h.Get("DPoP-Nonce"))
		}
	}
	_, h, _ := e.tokenPost(cc, "service", serviceSecret, key.Proof(t, "POST", tokenURL, dpoptest.Options{}))
	st, h2, m := e.tokenPost(cc, "service", serviceSecret, key.Proof(t, "POST", tokenURL, dpoptest.Options{Nonce: h.Get("DPoP-Nonce")}))
	if st != http.StatusOK || m["token_type"] != "DPoP" || h2.Get("DPoP-Nonce") == "" {
		t.Fatalf("with the nonce: %d %v", st, m)
	}
}

// TestOpenIDClientDPoP: openid-client's own DPoP (a fresh key, its proofs,
// its handling of use_dpop_nonce) through a public client's code flow,
// userinfo and refresh; the refresh token refuses a proof by another
// key.
func TestOpenIDClientDPoP(t *testing.T) {
	for _, cfg := range []struct{ name, extra string }{{"", ""}, {"nonce", "require_dpop_nonce: true\n"}} {
		t.Run("nonce="+cfg.name, func(t *testing.T) {
			e := start(t, dpopConfig+cfg.extra, nil)
			m := nodeCodeFlowScope(t, e, e.browser(), nodeClient{ID: "spa", Auth: "none"}, "openid profile offline_access",
				map[string]any{"dpop": "ES256", "userinfo": true, "refresh": true, "refresh_other_key": true}, spaRedirect)
			tok := m["tokens"].(map[string]any)
			jwk, _ := json.Marshal(m["dpop_jwk"])
			var k jose.JSONWebKey
			if err := k.UnmarshalJSON(jwk); err != nil {
				t.Fatalf("openid-client's DPoP key %s: %v", jwk, err)
			}
			tp, _ := k.Thumbprint(crypto.SHA256)
			want := base64.RawURLEncoding.EncodeToString(tp)
			if tok["token_type"] != "dpop" && tok["token_type"] != "DPoP" || cnfJKT(jwtClaims(t, tok["access_token"].(string))) != want {
				t.Fatalf("openid-client's tokens: %v (want cnf.jkt %s)", tok, want)
			}
			if m["userinfo"].(map[string]any)["sub"] == nil {
				t.Fatalf("userinfo through openid-client with DPoP: %v", m["userinfo"])
			}
			r := m["refreshed"].(map[string]any)["tokens"].(map[string]any)
			if cnfJKT(jwtClaims(t, r["access_token"].(string))) != want {
				t.Fatalf("refreshed token not bound to the same key: %v", r)
			}
			if o := m["other_key_refresh"].(map[string]any); o["error"] != "invalid_dpop_proof" {
				t.Fatalf("refresh with another key's proof: %v", o)
			}
		})
	}
}

// nodeCodeFlowScope is nodeCodeFlow for any client, scope and redirect.
func nodeCodeFlowScope(t *testing.T, e *env, b *servertest.Browser, c nodeClient, scope string, after map[string]any, redirect string) map[string]any {
	t.Helper()
	az := nodeOK(t, "authorization URL", servertest.RunNode(t, nodeCmd(e, c, "authorize", map[string]any{
		"redirect_uri": redirect, "scope": scope})))
	res := e.response(b.SignInDev(az["url"].(string), "alice"))
	args := map[string]any{"callback_url": res.URL.String(), "verifier": az["verifier"], "state": az["state"], "nonce": az["nonce"]}
	for k, v := range after {
		args[k] = v
	}
	return nodeOK(t, "code exchange", servertest.RunNode(t, nodeCmd(e, c, "callback", args)))
}
