package authz_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/aero2/aero2/server"
	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/memory"
)

const deviceGrant = "urn:ietf:params:oauth:grant-type:device_code"

// deviceConfig: tv is a public device client, tvs a confidential one;
// polls every second; three wrong user codes per address an hour.
func deviceConfig() string {
	return withServerKeys(providerConfig, `  rate_limits:
    user_code_failures: {per_address: {requests: 3, per: 1h}, per_account: {requests: 100, per: 1h}}
`) + `
  - id: tv
    name: Living Room TV
    grant_types: [` + deviceGrant + `, refresh_token]
    scopes: [openid, profile, email]
  - id: tvs
    secret: "` + serviceSecret + `"
    grant_types: [` + deviceGrant + `]
    scopes: [openid]
device_authorization: {poll_interval: 1s}
`
}

func (e *env) tv() *oauth2.Config {
	ep := e.provider.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInParams
	return &oauth2.Config{ClientID: "tv", Endpoint: ep, Scopes: []string{"openid", "profile", "email"}}
}

var userCodeRE = regexp.MustCompile(`^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$`)

// approveDevice signs the browser in (if needed) at the verification URI,
// enters code, and answers decision ("allow" or "deny") on the
// confirmation page. It returns the final page.
func (e *env) approveDevice(b *servertest.Browser, verifyURL, code, decision string, signIn bool) *servertest.Page {
	e.t.Helper()
	var p *servertest.Page
	if signIn {
		p = b.SignInDev(verifyURL, "alice")
	} else {
		p = b.Get(verifyURL)
	}
	action, form := p.Form(e.t, "/oauth2/device")
	form.Set("user_code", code)
	p = b.PostForm(action, form)
	if p.Status != http.StatusOK || !strings.Contains(p.Body, "Allow Living Room TV") && !strings.Contains(p.Body, "Allow tvs") {
		e.t.Fatalf("device confirmation page: %d\n%s", p.Status, p.Body)
	}
	action, form = p.Form(e.t, "/oauth2/device")
	form.Set("decision", decision)
	return b.PostForm(action, form)
}

// pollDevice makes one token request for a device code.
func (e *env) pollDevice(client, deviceCode string) (int, map[string]any) {
	e.t.Helper()
	status, _, m := e.post("/oauth2/token", url.Values{"grant_type": {deviceGrant}, "device_code": {deviceCode}, "client_id": {client}}, "", "")
	return status, m
}

