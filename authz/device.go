package authz

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"

	"github.com/aero2/aero2/authz/oauthstore"
	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/ratelimit"
	"github.com/aero2/aero2/session"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/web"
)

// The device authorization grant (RFC 8628): a device without a browser
// (a TV, a CLI) asks for a device code and a user code, shows the user
// code, and polls the token endpoint; the user signs in to Aero2 on any
// browser as usual, enters the code at deviceVerifyPath and confirms.
const (
	devicePath       = "/oauth2/device_authorization"
	deviceVerifyPath = "/oauth2/device"
	// userCodeAlphabet has no vowels (no words spelled by chance) and
	// none of the letters misread for digits or each other (RFC 8628
	// §6.1); case does not matter, nor dashes and spaces.
	userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"
	// userCodeLength: 20^8 ≈ 2^34.6 codes, which the user_code_failures
	// limit makes unguessable (RFC 8628 §5.1).
	userCodeLength = 8
	// deviceGrace keeps a device record past its expiry, so that a late
	// poll is told expired_token rather than invalid_grant.
	deviceGrace = 5 * time.Minute
	// maxScopeBytes bounds the scope a device may ask for, as at
	// authorize.
	maxScopeBytes = 1024
)

// deviceRecord is a device authorization request, written once.
type deviceRecord struct {
	GrantID   string        `json:"grant"`
	ClientID  string        `json:"client_id"`
	Scopes    []string      `json:"scopes,omitempty"`
	UserCode  string        `json:"user_code"`
	Requested time.Time     `json:"rat"`
	Expires   time.Time     `json:"exp"`
	Interval  time.Duration `json:"interval"`
}

// deviceDecision is the user's answer, written once (Create): of two
// answers to one request, the first stands.
type deviceDecision struct {
	Allowed  bool      `json:"allowed"`
	UserID   string    `json:"uid,omitempty"`
	SID      string    `json:"sid,omitempty"`
	AuthTime time.Time `json:"auth_time,omitzero"`
}

