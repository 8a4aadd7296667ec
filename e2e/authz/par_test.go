package authz_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/memory"
)

// parConfig adds a client that must use PAR.
const parConfig = providerConfig + `
  - id: pushy
    secret: "` + webSecret + `"
    redirect_uris: ["` + webRedirect + `"]
    first_party: true
    require_pushed_authorization_requests: true
`

// pushParams is a valid authorization request for client at webRedirect.
func pushParams(client string, f *flow) url.Values {
	return url.Values{
		"client_id": {client}, "redirect_uri": {webRedirect}, "response_type": {"code"}, "scope": {"openid profile"},
		"state": {f.state}, "nonce": {f.nonce},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(f.verifier)}, "code_challenge_method": {"S256"},
	}
}

// push posts a pushed authorization request, authenticated as user.
func (e *env) push(form url.Values, user, pass string) (int, map[string]any) {
	e.t.Helper()
	status, h, m := e.post("/oauth2/par", form, user, pass)
	if status == http.StatusCreated && h.Get("Cache-Control") != "no-store" {
		e.t.Errorf("PAR response without Cache-Control: no-store")
	}
	return status, m
}

func (e *env) pushedURL(client string, m map[string]any) string {
	return e.in.URL + "/oauth2/authorize?" + url.Values{"client_id": {client}, "request_uri": {m["request_uri"].(string)}}.Encode()
}

// TestPushedAuthorizationRequests (RFC 9126): a request_uri works once,
// for its own client, for a short while; a client that requires PAR
// cannot skip it; the endpoint validates what is pushed as the
// authorization endpoint would, and answers in JSON, never by redirect.
func TestPushedAuthorizationRequests(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	stores(t, func(t *testing.T, st store.Store) {
		if st == nil {
			// The memory store on a clock the test moves: the request_uri's
			// expiry is the store's TTL.
			st = memory.New(memory.WithClock(clock))
		}
		e := start(t, parConfig, st)
		b := e.browser()
		var md map[string]any
		e.getJSON("/.well-known/openid-configuration", &md)
		if md["pushed_authorization_request_endpoint"] != e.in.URL+"/oauth2/par" || md["require_pushed_authorization_requests"] != false {
			t.Fatalf("discovery: %v %v", md["pushed_authorization_request_endpoint"], md["require_pushed_authorization_requests"])
		}

		// The whole flow through PAR, with x/oauth2 redeeming the code.
		f := newFlow(e.web("openid", "profile"))
		status, m := e.push(pushParams("web", f), "web", webSecret)
		if status != http.StatusCreated || !strings.HasPrefix(m["request_uri"].(string), "urn:ietf:params:oauth:request_uri:") || m["expires_in"] != float64(60) {
			t.Fatalf("PAR: %d %v", status, m)
		}
		u := e.pushedURL("web", m)
		res := e.response(b.SignInDev(u, "alice"))
		e.checkAuthResponse(f, res)
		tok, err := e.exchange(f, res)
		if err != nil {
			t.Fatal(err)
		}
		e.verifyIDToken(f, tok)

		refusedPage := func(what, u string) {
			t.Helper()
			p := b.Get(u)
			if p.Status != http.StatusBadRequest || !strings.Contains(p.Body, "invalid_request_uri") {
				t.Errorf("%s: %d, want the invalid_request_uri page\n%s", what, p.Status, p.Body)
			}
		}
		// Reused: the request_uri was taken by the first use.
		refusedPage("reused request_uri", u)
		// Another client's: shown with client_id=third, and used up by that.
		f = newFlow(e.web())
		_, m = e.push(pushParams("web", f), "web", webSecret)
		refusedPage("request_uri of another client", e.pushedURL("third", m))
		refusedPage("request_uri after its use by another client_id", e.pushedURL("web", m))
		// Expired.
		if _, ok := st.(*memory.Store); ok {
			_, m = e.push(pushParams("web", f), "web", webSecret)
			advance(61 * time.Second)
			refusedPage("expired request_uri", e.pushedURL("web", m))
		}
		refusedPage("made-up request_uri", e.in.URL+"/oauth2/authorize?client_id=web&request_uri=urn:ietf:params:oauth:request_uri:"+strings.Repeat("A", 43))

		// Two redemptions at once: exactly one gets the request.
		_, m = e.push(pushParams("web", newFlow(e.web())), "web", webSecret)
		u = e.pushedURL("web", m)
		var wg sync.WaitGroup
		codes := make([]int, 4)
		for i := range codes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes[i] = noFollow(t, u).StatusCode
			}()
		}
		wg.Wait()
		won := 0
		for _, c := range codes {
			if c != http.StatusBadRequest {
				won++
			}
		}
		if won != 1 {
			t.Errorf("concurrent uses of one request_uri: %v, want exactly one not refused", codes)
		}

		// A client that requires PAR: the plain request is refused (at its
		// verified redirect URI), the pushed one goes through.
		pf := newFlow(&oauth2.Config{ClientID: "pushy", ClientSecret: webSecret, RedirectURL: webRedirect, Endpoint: e.provider.Endpoint(), Scopes: []string{"openid"}})
		ar := e.response(b.Get(pf.authURL))
		if ar.Query.Get("error") != "invalid_request" || !strings.Contains(ar.Query.Get("error_description"), "PAR") {
			t.Fatalf("plain request of a PAR-only client: %v", ar.Query)
		}
		_, m = e.push(pushParams("pushy", pf), "pushy", webSecret)
		e.checkAuthResponse(pf, e.response(b.Get(e.pushedURL("pushy", m))))

		// The PAR endpoint's refusals.
		bad := []struct {
			what       string
			form       url.Values
			user, pass string
			status     int
			code       string
		}{
			{"no client authentication", pushParams("web", f), "", "", 401, "invalid_client"},
			{"wrong secret", pushParams("web", f), "web", "nope-0123456789abcdef0123456789abcdef", 401, "invalid_client"},
			{"client_id not the authenticated client", pushParams("third", f), "web", webSecret, 400, "invalid_request"},
			{"request_uri inside", with(pushParams("web", f), "request_uri", "urn:ietf:params:oauth:request_uri:x"), "web", webSecret, 400, "invalid_request"},
			{"request object", with(pushParams("web", f), "request", "e30.e30."), "web", webSecret, 400, "request_not_supported"},
			{"foreign redirect_uri", with(pushParams("web", f), "redirect_uri", "https://evil.example/cb"), "web", webSecret, 400, "invalid_request"},
			{"no PKCE", with(pushParams("web", f), "code_challenge", ""), "web", webSecret, 400, "invalid_request"},
			{"scope not allowed", with(pushParams("web", f), "scope", "openid admin"), "web", webSecret, 400, "invalid_scope"},
			{"oversized state", with(pushParams("web", f), "state", strings.Repeat("s", 2049)), "web", webSecret, 400, "invalid_request"},
		}
		for _, c := range bad {
			status, m := e.push(c.form, c.user, c.pass)
			if status != c.status || m["error"] != c.code {
				t.Errorf("PAR with %s: %d %v, want %d %s", c.what, status, m, c.status, c.code)
			}
		}
		// A public client pushes with client_id alone.
		sf := newFlow(e.oauth("spa", "", spaRedirect, oauth2.AuthStyleInParams))
		form := pushParams("spa", sf)
		form.Set("redirect_uri", spaRedirect)
		if status, m := e.push(form, "", ""); status != http.StatusCreated {
			t.Fatalf("PAR by a public client: %d %v", status, m)
		}
	})
}

