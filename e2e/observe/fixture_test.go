package observe_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/aero2/aero2/server"
	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/redis/redistest"
)

const (
	webSecret     = "web-secret-0123456789abcdef-0123456789"
	webRedirect   = "http://localhost/callback"
	thirdSecret   = "third-secret-0123456789abcdef-01234567"
	thirdRedirect = "https://third.example/cb"
)

// config is DevConfig with a web client, a proxied route to UP, a route
// alice's groups do not admit, and a revocation limit of one per hour
// per address (so that a second revocation is a rate-limit hit).
const config = `
clients:
  - id: web
    name: Web App
    secret: "` + webSecret + `"
    redirect_uris: ["` + webRedirect + `"]
    scopes: [openid, profile, email, offline_access]
    first_party: true
  - id: third
    name: Third Party
    secret: "` + thirdSecret + `"
    redirect_uris: ["` + thirdRedirect + `"]
routes:
  - {path: /app, upstream: "UP"}
  - {path: /finance, upstream: "UP", policy: {allowed_groups: [finance]}}
`

func configFor(upstream string) string {
	c := strings.Replace(servertest.DevConfig, "server:\n", "server:\n  rate_limits: {revoke: {per_address: {requests: 1, per: 1h}}}\n", 1)
	return c + strings.ReplaceAll(config, "UP", upstream)
}

func stores(t *testing.T, fn func(t *testing.T, st store.Store)) {
	t.Run("memory", func(t *testing.T) { fn(t, nil) })
	t.Run("redis", func(t *testing.T) { fn(t, redistest.New(t)) })
}

// env is one Aero2 with an upstream, seen from a browser and a client.
type env struct {
	t   *testing.T
	in  *servertest.Instance
	ctx context.Context
	web *oauth2.Config
}

func start(t *testing.T, st store.Store, so server.Options) *env {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "upstream "+r.URL.Path)
	}))
	t.Cleanup(up.Close)
	in := servertest.StartWith(t, configFor(up.URL), servertest.Options{Store: st, Server: so})
	ctx := oidc.ClientContext(context.Background(), http.DefaultClient)
	p, err := oidc.NewProvider(ctx, in.URL)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	ep := p.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInHeader
	return &env{t: t, in: in, ctx: ctx, web: &oauth2.Config{
		ClientID: "web", ClientSecret: webSecret, RedirectURL: webRedirect, Endpoint: ep,
		Scopes: []string{oidc.ScopeOpenID, "profile", "email", "offline_access"},
	}}
}

// code signs alice in with a fresh browser through the web client's
// authorization request and returns the code and its verifier.
func (e *env) code() (code, verifier string) {
	e.t.Helper()
	return e.codeIn(e.browser())
}

// browser is a browser that stops at redirects leaving Aero2.
func (e *env) browser() *servertest.Browser {
	b := servertest.NewBrowser(e.t)
	b.Client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if !strings.HasPrefix(req.URL.String(), e.in.URL) {
			return http.ErrUseLastResponse
		}
		return nil
	}
	return b
}

// codeIn is code in browser b.
func (e *env) codeIn(b *servertest.Browser) (code, verifier string) {
	e.t.Helper()
	verifier = oauth2.GenerateVerifier()
	p := b.SignInDev(e.web.AuthCodeURL("state-0123456789", oauth2.S256ChallengeOption(verifier)), "alice")
	loc, err := url.Parse(p.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		e.t.Fatalf("no authorization response: %d %s %q", p.Status, p.URL, p.Header.Get("Location"))
	}
	return loc.Query().Get("code"), verifier
}

// postForm posts form to path, as the web client when secret is set.
func (e *env) postForm(path string, form url.Values, secret string) (int, string) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.in.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if secret != "" {
		req.SetBasicAuth("web", secret)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

// scrape GETs u (a /metrics page) and returns each sample by its series
// as Prometheus writes it: name{label="value",…} with labels in name order.
func scrape(t *testing.T, u string) map[string]float64 {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", u, res.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}