// The device code is a 256-bit secret; the store and the pages know it
// only by its SHA-256.
func deviceHash(code string) string {
	sum := sha256.Sum256([]byte(code))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func deviceKey(h string) string         { return "authz:device:" + h }
func deviceDecisionKey(h string) string { return "authz:device-done:" + h }
func devicePollKey(h string) string     { return "authz:device-poll:" + h }
func userCodeKey(code string) string    { return "authz:user-code:" + code }

// newUserCode draws a user code, uniformly from the alphabet (rejection
// sampling: no letter is likelier than another).
func newUserCode() string {
	var out [userCodeLength]byte
	b := make([]byte, 1)
	for i := 0; i < userCodeLength; {
		rand.Read(b)
		if int(b[0]) >= 256-256%len(userCodeAlphabet) {
			continue
		}
		out[i] = userCodeAlphabet[int(b[0])%len(userCodeAlphabet)]
		i++
	}
	return string(out[:])
}

// normalizeUserCode reads what a user typed: case, dashes and spaces do
// not matter; anything else, or the wrong length, is no code.
func normalizeUserCode(in string) (string, bool) {
	if len(in) > 32 {
		return "", false
	}
	var b strings.Builder
	for _, r := range strings.ToUpper(in) {
		switch {
		case r == '-' || r == ' ':
		case strings.ContainsRune(userCodeAlphabet, r):
			b.WriteRune(r)
		default:
			return "", false
		}
	}
	return b.String(), b.Len() == userCodeLength
}

// formatUserCode is how a code is shown: BCDF-GHJK.
func formatUserCode(code string) string {
	if len(code) != userCodeLength {
		return code
	}
	return code[:4] + "-" + code[4:]
}

// deviceAuthorization is the device authorization endpoint (RFC 8628
// §3.1, §3.2). The client authenticates as at the token endpoint (a
// public client by client_id) and must be allowed the device code grant.
func (p *Provider) deviceAuthorization(w http.ResponseWriter, r *http.Request) {
	ctx := withClientAuth(r.Context())
	c, err := p.oauth.AuthenticateClient(ctx, r, r.PostForm)
	if err != nil {
		p.clientAuthError(w, r, err)
		return
	}
	client := c.(*Client)
	if !client.GetGrantTypes().Has(config.GrantDeviceCode) {
		writeJSONError(w, http.StatusBadRequest, "unauthorized_client", "The client is not allowed the device code grant.")
		return
	}
	if !p.limitClient(w, r, ratelimit.DeviceAuthorization, client.GetID()) {
		return
	}
	scope := r.PostForm.Get("scope")
	if len(scope) > maxScopeBytes {
		writeJSONError(w, http.StatusBadRequest, "invalid_request", "The scope is too long.")
		return
	}
	scopes := fosite.RemoveEmpty(strings.Split(scope, " "))
	for _, s := range scopes {
		if !fosite.ExactScopeStrategy(client.GetScopes(), s) {
			writeJSONError(w, http.StatusBadRequest, "invalid_scope", fmt.Sprintf("The client may not ask for scope %q.", s))
			return
		}
	}
	if err := client.sector.verify(ctx); err != nil {
		p.log.Warn("pairwise client's sector_identifier_uri refused", "client", client.GetID(), "err", err)
		writeJSONError(w, http.StatusBadRequest, "unauthorized_client", "The client's sector_identifier_uri could not be fetched or does not list its redirect URIs.")
		return
	}
	// A public client's request is anyone's: counted as anonymous state.
	if d := p.opts.Limits.Allow(ctx, p.app, ratelimit.AnonymousState, ratelimit.Address(r)); !d.Allowed {
		ratelimit.WriteJSON(w, d)
		return
	}
	cfg := p.opts.Config.DeviceAuthorization
	now := p.opts.Now()
	deviceCode := randomHandle()
	h := deviceHash(deviceCode)
	rec := deviceRecord{
		GrantID: randomID(), ClientID: client.GetID(), Scopes: scopes,
		Requested: now.UTC(), Expires: now.Add(cfg.Lifetime).UTC(), Interval: cfg.PollInterval,
	}
	// A user code names one live request: Create, and a fresh code on
	// the (rare) collision.
	for range 3 {
		rec.UserCode = newUserCode()
		err = p.st.Create(ctx, userCodeKey(rec.UserCode), []byte(h), cfg.Lifetime)
		if !errors.Is(err, store.ErrExists) {
			break
		}
	}
	if err == nil {
		data, _ := json.Marshal(rec)
		err = p.st.Put(ctx, deviceKey(h), data, cfg.Lifetime+deviceGrace)
	}
	if err != nil {
		if isUnavailable(err) {
			p.unavailable(w, r, err)
			return
		}
		p.log.Error("device authorization", "err", err)
		writeJSONError(w, http.StatusInternalServerError, "server_error", "")
		return
	}
	verify := p.url(deviceVerifyPath)
	writeJSON(w, map[string]any{
		"device_code":               deviceCode,
		"user_code":                 formatUserCode(rec.UserCode),
		"verification_uri":          verify,
		"verification_uri_complete": verify + "?" + url.Values{"user_code": {rec.UserCode}}.Encode(),
		"expires_in":                int(cfg.Lifetime.Seconds()),
		"interval":                  int(cfg.PollInterval.Seconds()),
	})
}

func (p *Provider) loadDevice(ctx context.Context, h string) (*deviceRecord, error) {
	if len(h) != 43 {
		return nil, store.ErrNotFound
	}
	data, err := p.st.Get(ctx, deviceKey(h))
	if err != nil {
		return nil, err
	}
	var rec deviceRecord
	if err := json.Unmarshal(data, &rec); err != nil || !p.opts.Now().Before(rec.Expires) {
		return nil, store.ErrNotFound
	}
	return &rec, nil
}

const deviceCSRFPurpose = "device"

func deviceConfirmPurpose(h string) string { return "device confirm " + h }

type devicePageData struct {
	Step    string // enter, confirm, allowed, denied
	User    *store.User
	Client  string
	Code    string
	Problem string
	Scopes  []scopeLine
	Action  string
	Device  string
	CSRF    string
}

// devicePage is the user's side (RFC 8628 §3.3): on Aero2's own sign-in
// (a user without a session signs in with the identity providers first),
// the user enters the code, sees which client asks for what, and allows
// or denies. Every form is CSRF-protected (bound to the browser session,
// and the confirmation to the one device request) and behind
// CrossOriginProtection; the page has Aero2's strict CSP.
func (p *Provider) devicePage(w http.ResponseWriter, r *http.Request) {
	var code string
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		if err := r.ParseForm(); err != nil {
			p.page(w, http.StatusBadRequest, "Bad request", "The form could not be read.", "invalid_request")
			return
		}
	} else if len(r.URL.RawQuery) > maxQueryBytes {
		p.page(w, http.StatusBadRequest, "Bad request", "The request could not be read.", "invalid_request")
		return
	} else if c, ok := normalizeUserCode(r.URL.Query().Get("user_code")); ok {
		code = c // verification_uri_complete
	}
	sess, user, err := p.opts.Sessions.CurrentUser(r)
	if errors.Is(err, session.ErrNoSession) {
		if r.Method == http.MethodPost {
			p.page(w, http.StatusBadRequest, "Signed out", "You are no longer signed in. Open the page again and sign in.", "login_required")
			return
		}
		back := p.url(deviceVerifyPath)
		if code != "" {
			back += "?" + url.Values{"user_code": {code}}.Encode()
		}
		http.Redirect(w, r, p.opts.LoginURL(back), http.StatusSeeOther)
		return
	}
	if err != nil {
		p.pageFailure(w, r, err)
		return
	}
	d := devicePageData{Step: "enter", User: user, Code: formatUserCode(code), Action: p.url(deviceVerifyPath), CSRF: p.opts.Sessions.CSRFToken(sess, deviceCSRFPurpose)}
	switch {
	case r.Method != http.MethodPost:
		web.Render(w, http.StatusOK, "device", web.Page{Title: "Connect a device", AppName: p.opts.DisplayName, Data: d})
	case r.PostForm.Has("device"):
		p.deviceDecide(w, r, sess, user, d)
	default:
		p.deviceLookup(w, r, sess, user, d)
	}
}

