package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"

	"github.com/aero2/aero2/authz/keys/ossl"
	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/server"
	"github.com/aero2/aero2/session"
)

const (
	serviceSecret = "bench-service-secret-0123456789abcdef"
	webSecret     = "bench-web-secret-0123456789abcdef-012"
	redirectURI   = "http://localhost/cb"
)

// Ceiling measures how many RS256 signatures per second a signer makes on
// all cores: GOMAXPROCS goroutines signing SHA-256 digests with a 2048-bit
// key. It is the ceiling for any endpoint that signs: Go's crypto/rsa for a
// binary built without OpenSSL, OpenSSL's EVP (through the same cgo
// binding the server uses, authz/keys/ossl) for one built with
// `-tags openssl`.
type Ceiling struct {
	key    *rsa.PrivateKey
	signer crypto.Signer
	digest [32]byte
}

// NewCeiling generates the key; it signs with crypto/rsa.
func NewCeiling() (*Ceiling, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	return &Ceiling{key: key, signer: key, digest: sha256.Sum256([]byte("aero2 benchmark payload"))}, nil
}

// OpenSSL is the same key signing with OpenSSL (ossl.ErrUnavailable in a
// binary built without it).
func (c *Ceiling) OpenSSL() (*Ceiling, error) {
	s, err := ossl.New(c.key)
	if err != nil {
		return nil, err
	}
	return &Ceiling{key: c.key, signer: s, digest: c.digest}, nil
}

