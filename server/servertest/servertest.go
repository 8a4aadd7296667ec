// Package servertest runs a whole Aero2 in-process on a loopback port, for
// end-to-end tests, and drives it like a browser: a real HTTP client with a
// cookie jar that follows redirects and posts the pages' forms.
package servertest

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/template"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/config/configtest"
	"github.com/aero2/aero2/server"
	"github.com/aero2/aero2/store"
)

// Instance is a running Aero2.
type Instance struct {
	// URL is the public URL, http://127.0.0.1:<port>.
	URL string
	// Addr is where this instance listens: URL, except for a replica
	// started with Options.PublicURL.
	Addr   string
	Config *config.Config
	Server *server.Server
	HTTP   *httptest.Server
}

// Keys are test secrets of valid length.
const (
	CookieKey  = configtest.CookieKey
	StorageKey = configtest.StorageKey
)

// DevConfig is a config for one application at {{.URL}} with the dev
// provider (alice verified, eve unverified) and the store given by
// {{.Store}}.
const DevConfig = `
insecure_dev: true
server:
  public_url: "{{.URL}}"
store: {type: memory}
secrets:
  cookie_keys: ["` + CookieKey + `"]
  storage_key: "` + StorageKey + `"
identity_providers:
  - id: dev
    type: dev
    config:
      users:
        - {username: alice, name: Alice Admin, email: alice@example.com, groups: [admins, engineering]}
        - {username: eve, name: Eve, email: eve@example.org, email_verified: false}
`

// Start listens on a loopback port, renders the config template with
// {{.URL}} (and {{.Host}}, {{.Port}}), and serves Aero2 on it with st as
// the store (nil: the store the config names; for a memory store, the one
// $AERO2_TEST_STORE selects when it names postgres or combined). The
// instance stops when the test ends.
func Start(t testing.TB, tmpl string, st store.Store) *Instance {
	t.Helper()
	return StartWith(t, tmpl, Options{Store: st})
}

// Options adjust StartWith.
type Options struct {
	// Store is the store; nil means the one the config names.
	Store store.Store
	// PublicURL, when set, is what {{.URL}}, {{.Host}} and {{.Port}} render
	// instead of the listener's own address: the instance is a replica of
	// another one, behind the same public URL (the same issuer), reached
	// at its own Addr.
	PublicURL string
	// Server passes further options to server.New (its Store is set from
	// the field above; a nil Logger writes to the test log).
	Server server.Options
	// TLS serves https (with httptest's certificate): {{.URL}} is then
	// https://127.0.0.1:<port>. Instance.NewBrowser trusts it.
	TLS bool
}

// StartWith is Start with options.
func StartWith(t testing.TB, tmpl string, opts Options) *Instance {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	scheme := "http"
	if opts.TLS {
		scheme = "https"
	}
	addr := fmt.Sprintf("%s://%s", scheme, ln.Addr())
	public := addr
	if opts.PublicURL != "" {
		public = opts.PublicURL
	}
	u, err := url.Parse(public)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(u.Port())
	vars := map[string]any{"URL": public, "Host": u.Hostname(), "Port": port}
	var buf bytes.Buffer
	if err := template.Must(template.New("cfg").Parse(tmpl)).Execute(&buf, vars); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("test.yaml", buf.Bytes(), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("test config: %v", err)
	}
	so := opts.Server
	so.Store = opts.Store
	if so.Store == nil && cfg.Store.Type == "memory" {
		so.Store = selectedStore(t)
	}
	if so.Logger == nil {
		so.Logger = Logger(t)
	}
	srv, err := server.New(context.Background(), cfg, so)
	if err != nil {
		t.Fatalf("server: %v", err)
	}
	hs := httptest.NewUnstartedServer(srv.Handler())
	hs.Listener.Close()
	hs.Listener = ln
	if opts.TLS {
		hs.StartTLS()
	} else {
		hs.Start()
	}
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
	})
	return &Instance{URL: public, Addr: addr, Config: cfg, Server: srv, HTTP: hs}
}

// Logger writes the server's logs to the test log (shown on failure).
// Server goroutines can outlive the test (a request finishing as it ends);
// their lines are dropped once the test's cleanup has begun, since calling
// t.Log after a test completes is a race.
func Logger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	mu   sync.Mutex
	done bool
	t    testing.TB
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// Browser is an HTTP client with a cookie jar, like a browser without
// JavaScript.
type Browser struct {
	*http.Client
	t testing.TB
}

// NewBrowser returns a browser that follows redirects. Like a browser, it
// reaches every *.localhost name on loopback (RFC 6761 §6.3), so tests can
// use routes on hosts such as app.localhost.
func NewBrowser(t testing.TB) *Browser {
	jar, _ := cookiejar.New(nil)
	return &Browser{Client: &http.Client{Jar: jar, Transport: localhostTransport}, t: t}
}