// TestDeviceFlow (RFC 8628) with golang.org/x/oauth2's device flow: the
// device gets its codes, the user signs in and allows it on Aero2's page,
// the device's polling gets tokens; polling too fast is slow_down, a
// denial is access_denied, a second redemption is invalid_grant and
// revokes the first's tokens, and guessing user codes runs into the
// limit.
func TestDeviceFlow(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		e := start(t, deviceConfig(), st)
		var md map[string]any
		e.getJSON("/.well-known/openid-configuration", &md)
		if md["device_authorization_endpoint"] != e.in.URL+"/oauth2/device_authorization" {
			t.Fatalf("discovery: device_authorization_endpoint %v", md["device_authorization_endpoint"])
		}
		cfg := e.tv()
		da, err := cfg.DeviceAuth(e.ctx)
		if err != nil {
			t.Fatalf("device authorization: %v", err)
		}
		if !userCodeRE.MatchString(da.UserCode) || da.VerificationURI != e.in.URL+"/oauth2/device" ||
			!strings.HasPrefix(da.VerificationURIComplete, da.VerificationURI+"?user_code=") || da.Interval != 1 || time.Until(da.Expiry) < 9*time.Minute {
			t.Fatalf("device authorization response: %+v", da)
		}
		// Polling before the user answered: pending, and faster than the
		// interval, slow_down.
		if _, m := e.pollDevice("tv", da.DeviceCode); m["error"] != "authorization_pending" {
			t.Fatalf("first poll: %v", m)
		}
		if _, m := e.pollDevice("tv", da.DeviceCode); m["error"] != "slow_down" {
			t.Fatalf("poll right after another: %v, want slow_down", m)
		}
		// Another client cannot redeem the code.
		status, _, m := e.post("/oauth2/token", url.Values{"grant_type": {deviceGrant}, "device_code": {da.DeviceCode}}, "tvs", serviceSecret)
		if status != 400 || m["error"] != "invalid_grant" {
			t.Fatalf("device code of another client: %d %v", status, m)
		}

		b := e.browser()
		if p := e.approveDevice(b, da.VerificationURIComplete, da.UserCode, "allow", true); !strings.Contains(p.Body, "Device connected") {
			t.Fatalf("after allowing: %d\n%s", p.Status, p.Body)
		}
		tok, err := cfg.DeviceAccessToken(e.ctx, da)
		if err != nil {
			t.Fatalf("device access token: %v", err)
		}
		idt, err := e.provider.Verifier(oidcConfig("tv")).Verify(e.ctx, tok.Extra("id_token").(string))
		if err != nil {
			t.Fatalf("ID token: %v", err)
		}
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			t.Fatalf("at_hash: %v", err)
		}
		if status, _, ui := e.userinfo(tok.AccessToken); status != 200 || ui["sub"] != idt.Subject || ui["email"] != "alice@example.com" {
			t.Fatalf("userinfo: %d %v", status, ui)
		}
		if tok.RefreshToken == "" {
			t.Fatal("no refresh token for a client with the refresh_token grant")
		}
		rt, err := refresh(e, cfg, tok.RefreshToken)
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}

		// The user code is spent; the device code too: shown again, it
		// revokes what it issued.
		time.Sleep(1100 * time.Millisecond)
		if status, m := e.pollDevice("tv", da.DeviceCode); status != 400 || m["error"] != "invalid_grant" {
			t.Fatalf("second redemption: %d %v", status, m)
		}
		if in := e.introspect(rt.AccessToken); in["active"] != false {
			t.Fatal("tokens of a twice-redeemed device code are still active")
		}

		// Denied.
		da, err = cfg.DeviceAuth(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if p := e.approveDevice(b, da.VerificationURI, da.UserCode, "deny", false); !strings.Contains(p.Body, "Device refused") {
			t.Fatalf("after denying:\n%s", p.Body)
		}
		if _, err := cfg.DeviceAccessToken(e.ctx, da); err == nil || oauthError(t, err) != "access_denied" {
			t.Fatalf("denied device: %v", err)
		}

		// Signing out revokes the device's tokens: they were filed under
		// the browser session the user allowed them in.
		da, _ = cfg.DeviceAuth(e.ctx)
		e.approveDevice(b, da.VerificationURI, strings.ToLower(strings.ReplaceAll(da.UserCode, "-", " ")), "allow", false)
		tok, err = cfg.DeviceAccessToken(e.ctx, da)
		if err != nil {
			t.Fatalf("device token (code typed in lower case with a space): %v", err)
		}
		p := b.Get(e.in.URL + "/oauth2/logout")
		action, form := p.Form(t, "/oauth2/logout")
		b.PostForm(action, form)
		if in := e.introspect(tok.AccessToken); in["active"] != false {
			t.Fatal("device token survived the user's sign-out")
		}

		// A client without the grant; a scope the client may not have.
		if status, _, m := e.post("/oauth2/device_authorization", url.Values{"scope": {"openid"}}, "web", webSecret); status != 400 || m["error"] != "unauthorized_client" {
			t.Fatalf("device authorization by a client without the grant: %d %v", status, m)
		}
		if status, _, m := e.post("/oauth2/device_authorization", url.Values{"client_id": {"tv"}, "scope": {"openid groups"}}, "", ""); status != 400 || m["error"] != "invalid_scope" {
			t.Fatalf("device authorization with a scope not allowed: %d %v", status, m)
		}
	})
}

