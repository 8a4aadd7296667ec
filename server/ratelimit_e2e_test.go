package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store"
)

const (
	svcSecret   = "svc-secret-0123456789abcdef0123456789"
	limitConfig = `  rate_limits:
    token:
      per_address: {requests: 4, per: 1h}
      per_client: {requests: 3, per: 1h}
    client_auth_failures:
      per_address: {requests: 3, per: 1h}
      per_client: {requests: 5, per: 1h}
    introspect:
      per_client: {requests: 2, per: 1h}
    revoke:
      per_address: {requests: 2, per: 1h}
    sign_in:
      per_address: {requests: 3, per: 1h}
    authorize:
      per_address: {requests: 3, per: 1h}
    callback:
      per_address: {requests: 3, per: 1h}
    forward_auth_denials:
      per_address: {requests: 3, per: 1h}
`
)

func limitedConfig(upstream string) string {
	cfg := withServer(limitConfig) + "\nclients:\n"
	for _, id := range []string{"svc1", "svc2", "svc3", "svc4"} {
		cfg += "  - {id: " + id + ", secret: \"" + svcSecret + "\", grant_types: [client_credentials]}\n"
	}
	return cfg + `  - id: spa
    token_endpoint_auth_method: none
    redirect_uris: ["https://spa.example.com/cb"]
routes:
  - path: /app
    upstream: "` + upstream + `"
  - path: /fa
`
}

type answer struct {
	status     int
	retryAfter string
	error      string
}

func send(t *testing.T, r *http.Request) answer {
	t.Helper()
	res, err := noFollowClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var e struct {
		Error string `json:"error"`
	}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		json.Unmarshal(body, &e)
	}
	return answer{res.StatusCode, res.Header.Get("Retry-After"), e.Error}
}

// refused checks a rate-limit refusal: 429, a whole number of seconds in
// Retry-After, and (for JSON) the OAuth-style error.
func refused(t *testing.T, what string, a answer, json bool) {
	t.Helper()
	n, err := strconv.Atoi(a.retryAfter)
	if a.status != http.StatusTooManyRequests || err != nil || n < 1 || (json && a.error != "temporarily_unavailable") {
		t.Fatalf("%s: %+v, want 429 with Retry-After and temporarily_unavailable", what, a)
	}
}

func tokenRequest(in *servertest.Instance, addr, client, secret string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, in.URL+"/oauth2/token", strings.NewReader("grant_type=client_credentials"))
	r.RequestURI = ""
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth(client, secret)
	return from(r, addr)
}

// TestTokenEndpointLimits: the token endpoint counts per authenticated
// client and per address, and counts failed client authentication apart:
// an address (or a client ID) that has used up its failures is refused
// before any secret is checked — even the right one.
func TestTokenEndpointLimits(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		in := servertest.Start(t, limitedConfig("http://127.0.0.1:9"), st)
		tok := func(addr, client, secret string) answer { return send(t, tokenRequest(in, addr, client, secret)) }

		// Per client: svc1 has 3, from any address.
		for _, addr := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"} {
			if a := tok(addr, "svc1", svcSecret); a.status != 200 {
				t.Fatalf("svc1 from %s: %+v", addr, a)
			}
		}
		refused(t, "svc1's 4th token", tok("192.0.2.4", "svc1", svcSecret), true)

		// Per address: 4 from one address, whichever clients.
		for _, c := range []string{"svc2", "svc2", "svc3", "svc3"} {
			if a := tok("192.0.2.10", c, svcSecret); a.status != 200 {
				t.Fatalf("%s: %+v", c, a)
			}
		}
		refused(t, "the address's 5th request", tok("192.0.2.10", "svc3", svcSecret), true)
		if a := tok("192.0.2.11", "svc3", svcSecret); a.status != 200 {
			t.Fatalf("svc3 from another address: %+v", a)
		}

		// Failures per address: 3 wrong secrets, then even the right
		// secret is refused from there (but not from elsewhere).
		for range 3 {
			if a := tok("192.0.2.20", "svc4", "wrong"); a.status != http.StatusUnauthorized || a.error != "invalid_client" {
				t.Fatalf("wrong secret: %+v", a)
			}
		}
		refused(t, "the right secret after 3 failures from the address", tok("192.0.2.20", "svc4", svcSecret), true)
		if a := tok("192.0.2.21", "svc4", svcSecret); a.status != 200 {
			t.Fatalf("svc4 from another address: %+v", a)
		}
		// Failures per client ID: 5 in all, from any addresses.
		tok("192.0.2.22", "svc4", "wrong")
		tok("192.0.2.23", "svc4", "wrong")
		refused(t, "svc4 after 5 failures across addresses", tok("192.0.2.24", "svc4", svcSecret), true)
	})
}