// Measure signs for d on every core and returns the signatures made and
// the time taken.
func (c *Ceiling) Measure(d time.Duration) (int64, time.Duration) {
	var n atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				if _, err := c.signer.Sign(rand.Reader, c.digest[:], crypto.SHA256); err == nil {
					n.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return n.Load(), time.Since(start)
}

// RSACeiling is one measurement of d, in signatures per second.
func RSACeiling(d time.Duration) (float64, error) {
	c, err := NewCeiling()
	if err != nil {
		return 0, err
	}
	n, el := c.Measure(d)
	return float64(n) / el.Seconds(), nil
}

// Target is a running Aero2 and an HTTP client for it.
type Target struct {
	URL    string
	Client *http.Client
	stop   func()
	others []func() // servers a scenario started beside it (setupFloor)
}

// Close stops the server and what a scenario started beside it.
func (t *Target) Close() {
	for _, f := range t.others {
		f()
	}
	t.stop()
}

// onClose has Close run f.
func (t *Target) onClose(f func()) { t.others = append(t.others, f) }

// StoreConfig is the YAML `store:` value: "{type: memory}", Redis (under
// prefix), PostgreSQL at pgDSN (migrated on start), or both combined.
func StoreConfig(kind, redisAddr, prefix, pgDSN string) string {
	rd := fmt.Sprintf("redis: {addrs: [%q], key_prefix: %q}", redisAddr, prefix)
	pg := fmt.Sprintf("postgres: {dsn: %q, migrate_on_start: true, max_conns: 32}", pgDSN)
	switch kind {
	case "redis":
		return "{type: redis, " + rd + "}"
	case "postgres":
		return "{type: postgres, " + pg + "}"
	case "combined":
		return "{type: combined, " + pg + ", " + rd + "}"
	}
	return "{type: memory}"
}

// Start runs Aero2 on a loopback port with the benchmark's clients.
func Start(ctx context.Context, store string, workers int) (*Target, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	base := "http://" + ln.Addr().String()
	// Every client is one address (loopback) at thousands of requests a
	// second: the rate limits are off, and what they cost is measured
	// apart (BenchmarkRateLimiter in server).
	yaml := `
insecure_dev: true
server: {public_url: "` + base + `", rate_limits: {disabled: true}}
log: {level: error}
store: ` + store + `
secrets:
  cookie_keys: ["bench-cookie-key-0123456789abcdef-0123"]
  storage_key: "bench-storage-key-0123456789abcdef-012"
identity_providers:
  - id: dev
    type: dev
    config:
      users:
        - {username: alice, name: Alice, email: alice@example.com}
` + manyUsers() + `
clients:
  - {id: service, secret: "` + serviceSecret + `", grant_types: [client_credentials], scopes: [api]}
  - {id: web, secret: "` + webSecret + `", redirect_uris: ["` + redirectURI + `"], first_party: true}
`
	cfg, err := config.Parse("bench.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		ln.Close()
		return nil, err
	}
	srv, err := server.New(ctx, cfg, server.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		ln.Close()
		return nil, err
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	tr := &http.Transport{MaxIdleConns: 4 * workers, MaxIdleConnsPerHost: 4 * workers, IdleConnTimeout: time.Minute}
	return &Target{
		URL:    base,
		Client: &http.Client{Transport: tr, Timeout: 30 * time.Second},
		stop: func() {
			hs.Close()
			tr.CloseIdleConnections()
			srv.Close()
		},
	}, nil
}

// postForm posts a form and decodes a JSON answer into out.
func (t *Target) postForm(client *http.Client, path string, form url.Values, user, pass string, out any) error {
	req, _ := http.NewRequest(http.MethodPost, t.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %d %s", path, res.StatusCode, bytes.TrimSpace(body))
	}
	if out != nil {
		return json.Unmarshal(body, out)
	}
	return nil
}

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
}

// Scenario is one endpoint under load.
type Scenario struct {
	Name string
	// Sigs is the RS256 signatures one request makes.
	Sigs int
	// Setup prepares one operation per worker.
	Setup func(t *Target, workers int) ([]func() error, error)
}

// Scenarios are the measured endpoints.
var Scenarios = []Scenario{
	{"client_credentials", 1, setupClientCredentials},
	{"floor: net/http+sig", 1, setupFloor},
	{"refresh_token", 2, setupRefresh},
	{"introspection (JWT)", 0, setupIntrospection},
	{"authorize->token", 2, setupRoundTrip},
	{"sign-in, many users", 0, setupSignInMany},
	{"sign-in, one user", 0, setupSignInOne},
	{"sign-in callback", 0, setupCallbackMany},
}

// signInUsers is how many users of the dev provider the "many users"
// sign-in spreads over: enough that none of them reaches the cap of live
// sessions per user (session.MaxSessionsPerUser) in a run of a minute at
// a thousand sign-ins a second.
const signInUsers = 2048

// manyUsers is the YAML of the dev provider's users besides alice, one a
// line (config.Parse takes seconds over one line of thousands).
func manyUsers() string {
	var b strings.Builder
	for i := range signInUsers {
		fmt.Fprintf(&b, "        - {username: %s, email: %s@example.com}\n", benchUser(i), benchUser(i))
	}
	return b.String()
}

func benchUser(i int) string { return fmt.Sprintf("user-%04d", i) }

// setupSignInMany: the realistic case of concurrent logins, many people
// signing in at once, each once. Worker i signs in users i, i+workers,
// i+2·workers, … in turn, so no two workers ever sign in the same user at
// the same time; after the first round each sign-in is a returning user's
// (the identity is found, its user updated).
func setupSignInMany(t *Target, workers int) ([]func() error, error) {
	return manyUserOps(workers, func(u string) error { _, err := t.browser(u); return err }), nil
}

// manyUserOps are workers running signIn for users of the dev provider in
// turn: worker i takes users i, i+workers, i+2·workers, … and starts over.
func manyUserOps(workers int, signIn func(user string) error) []func() error {
	ops := make([]func() error, workers)
	for i := range ops {
		next := i
		ops[i] = func() error {
			u := benchUser(next % signInUsers)
			next += workers
			if next >= signInUsers {
				next = i
			}
			return signIn(u)
		}
	}
	return ops
}

// setupCallbackMany is setupSignInMany up to the callback's redirect to
// the account page, which it does not follow: the sign-in alone, which is
// what issue 13's target counts ("federated sign-in callback ≥ 1,000/s"),
// without the page a user is shown after it (7 more round trips and
// twice the callback's CPU, profiled).
func setupCallbackMany(t *Target, workers int) ([]func() error, error) {
	return manyUserOps(workers, func(u string) error { return t.signIn(u, false) }), nil
}

// setupSignInOne: every worker signs alice in, over and over: one person
// signing in from many tabs or a script at once, the case of contention
// on one user record. alice is at session.MaxSessionsPerUser live sessions
// after the first fifty, so every sign-in also ends her least recently
// used session, and her account page lists fifty.
func setupSignInOne(t *Target, workers int) ([]func() error, error) {
	ops := make([]func() error, workers)
	for i := range ops {
		ops[i] = func() error { _, err := t.browser("alice"); return err }
	}
	return ops, nil
}

func clientCredentials(t *Target, c *http.Client) (*tokenResponse, error) {
	var tr tokenResponse
	err := t.postForm(c, "/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"api"}}, "service", serviceSecret, &tr)
	if err == nil && tr.AccessToken == "" {
		err = errors.New("no access token")
	}
	return &tr, err
}

func setupClientCredentials(t *Target, workers int) ([]func() error, error) {
	return tokenOps(t.Client, t.URL+"/oauth2/token", workers)
}

// tokenOps are workers asking endpoint for client-credentials tokens, each
// with a client of its own; an answer counts when it is a 200 with a JWT
// access token. Aero2 and the peer are both driven by these.
func tokenOps(c *http.Client, endpoint string, workers int) ([]func() error, error) {
	ops := make([]func() error, workers)
	for i := range ops {
		p, err := newPoster(c, endpoint, "service", serviceSecret)
		if err != nil {
			return nil, err
		}
		ops[i] = func() error {
			status, body, err := p.post("grant_type=client_credentials&scope=api")
			if err != nil {
				return err
			}
			if status != http.StatusOK || strings.Count(jsonField(body, "access_token"), ".") != 2 {
				return fmt.Errorf("token endpoint: %d, no JWT access token: %.200s", status, body)
			}
			return nil
		}
	}
	return ops, nil
}

func setupIntrospection(t *Target, workers int) ([]func() error, error) {
	ops := make([]func() error, workers)
	for i := range ops {
		tok, err := clientCredentials(t, t.Client)
		if err != nil {
			return nil, err
		}
		form := url.Values{"token": {tok.AccessToken}, "token_type_hint": {"access_token"}}.Encode()
		p, err := newPoster(t.Client, t.URL+"/oauth2/introspect", "service", serviceSecret)
		if err != nil {
			return nil, err
		}
		ops[i] = func() error {
			status, body, err := p.post(form)
			if err != nil {
				return err
			}
			if status != http.StatusOK || !bytes.HasPrefix(body, []byte(`{"active":true`)) {
				return fmt.Errorf("introspection: %d, not active: %.200s", status, body)
			}
			return nil
		}
	}
	return ops, nil
}

// browser is a browser (cookie jar) signed in as the dev provider's user,
// that stops at redirects. A whole sign-in in a new browser —
// /rp/authorize (login state stored), the provider's choice of user (its
// code stored), Aero2's callback (state and code taken, user looked up by
// identity and updated, session created, cookie set) — ending on the
// account page (the session read). The dev provider's page that lists its
// users is skipped, as a real provider's page is not Aero2's work: its
// form is posted straight to the address /rp/authorize sent the browser
// to (with thousands of users the page would be most of the cost).
func (t *Target) browser(user string) (*http.Client, error) {
	c := t.newBrowser()
	if err := t.signInWith(c, user, true); err != nil {
		return nil, err
	}
	return c, nil
}

// signIn is a sign-in of user in a new browser; land follows the
// callback's redirect to the account page.
func (t *Target) signIn(user string, land bool) error {
	return t.signInWith(t.newBrowser(), user, land)
}

// newBrowser is a client with an empty cookie jar.
func (t *Target) newBrowser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Transport: t.Client.Transport, Timeout: 30 * time.Second}
}