// TestDeviceUserCodeGuessing: wrong user codes are counted per address;
// past the limit even the right code is not looked up. A form without
// its CSRF token is refused.
func TestDeviceUserCodeGuessing(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		e := start(t, deviceConfig(), st)
		da, err := e.tv().DeviceAuth(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		b := e.browser()
		p := b.SignInDev(da.VerificationURI, "alice")
		action, form := p.Form(t, "/oauth2/device")
		if p := b.PostForm(action, url.Values{"user_code": {da.UserCode}}); p.Status != http.StatusForbidden {
			t.Fatalf("code form without CSRF token: %d", p.Status)
		}
		for i, guess := range []string{"BBBB-BBBB", "CCCC-CCCC", "not a code"} {
			form.Set("user_code", guess)
			if p := b.PostForm(action, form); p.Status != http.StatusBadRequest || !strings.Contains(p.Body, "not valid") {
				t.Fatalf("wrong code %d: %d\n%s", i, p.Status, p.Body)
			}
		}
		form.Set("user_code", da.UserCode)
		if p := b.PostForm(action, form); p.Status != http.StatusTooManyRequests {
			t.Fatalf("the right code after the failures are spent: %d, want 429\n%s", p.Status, p.Body)
		}
	})
}

// TestDeviceCodeExpiry: past its lifetime a device code is expired_token
// and its user code is no longer recognised.
func TestDeviceCodeExpiry(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	in := servertest.StartWith(t, deviceConfig(), servertest.Options{Store: memory.New(memory.WithClock(clock)), Server: server.Options{Now: clock}})
	e := &env{t: t, in: in, ctx: context.Background()}
	p, err := oidcProvider(e)
	if err != nil {
		t.Fatal(err)
	}
	e.provider = p
	da, err := e.tv().DeviceAuth(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	page := b.SignInDev(da.VerificationURI, "alice")
	mu.Lock()
	now = now.Add(11 * time.Minute)
	mu.Unlock()
	if _, m := e.pollDevice("tv", da.DeviceCode); m["error"] != "expired_token" {
		t.Fatalf("poll after expiry: %v", m)
	}
	action, form := page.Form(t, "/oauth2/device")
	form.Set("user_code", da.UserCode)
	if p := b.PostForm(action, form); p.Status != http.StatusBadRequest {
		t.Fatalf("expired user code: %d\n%s", p.Status, p.Body)
	}
}

// TestOpenIDClientDeviceFlow: openid-client's device flow
// (initiateDeviceAuthorization, pollDeviceAuthorizationGrant) as a public
// and as a confidential client, through to userinfo and refresh.
func TestOpenIDClientDeviceFlow(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		e := start(t, deviceConfig(), st)
		b := e.browser()
		for i, c := range []nodeClient{{ID: "tv", Auth: "none"}, {ID: "tvs", Auth: "client_secret_basic", Secret: serviceSecret}} {
			run := servertest.Node(t, nodeCmd(e, c, "device", map[string]any{"scope": "openid", "userinfo": true, "refresh": c.ID == "tv"}))
			da := nodeOK(t, "device authorization", run.Next())["device"].(map[string]any)
			e.approveDevice(b, da["verification_uri_complete"].(string), da["user_code"].(string), "allow", i == 0)
			m := nodeOK(t, "device polling", run.Next())
			if sub := m["claims"].(map[string]any)["sub"]; sub == nil || m["userinfo"].(map[string]any)["sub"] != sub {
				t.Fatalf("%s: %v", c.ID, m)
			}
		}
	})
}

// markerReads counts the reads of a device code's used marker made on
// their own (Get), not with the code's other records (GetMany).
type markerReads struct {
	*stall
	alone atomic.Int32
}

func (m *markerReads) Get(ctx context.Context, app, key string) ([]byte, error) {
	if strings.HasPrefix(key, "oauth:device-used:") {
		m.alone.Add(1)
	}
	return m.stall.Get(ctx, app, key)
}