// TestIntrospectAndRevokeLimits: introspection per client, revocation per
// address.
func TestIntrospectAndRevokeLimits(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		in := servertest.Start(t, limitedConfig("http://127.0.0.1:9"), st)
		call := func(path, addr, client string) answer {
			r := httptest.NewRequest(http.MethodPost, in.URL+path, strings.NewReader(url.Values{"token": {"x"}}.Encode()))
			r.RequestURI = ""
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.SetBasicAuth(client, svcSecret)
			return send(t, from(r, addr))
		}
		for i := range 2 {
			if a := call("/oauth2/introspect", "192.0.2.40", "svc1"); a.status != 200 {
				t.Fatalf("introspection %d: %+v", i+1, a)
			}
		}
		refused(t, "svc1's 3rd introspection", call("/oauth2/introspect", "192.0.2.41", "svc1"), true)
		if a := call("/oauth2/introspect", "192.0.2.41", "svc2"); a.status != 200 {
			t.Fatalf("svc2's introspection: %+v", a)
		}
		for i := range 2 {
			if a := call("/oauth2/revoke", "192.0.2.50", "svc"+strconv.Itoa(i+1)); a.status != 200 {
				t.Fatalf("revocation %d: %+v", i+1, a)
			}
		}
		refused(t, "the address's 3rd revocation", call("/oauth2/revoke", "192.0.2.50", "svc3"), true)
	})
}

// TestBrowserEndpointLimits: sign-in starts, the authorization endpoint
// and callbacks answer 429 pages per address.
func TestBrowserEndpointLimits(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		in := servertest.Start(t, limitedConfig("http://127.0.0.1:9"), st)
		get := func(path, addr string) answer {
			r := httptest.NewRequest(http.MethodGet, in.URL+path, nil)
			r.RequestURI = ""
			return send(t, from(r, addr))
		}
		for _, path := range []string{
			"/rp/authorize?idp=dev",
			"/oauth2/authorize?client_id=spa&response_type=code",
			"/rp/callback/dev?state=x",
		} {
			for range 3 {
				if a := get(path, "198.51.100.60"); a.status == http.StatusTooManyRequests {
					t.Fatalf("%s refused within its limit", path)
				}
			}
			refused(t, path, get(path, "198.51.100.60"), false)
			if a := get(path, "198.51.100.61"); a.status == http.StatusTooManyRequests {
				t.Fatalf("%s: another address refused", path)
			}
		}
	})
}

// TestForwardAuthDenialsLimit: once an address has been denied
// forward_auth_denials times, forward-auth refuses it (429) before
// checking anything; other addresses are still answered.
func TestForwardAuthDenialsLimit(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		in := servertest.Start(t, limitedConfig("http://127.0.0.1:9"), st)
		host := strings.TrimPrefix(in.URL, "http://")
		ask := func(addr string) answer {
			r := httptest.NewRequest(http.MethodGet, in.URL+"/.aero2/forward-auth?redirect=0", nil)
			r.RequestURI = ""
			r.Header.Set("X-Forwarded-Host", host)
			r.Header.Set("X-Forwarded-Uri", "/fa/x")
			return send(t, from(r, addr))
		}
		for range 3 {
			if a := ask("198.51.100.70"); a.status != http.StatusUnauthorized {
				t.Fatalf("unauthenticated forward-auth: %+v", a)
			}
		}
		refused(t, "the 4th denial", ask("198.51.100.70"), true)
		if a := ask("198.51.100.71"); a.status != http.StatusUnauthorized {
			t.Fatalf("another address: %+v", a)
		}
	})
}

// TestProxyCallsToItsProviderAreNotLimited: the proxy's own token
// requests reach the provider in process, all from Aero2's address and as
// the one proxy client: they are exempt, or every user's sign-in would
// share one client's limit.
func TestProxyCallsToItsProviderAreNotLimited(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("up")) }))
	defer up.Close()
	in := servertest.Start(t, withServer(`  rate_limits:
    token:
      per_address: {requests: 1, per: 1h}
      per_client: {requests: 1, per: 1h}
`)+`
routes:
  - path: /app
    upstream: "`+up.URL+`"
`, nil)
	for i := range 3 {
		b := servertest.NewBrowser(t)
		if p := b.SignInDev(in.URL+"/app/", "alice"); p.Status != 200 || p.Body != "up" {
			t.Fatalf("sign-in %d through the proxy ended at %d %s", i+1, p.Status, p.URL)
		}
	}
}
