package proxy_test

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/aero2/aero2/proxy/proxytest"
	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store/redis/redistest"
)

const ownServiceSecret = "service-secret-0123456789abcdef-012345"

// ownProviderConfig protects /app behind Aero2's own provider, with the
// in-process caches as short as they go, so that every request is checked
// against the store. A service client gets bearer tokens for the proxy.
const ownProviderConfig = `
proxy: {session_cache: 1ms, token_cache: 1ms}
clients:
  - id: service
    secret: "` + ownServiceSecret + `"
    grant_types: [client_credentials]
    audience: [aero2-proxy]
routes:
  - {path: /app, upstream: "UP", policy: {allow_client_credentials: true}}
`

// TestProxyFailsClosedWhenTheStoreFails: with Redis down, hanging, or
// dying under the request, the proxy answers 503 with Retry-After — to a
// browser with a session, to a bearer token, to forward-auth, to a browser
// that must first sign in, to a sign-out — never lets a request through
// unchecked, never answers 500, and shows nothing of the failure.
func TestProxyFailsClosedWhenTheStoreFails(t *testing.T) {
	p := redistest.PrivateServer(t)
	up, _ := proxytest.StartUpstream(t)
	cfg := strings.Replace(servertest.DevConfig, "server:\n", "server:\n  trusted_proxies: [127.0.0.1/32]\n", 1) +
		strings.ReplaceAll(ownProviderConfig, "UP", up.URL)
	in := servertest.Start(t, cfg, p.Open(t))
	b := servertest.NewBrowser(t)
	if pg := b.SignInDev(in.URL+"/app/x", "alice"); pg.Status != http.StatusOK || len(up.Seen()) != 1 {
		t.Fatalf("sign-in through the proxy: %d %s", pg.Status, pg.URL)
	}
	cc := clientcredentials.Config{ClientID: "service", ClientSecret: ownServiceSecret, TokenURL: in.URL + "/oauth2/token",
		EndpointParams: url.Values{"audience": {"aero2-proxy"}}}
	tok, err := cc.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	get := servertest.NewGet
	// Both work while Redis does.
	for _, req := range []*http.Request{get(in.URL + "/app/x")(), get(in.URL+"/app/x", "Authorization", "Bearer "+tok.AccessToken)()} {
		if res := do(t, b, req); res.StatusCode != http.StatusOK {
			t.Fatalf("%s before the outage: %d", req.Header, res.StatusCode)
		}
	}
	seen := len(up.Seen())

	b.FailsClosed(t, p, "browser with a session", get(in.URL+"/app/x"))
	json := b.FailsClosed(t, p, "script with a session", get(in.URL+"/app/x", "Accept", "application/json"))
	for _, pg := range json {
		if !strings.Contains(pg.Body, `"error":"temporarily_unavailable"`) {
			t.Errorf("script with a session: want a JSON error, got %s", pg.Body)
		}
	}
	api := servertest.NewBrowser(t)
	api.FailsClosed(t, p, "bearer token", get(in.URL+"/app/x", "Authorization", "Bearer "+tok.AccessToken))
	b.FailsClosed(t, p, "forward-auth", get(in.URL+"/.aero2/forward-auth",
		"X-Forwarded-Method", "GET", "X-Forwarded-Proto", "http", "X-Forwarded-Host", strings.TrimPrefix(in.URL, "http://"), "X-Forwarded-Uri", "/app/x"))
	api.FailsClosed(t, p, "browser to sign in", get(in.URL+"/app/x"))
	// A sign-in through the provider, at the proxy's callback and at the
	// handoff that turns it into a session: a browser signed in at the
	// provider, without a proxy session yet.
	fresh := servertest.NewBrowser(t)
	fresh.SignInDev(in.URL+"/login", "alice")
	fresh.FailsClosed(t, p, "proxy callback", func() *http.Request {
		return get(fresh.FollowUntil(in.URL+"/app/x", in.URL+"/.aero2/callback"))()
	})
	fresh.FailsClosed(t, p, "proxy handoff", func() *http.Request {
		return get(fresh.FollowUntil(in.URL+"/app/x", in.URL+"/.aero2/handoff"))()
	})
	b.FailsClosed(t, p, "sign-out", func() *http.Request {
		_, f := b.Get(in.URL+"/.aero2/sign_out").Form(t, "/.aero2/sign_out")
		return servertest.NewPost(in.URL+"/.aero2/sign_out", f, "", "")()
	})
	if n := len(up.Seen()); n != seen {
		t.Errorf("%d requests reached the upstream while the store failed", n-seen)
	}
	// The failed sign-outs ended nothing: the session still works.
	if res := do(t, b, get(in.URL+"/app/x")()); res.StatusCode != http.StatusOK {
		t.Errorf("after the outages the session answers %d", res.StatusCode)
	}
}