// NewBrowser returns a browser for this instance: one that trusts its
// certificate when it serves https.
func (in *Instance) NewBrowser(t testing.TB) *Browser {
	b := NewBrowser(t)
	if in.HTTP.TLS != nil {
		tr := localhostTransport.Clone()
		tr.TLSClientConfig = in.HTTP.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
		b.Client.Transport = tr
	}
	return b
}

// localhostTransport dials *.localhost names on 127.0.0.1.
var localhostTransport = func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	var d net.Dialer
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if host, port, err := net.SplitHostPort(addr); err == nil && strings.HasSuffix(strings.ToLower(host), ".localhost") {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		return d.DialContext(ctx, network, addr)
	}
	return t
}()

// NoRedirects makes the browser stop at the first redirect, to inspect it.
func (b *Browser) NoRedirects() *Browser {
	c := *b.Client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Browser{Client: &c, t: b.t}
}

// Page is a fetched page.
type Page struct {
	Status int
	URL    *url.URL
	Header http.Header
	Body   string
}

// Get fetches a page.
func (b *Browser) Get(u string) *Page {
	b.t.Helper()
	res, err := b.Client.Get(u)
	if err != nil {
		b.t.Fatalf("GET %s: %v", u, err)
	}
	return read(b.t, res)
}

// PostForm posts a form.
func (b *Browser) PostForm(u string, v url.Values) *Page {
	b.t.Helper()
	res, err := b.Client.PostForm(u, v)
	if err != nil {
		b.t.Fatalf("POST %s: %v", u, err)
	}
	return read(b.t, res)
}

func read(t testing.TB, res *http.Response) *Page {
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &Page{Status: res.StatusCode, URL: res.Request.URL, Header: res.Header, Body: string(body)}
}

var (
	formRE   = regexp.MustCompile(`(?s)<form method="post" action="([^"]+)">(.*?)</form>`)
	hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
)

// Form returns the action and hidden fields of the page's first form whose
// action contains actionPart.
func (p *Page) Form(t testing.TB, actionPart string) (string, url.Values) {
	t.Helper()
	if action, v, ok := p.FindForm(actionPart); ok {
		return action, v
	}
	t.Fatalf("no form with action %q on %s (status %d):\n%s", actionPart, p.URL, p.Status, p.Body)
	return "", nil
}

// FindForm is Form for callers that must not fail the test (load
// generators in goroutines of their own): ok is false when there is no
// such form.
func (p *Page) FindForm(actionPart string) (action string, v url.Values, ok bool) {
	for _, m := range formRE.FindAllStringSubmatch(p.Body, -1) {
		action := html.UnescapeString(m[1])
		if !strings.Contains(action, actionPart) {
			continue
		}
		v := url.Values{}
		for _, h := range hiddenRE.FindAllStringSubmatch(m[2], -1) {
			v.Set(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
		}
		return action, v, true
	}
	return "", nil, false
}

// SignInDev signs in as the dev provider's user, starting at startURL (a
// page that leads to the dev provider's user list, such as /rp/authorize
// or a protected route), and returns the page the flow ends on.
func (b *Browser) SignInDev(startURL, user string) *Page {
	b.t.Helper()
	p := b.Get(startURL)
	if p.Status == http.StatusOK && strings.Contains(p.URL.Path, "/login") && !strings.Contains(p.URL.Path, "/rp/idp/") {
		// The login page: follow its dev provider link.
		m := regexp.MustCompile(`href="([^"]*rp/authorize[^"]*)"`).FindStringSubmatch(p.Body)
		if m == nil {
			b.t.Fatalf("login page without a provider link:\n%s", p.Body)
		}
		p = b.Get(resolve(p.URL, html.UnescapeString(m[1])))
	}
	if p.Status != http.StatusOK || !strings.Contains(p.URL.Path, "/rp/idp/") {
		b.t.Fatalf("expected the dev provider's page, got %d at %s:\n%s", p.Status, p.URL, p.Body)
	}
	action, v := p.Form(b.t, "/rp/idp/")
	v.Set("user", user)
	return b.PostForm(resolve(p.URL, action), v)
}

func resolve(base *url.URL, ref string) string {
	u, err := base.Parse(ref)
	if err != nil {
		return ref
	}
	return u.String()
}

// DevCallback starts a sign-in at authorizeURL (an /rp/authorize URL of a
// dev provider), chooses user on the dev provider's page and returns the
// callback URL the provider redirects to, without following it: for tests
// that replay, move or forge callbacks.
func (b *Browser) DevCallback(authorizeURL, user string) string {
	b.t.Helper()
	p := b.Get(authorizeURL)
	action, v := p.Form(b.t, "/rp/idp/")
	v.Set("user", user)
	res, err := b.NoRedirects().Client.PostForm(action, v)
	if err != nil {
		b.t.Fatal(err)
	}
	res.Body.Close()
	cb := res.Header.Get("Location")
	if res.StatusCode != http.StatusSeeOther || !strings.Contains(cb, "/rp/callback/") {
		b.t.Fatalf("dev provider answered %d, Location %q", res.StatusCode, cb)
	}
	return cb
}