// TestDeviceReplayRefusedAtTheRead: a device code shown again after its
// redemption is refused by what the token endpoint reads with the code
// (its used marker, in the same round trip as the code and the user's
// decision), before it signs tokens or reaches the commit; the commit's
// create-if-absent guard is there for two redemptions at once, not as
// the check. Neither redemption reads the marker in a round trip of its
// own.
func TestDeviceReplayRefusedAtTheRead(t *testing.T) {
	stallStores(t, func(t *testing.T, st *stall) {
		m := &markerReads{stall: st}
		e := start(t, deviceConfig(), m)
		cfg := e.tv()
		da, err := cfg.DeviceAuth(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if p := e.approveDevice(e.browser(), da.VerificationURIComplete, da.UserCode, "allow", true); !strings.Contains(p.Body, "Device connected") {
			t.Fatalf("after allowing: %d\n%s", p.Status, p.Body)
		}
		if _, err := cfg.DeviceAccessToken(e.ctx, da); err != nil {
			t.Fatalf("device access token: %v", err)
		}
		time.Sleep(1100 * time.Millisecond) // the poll interval, as a device keeps it

		p := st.at(t, commit)
		type answer struct {
			status int
			body   map[string]any
		}
		done := make(chan answer, 1)
		go func() {
			status, _, body := e.post("/oauth2/token", url.Values{"grant_type": {deviceGrant}, "device_code": {da.DeviceCode}, "client_id": {"tv"}}, "", "")
			done <- answer{status, body}
		}()
		select {
		case <-p.reached:
			p.resume()
			<-done
			t.Fatal("a redeemed device code shown again reached the commit: the read did not refuse it")
		case a := <-done:
			if a.status != http.StatusBadRequest || a.body["error"] != "invalid_grant" {
				t.Fatalf("second redemption: %d %v", a.status, a.body)
			}
		}
		if n := m.alone.Load(); n != 0 {
			t.Errorf("the used marker was read on its own %d times", n)
		}
	})
}

// TestDeviceConcurrentRedemptions: two redemptions of one device code at
// once, the first held at its commit after it read the code unused, the
// second let through to its own commit. The used marker read with the
// code cannot tell them apart (both read it absent); the commit's guard
// does: the held one is refused with invalid_grant, and since a code used
// twice means stolen, the grant dies and the other's tokens with it.
func TestDeviceConcurrentRedemptions(t *testing.T) {
	stallStores(t, func(t *testing.T, st *stall) {
		e := start(t, deviceConfig(), st)
		cfg := e.tv()
		da, err := cfg.DeviceAuth(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if p := e.approveDevice(e.browser(), da.VerificationURIComplete, da.UserCode, "allow", true); !strings.Contains(p.Body, "Device connected") {
			t.Fatalf("after allowing: %d\n%s", p.Status, p.Body)
		}
		form := url.Values{"grant_type": {deviceGrant}, "device_code": {da.DeviceCode}, "client_id": {"tv"}}
		p := st.at(t, commit)
		type answer struct {
			status int
			body   map[string]any
		}
		first := make(chan answer, 1)
		go func() {
			status, _, body := e.post("/oauth2/token", form, "", "")
			first <- answer{status, body}
		}()
		select {
		case <-p.reached:
		case a := <-first:
			t.Fatalf("a redemption answered %d (error %v) without reaching a commit with its guard", a.status, a.body["error"])
		}
		status, _, second := e.post("/oauth2/token", form, "", "")
		if status != http.StatusOK || second["access_token"] == nil {
			t.Fatalf("the redemption that was not held: %d %v", status, second)
		}
		p.resume()
		if a := <-first; a.status != http.StatusBadRequest || a.body["error"] != "invalid_grant" {
			t.Fatalf("the held redemption, after the other committed: %d %v", a.status, a.body)
		}
		if in := e.introspect(second["access_token"].(string)); in["active"] != false {
			t.Fatal("tokens of a device code redeemed twice at once are still active")
		}
	})
}