func do(t *testing.T, b *servertest.Browser, req *http.Request) *http.Response {
	t.Helper()
	res, err := b.NoRedirects().Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res
}

// TestUpstreamDownGetsAeroPage: an upstream that refuses connections, or
// hangs up without an answer, is 502, one that accepts and never answers
// past the route's header timeout is 504, each with Aero2's page (or JSON for scripts) naming neither the
// upstream nor the error.
func TestUpstreamDownGetsAeroPage(t *testing.T) {
	refused := servertest.RefusingAddr(t)
	stalled, release := stallingUpstream(t, false)
	defer release()
	hangsUp, release2 := stallingUpstream(t, true)
	defer release2()
	s := start(t, nil, `
routes:
  - {path: /app, upstream: "UP"}
  - {path: /refused, upstream: "http://`+refused+`"}
  - {path: /stalled, upstream: "http://`+stalled+`", timeouts: {response_header: 300ms}}
  - {path: /hangs-up, upstream: "http://`+hangsUp+`"}
`, nil)
	b, _ := signedIn(t, s, nil)
	for _, c := range []struct {
		path, addr string
		status     int
	}{
		{"/refused/x", refused, http.StatusBadGateway},
		{"/stalled/x", stalled, http.StatusGatewayTimeout},
		{"/hangs-up/x", hangsUp, http.StatusBadGateway},
	} {
		for _, accept := range []string{"text/html", "application/json"} {
			req, _ := http.NewRequest(http.MethodGet, s.in.URL+c.path, nil)
			req.Header.Set("Accept", accept)
			c2 := *b.NoRedirects().Client
			c2.Timeout = servertest.AnswerWithin
			res, err := c2.Do(req)
			if err != nil {
				t.Fatalf("%s (%s): %v", c.path, accept, err)
			}
			pg := readPage(t, res)
			if pg.Status != c.status {
				t.Errorf("%s (%s): %d, want %d", c.path, accept, pg.Status, c.status)
			}
			want := "<title>Application unavailable · Aero2</title>"
			if accept == "application/json" {
				want = `"error":"application_unavailable"`
			}
			if !strings.Contains(pg.Body, want) {
				t.Errorf("%s (%s): not Aero2's answer:\n%s", c.path, accept, pg.Body)
			}
			_, port, _ := net.SplitHostPort(c.addr)
			for _, leak := range []string{port, "dial", "refused", "timeout", "tcp", "EOF"} {
				if strings.Contains(pg.Body, leak) {
					t.Errorf("%s (%s): the answer shows %q:\n%s", c.path, accept, leak, pg.Body)
				}
			}
		}
	}
}

// stallingUpstream accepts connections and reads requests, and never
// answers: it waits until release, or with hangUp closes the connection
// at once.
func stallingUpstream(t *testing.T, hangUp bool) (string, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				http.ReadRequest(bufio.NewReader(c))
				if hangUp {
					return
				}
				select {
				case <-stop:
				case <-time.After(time.Minute):
				}
			}()
		}
	}()
	var once sync.Once
	return ln.Addr().String(), func() {
		once.Do(func() { close(stop); ln.Close(); wg.Wait() })
	}
}

func readPage(t *testing.T, res *http.Response) *servertest.Page {
	t.Helper()
	defer res.Body.Close()
	var sb strings.Builder
	if _, err := bufio.NewReader(res.Body).WriteTo(&sb); err != nil {
		t.Fatal(err)
	}
	return &servertest.Page{Status: res.StatusCode, URL: res.Request.URL, Header: res.Header, Body: sb.String()}
}
