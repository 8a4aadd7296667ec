package proxy_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/aero2/aero2/dpop/dpoptest"
	"github.com/aero2/aero2/proxy/proxytest"
	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/redis/redistest"
)

// dpopToken gets a client-credentials token for the proxy's audience,
// bound to key when key is set.
func dpopToken(t *testing.T, base string, key *dpoptest.Key) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "audience": {"aero2-proxy"}}
	req, _ := http.NewRequest(http.MethodPost, base+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("service", ownServiceSecret)
	if key != nil {
		req.Header.Set("DPoP", key.Proof(t, "POST", base+"/oauth2/token", dpoptest.Options{}))
	}
	m := map[string]any{}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if err := jsonDecode(res.Body, &m); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("token: %d %v %v", res.StatusCode, m, err)
	}
	if key != nil && m["token_type"] != "DPoP" {
		t.Fatalf("token_type %v, want DPoP", m["token_type"])
	}
	return m["access_token"].(string)
}

// dpopGet sends method to u with the Authorization value and DPoP proofs.
func dpopGet(t *testing.T, method, u, auth string, proofs ...string) (int, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, u, nil)
	req.Header.Set("Authorization", auth)
	for _, p := range proofs {
		req.Header.Add("DPoP", p)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, res.Header
}

// TestProxyVerifiesDPoP: a DPoP-bound token (cnf.jkt) passes the proxy
// only as "Authorization: DPoP" with a proof of this request by its key
// (RFC 9449 §7): method, URL as the client addressed it, ath, a jti used
// once (across replicas: the store remembers it). Every other
// presentation is refused with a DPoP challenge and reaches nothing; the
// upstream sees neither the token nor the proof. Plain Bearer tokens pass
// as before.
func TestProxyVerifiesDPoP(t *testing.T) {
	for _, c := range []struct {
		name string
		st   func(t *testing.T) store.Store
	}{{"memory", func(*testing.T) store.Store { return nil }}, {"redis", func(t *testing.T) store.Store { return redistest.New(t) }}} {
		t.Run(c.name, func(t *testing.T) {
			up, _ := proxytest.StartUpstream(t)
			in := servertest.Start(t, servertest.DevConfig+strings.ReplaceAll(ownProviderConfig, "UP", up.URL), c.st(t))
			key, thief := dpoptest.NewKey(t, jose.ES256), dpoptest.NewKey(t, jose.ES256)
			bound, plain := dpopToken(t, in.URL, key), dpopToken(t, in.URL, nil)
			target := in.URL + "/app/x"
			proof := func(o dpoptest.Options) string { o.Token = bound; return key.Proof(t, "GET", target, o) }

			used := proof(dpoptest.Options{})
			if st, _ := dpopGet(t, "GET", target+"?q=1", "DPoP "+bound, used); st != http.StatusOK {
				t.Fatalf("bound token with a good proof: %d", st)
			}
			seen := up.Last(t)
			if seen.Header.Get("Authorization") != "" || seen.Header.Get("DPoP") != "" || seen.Header.Get("X-Forwarded-User") == "" {
				t.Fatalf("upstream got Authorization %q, DPoP %q, user %q", seen.Header.Get("Authorization"), seen.Header.Get("DPoP"), seen.Header.Get("X-Forwarded-User"))
			}
			if st, _ := dpopGet(t, "GET", target, "Bearer "+plain); st != http.StatusOK {
				t.Fatalf("plain bearer token: %d", st)
			}

			before := len(up.Seen())
			for name, r := range map[string]struct {
				method, url, auth string
				proofs            []string
				code              string
			}{
				"bound token as Bearer":         {"GET", target, "Bearer " + bound, nil, "invalid_token"},
				"bound token as Bearer + proof": {"GET", target, "Bearer " + bound, []string{proof(dpoptest.Options{})}, "invalid_token"},
				"plain token as DPoP":           {"GET", target, "DPoP " + plain, []string{key.Proof(t, "GET", target, dpoptest.Options{Token: plain})}, "invalid_token"},
				"missing proof":                 {"GET", target, "DPoP " + bound, nil, "invalid_dpop_proof"},
				"replayed jti":                  {"GET", target, "DPoP " + bound, []string{used}, "invalid_dpop_proof"},
				"wrong htu (other path)":        {"GET", target, "DPoP " + bound, []string{key.Proof(t, "GET", in.URL+"/app/y", dpoptest.Options{Token: bound})}, "invalid_dpop_proof"},
				"wrong htu (other host)":        {"GET", target, "DPoP " + bound, []string{key.Proof(t, "GET", "http://evil.example/app/x", dpoptest.Options{Token: bound})}, "invalid_dpop_proof"},
				"wrong htu (https)":             {"GET", target, "DPoP " + bound, []string{key.Proof(t, "GET", strings.Replace(target, "http:", "https:", 1), dpoptest.Options{Token: bound})}, "invalid_dpop_proof"},
				"wrong htm":                     {"POST", target, "DPoP " + bound, []string{proof(dpoptest.Options{})}, "invalid_dpop_proof"},
				"wrong ath":                     {"GET", target, "DPoP " + bound, []string{key.Proof(t, "GET", target, dpoptest.Options{Token: plain})}, "invalid_dpop_proof"},
				"no ath":                        {"GET", target, "DPoP " + bound, []string{key.Proof(t, "GET", target, dpoptest.Options{})}, "invalid_dpop_proof"},
				"stale iat":                     {"GET", target, "DPoP " + bound, []string{proof(dpoptest.Options{IAT: time.Now().Add(-10 * time.Minute)})}, "invalid_dpop_proof"},
				"other key":                     {"GET", target, "DPoP " + bound, []string{thief.Proof(t, "GET", target, dpoptest.Options{Token: bound})}, "invalid_dpop_proof"},
				"signed by another key":         {"GET", target, "DPoP " + bound, []string{proof(dpoptest.Options{SignWith: thief})}, "invalid_dpop_proof"},
				"symmetric alg":                 {"GET", target, "DPoP " + bound, []string{proof(dpoptest.Options{HMACKey: []byte(strings.Repeat("k", 32))})}, "invalid_dpop_proof"},
				"private key in the jwk header": {"GET", target, "DPoP " + bound, []string{proof(dpoptest.Options{PrivateJWK: true})}, "invalid_dpop_proof"},
				"two proofs":                    {"GET", target, "DPoP " + bound, []string{proof(dpoptest.Options{}), proof(dpoptest.Options{})}, "invalid_dpop_proof"},
				"typ JWT":                       {"GET", target, "DPoP " + bound, []string{proof(dpoptest.Options{Typ: "JWT"})}, "invalid_dpop_proof"},
				"garbage token as DPoP":         {"GET", target, "DPoP not-a-token", []string{proof(dpoptest.Options{})}, "invalid_token"},
			} {
				st, h := dpopGet(t, r.method, r.url, r.auth, r.proofs...)
				if st != http.StatusUnauthorized || !strings.HasPrefix(h.Get("WWW-Authenticate"), "DPoP ") || !strings.Contains(h.Get("WWW-Authenticate"), `error="`+r.code+`"`) {
					t.Errorf("%s: %d %q, want 401 with a DPoP challenge, error %s", name, st, h.Get("WWW-Authenticate"), r.code)
				}
			}
			if n := len(up.Seen()); n != before {
				t.Errorf("%d refused requests reached the upstream", n-before)
			}

			// Forward-auth: the proof is of the request the front proxy
			// asks about (X-Forwarded-Method/Host/Uri), not of the
			// forward-auth call.
			fa := func(p string) int {
				req, _ := http.NewRequest("GET", in.URL+"/.aero2/forward-auth", nil)
				req.Header.Set("X-Forwarded-Method", "GET")
				req.Header.Set("X-Forwarded-Host", strings.TrimPrefix(in.URL, "http://"))
				req.Header.Set("X-Forwarded-Uri", "/app/x?y=1")
				req.Header.Set("X-Forwarded-Proto", "http")
				req.Header.Set("Authorization", "DPoP "+bound)
				req.Header.Set("DPoP", p)
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				return res.StatusCode
			}
			if st := fa(proof(dpoptest.Options{})); st != http.StatusOK {
				t.Fatalf("forward-auth with a good proof: %d", st)
			}
			if st := fa(key.Proof(t, "GET", in.URL+"/.aero2/forward-auth", dpoptest.Options{Token: bound})); st != http.StatusUnauthorized {
				t.Fatalf("forward-auth with a proof of the forward-auth URL: %d", st)
			}
		})
	}
}