// deviceLookup finds the request a user code names. Wrong codes are
// counted per address and per user (user_code_failures); once those are
// spent, no code is looked up at all.
func (p *Provider) deviceLookup(w http.ResponseWriter, r *http.Request, sess *store.Session, user *store.User, d devicePageData) {
	ctx := r.Context()
	if !p.opts.Sessions.VerifyCSRF(sess, deviceCSRFPurpose, r.PostForm.Get("csrf")) {
		p.page(w, http.StatusForbidden, "Request refused", "The form was not sent by this page. Open the page again.", "invalid_request")
		return
	}
	failures := []ratelimit.Key{ratelimit.Address(r), ratelimit.Account(user.ID)}
	if dec := p.opts.Limits.Check(ctx, p.app, ratelimit.Peek(ratelimit.UserCodeFailures, failures...)); !dec.Allowed {
		ratelimit.WritePage(w, p.opts.DisplayName, dec)
		return
	}
	wrong := func() {
		p.opts.Limits.Allow(context.WithoutCancel(ctx), p.app, ratelimit.UserCodeFailures, failures...)
		d.Problem = "That code is not valid, or has expired. Check the code on your device."
		web.Render(w, http.StatusBadRequest, "device", web.Page{Title: "Connect a device", AppName: p.opts.DisplayName, Data: d})
	}
	code, ok := normalizeUserCode(r.PostForm.Get("user_code"))
	d.Code = formatUserCode(code)
	if !ok {
		wrong()
		return
	}
	hv, err := p.st.Get(ctx, userCodeKey(code))
	var rec *deviceRecord
	if err == nil {
		rec, err = p.loadDevice(ctx, string(hv))
	}
	var client *Client
	if err == nil {
		if client = p.clients.get(rec.ClientID); client == nil {
			err = store.ErrNotFound
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		wrong()
		return
	}
	if err != nil {
		p.pageFailure(w, r, err)
		return
	}
	d.Scopes = scopeLines(rec.Scopes)
	d.Step, d.Client, d.Device = "confirm", client.Name, string(hv)
	d.CSRF = p.opts.Sessions.CSRFToken(sess, deviceConfirmPurpose(string(hv)))
	web.Render(w, http.StatusOK, "device", web.Page{Title: "Allow the device?", AppName: p.opts.DisplayName, Data: d})
}

// deviceDecide records the user's answer for the device request, once.
func (p *Provider) deviceDecide(w http.ResponseWriter, r *http.Request, sess *store.Session, user *store.User, d devicePageData) {
	ctx := r.Context()
	h := r.PostForm.Get("device")
	if !p.opts.Sessions.VerifyCSRF(sess, deviceConfirmPurpose(h), r.PostForm.Get("csrf")) {
		p.page(w, http.StatusForbidden, "Request refused", "The form was not sent by this page. Open the page again.", "invalid_request")
		return
	}
	rec, err := p.loadDevice(ctx, h)
	if errors.Is(err, store.ErrNotFound) {
		p.page(w, http.StatusBadRequest, "Code expired", "This code has expired. Start again on your device.", "expired_token")
		return
	}
	if err != nil {
		p.pageFailure(w, r, err)
		return
	}
	dec := deviceDecision{Allowed: r.PostForm.Get("decision") == "allow"}
	if dec.Allowed {
		dec.UserID, dec.SID, dec.AuthTime = user.ID, sess.ID, sess.AuthTime.UTC()
	}
	data, _ := json.Marshal(dec)
	err = p.st.Create(ctx, deviceDecisionKey(h), data, rec.Expires.Sub(p.opts.Now())+deviceGrace)
	if errors.Is(err, store.ErrExists) {
		p.page(w, http.StatusBadRequest, "Already answered", "This device request was already allowed or denied.", "invalid_request")
		return
	}
	if err == nil {
		// The code has done its work: it cannot be entered again.
		err = p.st.Delete(ctx, userCodeKey(rec.UserCode))
	}
	if err != nil {
		p.pageFailure(w, r, err)
		return
	}
	d.Step, d.CSRF = "denied", ""
	if dec.Allowed {
		d.Step = "allowed"
	}
	if c := p.clients.get(rec.ClientID); c != nil {
		d.Client = c.Name
	}
	web.Render(w, http.StatusOK, "device", web.Page{Title: "Device", AppName: p.opts.DisplayName, Data: d})
}

// The device grant's errors at the token endpoint (RFC 8628 §3.5).
var (
	errAuthorizationPending = &fosite.RFC6749Error{ErrorField: "authorization_pending", DescriptionField: "The user has not yet allowed or denied the request.", CodeField: http.StatusBadRequest}
	errSlowDown             = &fosite.RFC6749Error{ErrorField: "slow_down", DescriptionField: "Polling too fast: wait 5 seconds more between requests.", CodeField: http.StatusBadRequest}
	errExpiredToken         = &fosite.RFC6749Error{ErrorField: "expired_token", DescriptionField: "The device code has expired: start again.", CodeField: http.StatusBadRequest}
	errDeviceDenied         = &fosite.RFC6749Error{ErrorField: "access_denied", DescriptionField: "The user denied the request.", CodeField: http.StatusBadRequest}
)

// deviceGrant is the token endpoint's device code grant (RFC 8628 §3.4),
// as a fosite handler: fosite authenticates the client, and the tokens
// are issued by the same strategies and storage as the code flow's, so
// refresh, introspection, revocation and logout treat them alike.
type deviceGrant struct {
	p        *Provider
	tokens   *oauth2.HandleHelper
	refresh  oauth2.RefreshTokenStrategy
	idTokens *openid.IDTokenHandleHelper
}

var _ fosite.TokenEndpointHandler = (*deviceGrant)(nil)

func (g *deviceGrant) CanHandleTokenEndpointRequest(_ context.Context, ar fosite.AccessRequester) bool {
	return ar.GetGrantTypes().ExactOne(config.GrantDeviceCode)
}

func (g *deviceGrant) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool { return false }

func (g *deviceGrant) HandleTokenEndpointRequest(ctx context.Context, ar fosite.AccessRequester) error {
	if !g.CanHandleTokenEndpointRequest(ctx, ar) {
		return fosite.ErrUnknownRequest
	}
	p := g.p
	client := ar.GetClient().(*Client)
	if !client.GetGrantTypes().Has(config.GrantDeviceCode) {
		return fosite.ErrUnauthorizedClient.WithHint("The client is not allowed the device code grant.")
	}
	code := ar.GetRequestForm().Get("device_code")
	if code == "" || len(code) > 128 {
		return fosite.ErrInvalidRequest.WithHint("device_code is missing.")
	}
	h := deviceHash(code)
	// The code, the user's decision and whether it was redeemed before,
	// in one round trip.
	vals, err := p.st.GetMany(ctx, deviceKey(h), deviceDecisionKey(h), oauthstore.DeviceUsedKey(h))
	if err != nil {
		return err
	}
	var rec deviceRecord
	if vals[0] == nil || json.Unmarshal(vals[0], &rec) != nil || rec.ClientID != client.GetID() {
		return fosite.ErrInvalidGrant.WithHint("Unknown device_code.")
	}
	ar.SetID(rec.GrantID)
	now := p.opts.Now()
	if !now.Before(rec.Expires) {
		return errExpiredToken
	}
	if vals[1] == nil {
		// Pending. Polls come at most once per interval (§3.5); a faster
		// one is slow_down, and spends nothing from the next.
		res, err := p.st.RateLimit(ctx, store.RateBucket{Key: devicePollKey(h), Rate: store.Rate{Requests: 1, Period: rec.Interval, Burst: 1}, N: 1})
		if err != nil {
			return err
		}
		if !res.Allowed {
			return errSlowDown
		}
		return errAuthorizationPending
	}
	var dec deviceDecision
	if err := json.Unmarshal(vals[1], &dec); err != nil {
		return fmt.Errorf("authz: corrupt device decision: %w", err)
	}
	if !dec.Allowed {
		return errDeviceDenied
	}
	if vals[2] != nil {
		// Redeemed before: used twice means stolen, as for a code; the
		// token endpoint revokes the grant.
		return fmt.Errorf("%w: %w", oauthstore.ErrConcurrentUse, oauthstore.ErrDeviceCodeUsed)
	}
	user, err := p.st.GetUser(ctx, dec.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return fosite.ErrInvalidGrant.WithHint("The user no longer exists.")
	}
	if err != nil {
		return err
	}
	ar.SetRequestedScopes(rec.Scopes)
	for _, s := range rec.Scopes {
		ar.GrantScope(s)
	}
	sess := p.userSession(client, &store.Session{ID: dec.SID, AuthTime: dec.AuthTime}, user, ar.GetGrantedScopes(), rec.Requested)
	gt := fosite.GrantType(config.GrantDeviceCode)
	sess.SetExpiresAt(fosite.AccessToken, now.UTC().Add(fosite.GetEffectiveLifespan(client, gt, fosite.AccessToken, p.fcfg.AccessTokenLifespan)))
	if client.GetGrantTypes().Has("refresh_token") {
		sess.SetExpiresAt(fosite.RefreshToken, now.UTC().Add(fosite.GetEffectiveLifespan(client, gt, fosite.RefreshToken, p.fcfg.RefreshTokenLifespan)))
	}
	ar.SetSession(sess)
	// Single use, decided at the commit; and filed under the browser
	// session the user allowed it in, so that signing out revokes it.
	if err := p.tokens.RedeemDeviceCode(ctx, h, rec.Expires.Sub(p.opts.Now())+deviceGrace); err != nil {
		return err
	}
	return p.tokens.IndexGrant(ctx, dec.SID, dec.UserID, client.GetID(), rec.GrantID)
}

func (g *deviceGrant) PopulateTokenEndpointResponse(ctx context.Context, ar fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !g.CanHandleTokenEndpointRequest(ctx, ar) {
		return fosite.ErrUnknownRequest
	}
	client := ar.GetClient().(*Client)
	gt := fosite.GrantType(config.GrantDeviceCode)
	accessSig, err := g.tokens.IssueAccessToken(ctx, fosite.GetEffectiveLifespan(client, gt, fosite.AccessToken, g.p.fcfg.AccessTokenLifespan), ar, resp)
	if err != nil {
		return err
	}
	if client.GetGrantTypes().Has("refresh_token") {
		rt, sig, err := g.refresh.GenerateRefreshToken(ctx, ar)
		if err != nil {
			return err
		}
		if err := g.p.tokens.CreateRefreshTokenSession(ctx, sig, accessSig, ar.Sanitize([]string{})); err != nil {
			return err
		}
		resp.SetExtra("refresh_token", rt)
	}
	if ar.GetGrantedScopes().Has("openid") {
		sess := ar.GetSession().(*oauthstore.Session)
		sess.IDTokenHeaders().Add("alg", g.p.signer.HashHint(ctx))
		sess.Claims.AccessTokenHash = g.idTokens.GetAccessTokenHash(ctx, ar, resp)
		return g.idTokens.IssueExplicitIDToken(ctx, fosite.GetEffectiveLifespan(client, gt, fosite.IDToken, g.p.fcfg.IDTokenLifespan), ar, resp)
	}
	return nil
}