// signInWith signs user in with c (whose jar then holds the session) and
// leaves c stopping at redirects.
func (t *Target) signInWith(c *http.Client, user string, land bool) error {
	stop := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.CheckRedirect = stop
	res, err := c.Get(t.URL + "/rp/authorize?idp=dev&redirect_uri=/account")
	if err != nil {
		return err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	page, err := res.Location()
	if err != nil || res.StatusCode != http.StatusFound || page.Query().Get("state") == "" {
		return fmt.Errorf("/rp/authorize: %d to %q, not the dev sign-in page", res.StatusCode, res.Header.Get("Location"))
	}
	state := page.Query().Get("state")
	page.RawQuery = ""
	c.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
		if !land && req.URL.Path == "/account" {
			return http.ErrUseLastResponse // the callback has answered
		}
		return nil
	}
	res, err = c.PostForm(page.String(), url.Values{"state": {state}, "user": {user}})
	if err != nil {
		return err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	c.CheckRedirect = stop
	if land {
		if res.StatusCode != http.StatusOK || res.Request.URL.Path != "/account" {
			return fmt.Errorf("sign-in ended with %d at %s", res.StatusCode, res.Request.URL)
		}
		return nil
	}
	// The callback's answer: a redirect to the account page, with the
	// session cookie set (the jar holds it for Aero2's origin).
	to, err := res.Location()
	if err != nil || res.StatusCode/100 != 3 || to.Path != "/account" || !hasCookie(c.Jar, res.Request.URL, session.CookieName(config.DefaultCookieName, false, "")) {
		return fmt.Errorf("callback answered %d to %q at %s, not a signed-in redirect to the account page", res.StatusCode, res.Header.Get("Location"), res.Request.URL)
	}
	return nil
}

// hasCookie: the jar sends a cookie of that name to u.
func hasCookie(jar http.CookieJar, u *url.URL, name string) bool {
	for _, c := range jar.Cookies(u) {
		if c.Name == name && c.Value != "" {
			return true
		}
	}
	return false
}

// roundTrip runs authorize (signed in, first-party: straight to the code)
// and the code exchange with PKCE.
func roundTrip(t *Target, b *http.Client) (*tokenResponse, error) {
	verifier := oauth2.GenerateVerifier()
	state := oauth2.GenerateVerifier()[:16]
	q := url.Values{"client_id": {"web"}, "redirect_uri": {redirectURI}, "response_type": {"code"}, "scope": {"openid profile email"},
		"state": {state}, "code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"}}
	res, err := b.Get(t.URL + "/oauth2/authorize?" + q.Encode())
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	loc, err := url.Parse(res.Header.Get("Location"))
	if err != nil || res.StatusCode != http.StatusSeeOther || loc.Query().Get("code") == "" || loc.Query().Get("state") != state {
		return nil, fmt.Errorf("authorize: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	var tr tokenResponse
	err = t.postForm(t.Client, "/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"redirect_uri": {redirectURI}, "code_verifier": {verifier}}, "web", webSecret, &tr)
	if err == nil && (tr.IDToken == "" || tr.RefreshToken == "") {
		err = errors.New("token response lacks an ID or refresh token")
	}
	return &tr, err
}

func setupRoundTrip(t *Target, workers int) ([]func() error, error) {
	ops := make([]func() error, workers)
	for i := range ops {
		b, err := t.browser("alice")
		if err != nil {
			return nil, err
		}
		ops[i] = func() error { _, err := roundTrip(t, b); return err }
	}
	return ops, nil
}

// setupRefresh gives each worker its own refresh token chain: every
// refresh rotates the token and the worker uses the new one next.
func setupRefresh(t *Target, workers int) ([]func() error, error) {
	b, err := t.browser("alice")
	if err != nil {
		return nil, err
	}
	ops := make([]func() error, workers)
	for i := range ops {
		tr, err := roundTrip(t, b)
		if err != nil {
			return nil, err
		}
		rt := tr.RefreshToken
		p, err := newPoster(t.Client, t.URL+"/oauth2/token", "web", webSecret)
		if err != nil {
			return nil, err
		}
		ops[i] = func() error {
			status, body, err := p.post("grant_type=refresh_token&refresh_token=" + url.QueryEscape(rt))
			if err != nil {
				return err
			}
			next := jsonField(body, "refresh_token")
			if status != http.StatusOK || next == "" || strings.Count(jsonField(body, "id_token"), ".") != 2 {
				return fmt.Errorf("refresh: %d, no refresh or ID token: %.200s", status, body)
			}
			rt = next
			return nil
		}
	}
	return ops, nil
}

// Result of one scenario.
type Result struct {
	Requests int
	Errors   int
	FirstErr error
	Elapsed  time.Duration
	Rate     float64 // requests per second
	P50, P99 time.Duration
	lat      []time.Duration
}

// Run drives the operations, one goroutine each, for d.
func Run(ops []func() error, d time.Duration) Result {
	lat := make([][]time.Duration, len(ops))
	errs := make([]int, len(ops))
	firsts := make([]error, len(ops))
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for i, op := range ops {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				t0 := time.Now()
				if err := op(); err != nil {
					errs[i]++
					if firsts[i] == nil {
						firsts[i] = err
					}
					continue
				}
				lat[i] = append(lat[i], time.Since(t0))
			}
		})
	}
	wg.Wait()
	r := Result{Elapsed: time.Since(start)}
	for i := range ops {
		r.lat = append(r.lat, lat[i]...)
		r.Errors += errs[i]
		if r.FirstErr == nil {
			r.FirstErr = firsts[i]
		}
	}
	return r.finish()
}

// Add merges another run of the same scenario into r.
func (r Result) Add(o Result) Result {
	r.lat = append(r.lat, o.lat...)
	r.Errors += o.Errors
	if r.FirstErr == nil {
		r.FirstErr = o.FirstErr
	}
	r.Elapsed += o.Elapsed
	return r.finish()
}

func (r Result) finish() Result {
	slices.Sort(r.lat)
	r.Requests = len(r.lat)
	if r.Elapsed > 0 {
		r.Rate = float64(len(r.lat)) / r.Elapsed.Seconds()
	}
	if len(r.lat) > 0 {
		r.P50 = r.lat[len(r.lat)/2]
		r.P99 = r.lat[min(len(r.lat)-1, len(r.lat)*99/100)]
	}
	return r
}

// cleanRedis deletes the benchmark's keys.
func cleanRedis(addr, prefix string) {
	c := goredis.NewClient(&goredis.Options{Addr: addr})
	defer c.Close()
	ctx := context.Background()
	iter := c.Scan(ctx, 0, prefix+":*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 1000 {
			c.Del(ctx, keys...)
			keys = keys[:0]
		}
	}
	if len(keys) > 0 {
		c.Del(ctx, keys...)
	}
}