func with(v url.Values, k, val string) url.Values {
	out := url.Values{}
	for kk, vv := range v {
		out[kk] = vv
	}
	if val == "" {
		out.Del(k)
	} else {
		out.Set(k, val)
	}
	return out
}

// TestOpenIDClientPAR: openid-client pushes its request
// (buildAuthorizationUrlWithPAR) with a secret and with private_key_jwt,
// and completes the flow.
func TestOpenIDClientPAR(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		k1 := newRSAKey(t, "k1")
		e := start(t, assertionConfig(t, []clientKey{k1}, "https://unused.example/jwks"), st)
		for _, c := range []nodeClient{
			{ID: "web", Auth: "client_secret_basic", Secret: webSecret},
			jwtClient(t, "signer", k1),
		} {
			az := nodeOK(t, "PAR as "+c.ID, servertest.RunNode(t, nodeCmd(e, c, "authorize", map[string]any{
				"redirect_uri": webRedirect, "scope": "openid profile", "par": true})))
			u, _ := url.Parse(az["url"].(string))
			if q := u.Query(); len(q) != 2 || q.Get("request_uri") == "" || q.Get("client_id") != c.ID {
				t.Fatalf("openid-client's authorization URL after PAR: %s", u)
			}
			res := e.response(e.browser().SignInDev(u.String(), "alice"))
			m := nodeOK(t, "code exchange", servertest.RunNode(t, nodeCmd(e, c, "callback", map[string]any{
				"callback_url": res.URL.String(), "verifier": az["verifier"], "state": az["state"], "nonce": az["nonce"], "userinfo": true})))
			if m["userinfo"].(map[string]any)["sub"] != m["claims"].(map[string]any)["sub"] {
				t.Fatalf("%s: %v", c.ID, m)
			}
		}
	})
}

// getJSON fetches a JSON document from Aero2.
func (e *env) getJSON(path string, v any) {
	e.t.Helper()
	res, err := http.Get(e.in.URL + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		e.t.Fatal(err)
	}
}