// TestProxyDPoPWithOpenIDClient: openid-client obtains a DPoP-bound token
// (its own key and proofs) and calls an API behind the proxy with
// fetchProtectedResource, which proves each request.
func TestProxyDPoPWithOpenIDClient(t *testing.T) {
	up, _ := proxytest.StartUpstream(t)
	in := servertest.Start(t, servertest.DevConfig+strings.ReplaceAll(ownProviderConfig, "UP", up.URL), nil)
	for _, alg := range []string{"ES256", "EdDSA", "PS256"} {
		m := servertest.RunNode(t, map[string]any{
			"issuer": in.URL, "op": "client_credentials", "dpop": alg,
			"client":       map[string]any{"id": "service", "auth": "client_secret_basic", "secret": ownServiceSecret},
			"extra":        map[string]any{"audience": "aero2-proxy"},
			"resource_url": in.URL + "/app/api?x=1",
		})
		if m["error"] != nil {
			t.Fatalf("openid-client with %s: %v", alg, m)
		}
		tok := m["tokens"].(map[string]any)
		res := m["resource"].(map[string]any)
		if !strings.EqualFold(tok["token_type"].(string), "dpop") || res["status"] != float64(200) {
			t.Fatalf("openid-client with %s through the proxy: %v", alg, m)
		}
	}
	if n := len(up.Seen()); n != 3 {
		t.Fatalf("upstream saw %d requests, want 3", n)
	}
}

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }
