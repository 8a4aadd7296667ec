package authz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/aero2/aero2/authz/oauthstore"
	"github.com/aero2/aero2/ratelimit"
	"github.com/aero2/aero2/reqlog"
	"github.com/aero2/aero2/session"
	"github.com/aero2/aero2/store"
)

const (
	// pendingTTL is how long a sign-in or consent may take before the
	// client must start the authorization request again.
	pendingTTL = 15 * time.Minute
	// maxQueryBytes bounds an authorization request's query string.
	maxQueryBytes = 8 << 10
)

// pkceChallengeRE is an S256 challenge: base64url of 32 bytes (RFC 7636
// §4.2).
var pkceChallengeRE = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// pending is an authorization request parked while the user signs in or
// decides on consent. The browser comes back with only its handle
// (?resume=…), so every parameter survives the detour intact and none has
// to fit through the login page's return_to.
type pending struct {
	Params url.Values `json:"params"`
	// Started is when the client's request arrived: a sign-in after it is
	// "fresh" for prompt=login and max_age.
	Started time.Time `json:"started"`
}

func pendingKey(id string) string { return "authz:pending:" + id }

// authorize is the authorization endpoint (RFC 6749 §3.1, OIDC Core
// §3.1.2), GET or POST.
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	var params url.Values
	var err error
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		if err = r.ParseForm(); err == nil {
			params = r.PostForm
		}
	} else if len(r.URL.RawQuery) > maxQueryBytes {
		err = errors.New("query too long")
	} else {
		params, err = url.ParseQuery(r.URL.RawQuery)
	}
	if err != nil {
		p.page(w, http.StatusBadRequest, "Authorization request refused", "The request could not be read.", "invalid_request")
		return
	}
	started, resumeID := p.opts.Now(), ""
	if id := params.Get("resume"); id != "" && len(params) == 1 {
		pr, err := p.loadPending(r.Context(), id)
		if errors.Is(err, store.ErrNotFound) {
			p.page(w, http.StatusBadRequest, "Sign-in expired", "This sign-in took too long or was already completed. Go back to the application and start again.", "invalid_request")
			return
		}
		if err != nil {
			p.pageFailure(w, r, err)
			return
		}
		params, started, resumeID = pr.Params, pr.Started, id
	} else if params, err = knownParams(params); err != nil {
		p.page(w, http.StatusBadRequest, "Authorization request refused", "The request could not be read: "+err.Error()+".", "invalid_request")
		return
	}
	viaPAR := false
	if resumeID == "" && strings.HasPrefix(params.Get("request_uri"), requestURIPrefix) {
		// A pushed request (RFC 9126 §4): its parameters are the pushed
		// ones, whatever else the browser brings.
		pp, err := p.takePushed(r.Context(), params.Get("client_id"), params.Get("request_uri"))
		if errors.Is(err, errRequestURI) {
			p.page(w, http.StatusBadRequest, "Sign-in expired", "This sign-in link has expired or was already used. Go back to the application and start again.", "invalid_request_uri")
			return
		}
		if err != nil {
			p.pageFailure(w, r, err)
			return
		}
		params, viaPAR = pp, true
	}
	p.handleAuthorize(w, r, params, started, resumeID, viaPAR)
}

func (p *Provider) handleAuthorize(w http.ResponseWriter, r *http.Request, params url.Values, started time.Time, resumeID string, viaPAR bool) {
	ctx := r.Context()
	ar, err := p.parseAuthorize(r, params)
	if err != nil {
		p.authorizeError(w, r, ar, err)
		return
	}
	reqlog.SetClient(ctx, ar.GetClient().GetID())
	if err := ar.GetClient().(*Client).sector.verify(ctx); err != nil {
		// OIDC Core §8.1: a sector that does not vouch for the client's
		// redirect URIs could be another's, whose users' subjects the
		// client would then share.
		p.log.Warn("pairwise client's sector_identifier_uri refused", "client", ar.GetClient().GetID(), "err", err)
		p.authorizeError(w, r, ar, fosite.ErrUnauthorizedClient.WithHint("The client's sector_identifier_uri could not be fetched or does not list its redirect URIs."))
		return
	}
	if resumeID == "" && !viaPAR && ar.GetClient().(*Client).requirePAR {
		// RFC 9126 §6 (require_pushed_authorization_requests): checked
		// once, where the request comes in; a resumed request came in
		// through PAR.
		p.authorizeError(w, r, ar, fosite.ErrInvalidRequest.WithHint("This client must push its authorization requests to the PAR endpoint (RFC 9126)."))
		return
	}
	sess, user, err := p.opts.Sessions.CurrentUser(r)
	if err != nil && !errors.Is(err, session.ErrNoSession) {
		p.pageFailure(w, r, err)
		return
	}
	if user != nil {
		if d := p.opts.Limits.Allow(ctx, p.app, ratelimit.Authorize, ratelimit.Account(user.ID)); !d.Allowed {
			ratelimit.WritePage(w, p.opts.DisplayName, d)
			return
		}
	}
	prompt := fosite.RemoveEmpty(strings.Split(params.Get("prompt"), " "))
	if p.needsLogin(sess, prompt, params.Get("max_age"), started, resumeID) {
		if slices.Contains(prompt, "none") {
			p.authorizeError(w, r, ar, fosite.ErrLoginRequired.WithHint("The user is not signed in, and prompt=none forbids asking."))
			return
		}
		// A request without a session parks a record in the store: how
		// many one address may park is limited (server.rate_limits.
		// anonymous_state), and what each holds (knownParams).
		if sess == nil && resumeID == "" {
			if d := p.opts.Limits.Allow(ctx, p.app, ratelimit.AnonymousState, ratelimit.Address(r)); !d.Allowed {
				ratelimit.WritePage(w, p.opts.DisplayName, d)
				return
			}
		}
		id, err := p.savePending(ctx, resumeID, params, started)
		if errors.Is(err, errPendingTooLarge) {
			p.authorizeError(w, r, ar, fosite.ErrInvalidRequest.WithHint("The authorization request is too large."))
			return
		}
		if err != nil {
			p.pageFailure(w, r, err)
			return
		}
		http.Redirect(w, r, p.opts.LoginURL(p.url("/oauth2/authorize?resume="+id)), http.StatusSeeOther)
		return
	}
	client := ar.GetClient().(*Client)
	if !client.FirstParty {
		ok, err := p.hasConsent(ctx, user.ID, client.GetID(), ar.GetRequestedScopes())
		if err != nil {
			p.pageFailure(w, r, err)
			return
		}
		if !ok || slices.Contains(prompt, "consent") {
			if slices.Contains(prompt, "none") {
				p.authorizeError(w, r, ar, fosite.ErrConsentRequired.WithHint("The user has not consented, and prompt=none forbids asking."))
				return
			}
			id, err := p.savePending(ctx, resumeID, params, started)
			if errors.Is(err, errPendingTooLarge) {
				p.authorizeError(w, r, ar, fosite.ErrInvalidRequest.WithHint("The authorization request is too large."))
				return
			}
			if err != nil {
				p.pageFailure(w, r, err)
				return
			}
			p.renderConsent(w, sess, user, client, ar.GetRequestedScopes(), id)
			return
		}
	}
	p.finishAuthorize(w, r, ar, sess, user, started, resumeID)
}

// parseAuthorize validates an authorization request with fosite, then
// checks what Aero2 demands before sending anyone to a sign-in page. The
// request is returned with the error, so the error can go to the client
// when fosite verified its redirect URI.
func (p *Provider) parseAuthorize(r *http.Request, params url.Values) (fosite.AuthorizeRequester, error) {
	params = cloneValues(params)
	var unsupported error
	// fosite would fetch request_uri over the network and parse request
	// objects: neither is offered (discovery says so).
	if params.Has("request") {
		unsupported = fosite.ErrRequestNotSupported
	} else if params.Has("request_uri") {
		unsupported = fosite.ErrRequestURINotSupported
	}
	params.Del("request")
	params.Del("request_uri")
	ar, err := p.oauth.NewAuthorizeRequest(r.Context(), syntheticRequest(r, params))
	if err != nil {
		return ar, err
	}
	if !redirectVerified(ar) {
		return ar, errRedirectMismatch
	}
	if unsupported != nil {
		// Refused only now, so that the error can go to the verified
		// redirect URI.
		return ar, unsupported
	}
	return ar, p.checkAuthorize(ar, params)
}

// checkAuthorize enforces Aero2's rules on a request fosite accepted.
func (p *Provider) checkAuthorize(ar fosite.AuthorizeRequester, params url.Values) error {
	for k, v := range params {
		if len(v) > 1 {
			return fosite.ErrInvalidRequest.WithHintf("Parameter '%s' is repeated (RFC 6749 §3.1).", k)
		}
	}
	if !ar.GetResponseTypes().ExactOne("code") {
		return fosite.ErrUnsupportedResponseType.WithHint("Only response_type=code is supported.")
	}
	// PKCE with S256 for every client (RFC 9700 §2.1.1). fosite's PKCE
	// handler enforces the same when the code is issued; checking here
	// refuses the request before the user is asked to sign in for nothing.
	challenge, method := params.Get("code_challenge"), params.Get("code_challenge_method")
	switch {
	case challenge == "":
		return fosite.ErrInvalidRequest.WithHint("PKCE is required: send code_challenge with code_challenge_method=S256 (RFC 7636).")
	case method != "S256":
		return fosite.ErrInvalidRequest.WithHint("code_challenge_method must be S256; plain is not accepted.")
	case !pkceChallengeRE.MatchString(challenge):
		return fosite.ErrInvalidRequest.WithHint("code_challenge must be the base64url SHA-256 of the verifier (43 characters).")
	}
	prompt := fosite.RemoveEmpty(strings.Split(params.Get("prompt"), " "))
	for _, v := range prompt {
		if !slices.Contains(p.fcfg.AllowedPromptValues, v) {
			return fosite.ErrInvalidRequest.WithHintf("Unknown prompt value '%s'.", v)
		}
	}
	if slices.Contains(prompt, "none") && len(prompt) > 1 {
		return fosite.ErrInvalidRequest.WithHint("prompt=none cannot be combined with other values.")
	}
	if ma := params.Get("max_age"); ma != "" {
		if n, err := strconv.Atoi(ma); err != nil || n < 0 {
			return fosite.ErrInvalidRequest.WithHint("max_age must be a non-negative number of seconds.")
		}
	}
	return nil
}

// needsLogin decides whether the user must sign in (again): no session,
// prompt=login or select_account, or a sign-in older than max_age — unless
// the user signed in after this request started (the request is resuming
// from the sign-in page).
func (p *Provider) needsLogin(sess *store.Session, prompt []string, maxAge string, started time.Time, resumeID string) bool {
	if sess == nil {
		return true
	}
	fresh := resumeID != "" && !sess.AuthTime.Before(started)
	if fresh {
		return false
	}
	if slices.Contains(prompt, "login") || slices.Contains(prompt, "select_account") {
		return true
	}
	if maxAge != "" {
		n, _ := strconv.Atoi(maxAge)
		return p.opts.Now().Sub(sess.AuthTime) > time.Duration(n)*time.Second
	}
	return false
}

// finishAuthorize issues the code and sends it, with iss (RFC 9207), to
// the client.
func (p *Provider) finishAuthorize(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, sess *store.Session, user *store.User, started time.Time, resumeID string) {
	ctx := r.Context()
	for _, s := range ar.GetRequestedScopes() {
		ar.GrantScope(s)
	}
	for _, a := range ar.GetRequestedAudience() {
		ar.GrantAudience(a)
	}
	resp, err := p.oauth.NewAuthorizeResponse(ctx, ar, p.userSession(ar.GetClient().(*Client), sess, user, ar.GetGrantedScopes(), started))
	if err != nil {
		p.authorizeError(w, r, ar, err)
		return
	}
	resp.AddParameter("iss", p.issuer)
	// The form_post page auto-submits with a script; it must still not be
	// framed.
	w.Header().Set("Content-Security-Policy", "frame-ancestors 'none'")
	p.oauth.WriteAuthorizeResponse(ctx, w, ar, resp)
	if resumeID != "" {
		_ = p.st.Delete(context.WithoutCancel(ctx), pendingKey(resumeID))
	}
}

// userSession is the grant's session: the subject the client sees (the
// user's ID, or its pairwise subject), the browser session (sid), and the
// ID token's claims for the granted scopes.
func (p *Provider) userSession(client *Client, sess *store.Session, user *store.User, scopes fosite.Arguments, started time.Time) *oauthstore.Session {
	s := oauthstore.NewSession()
	sub := client.subjects.subject(user.ID)
	s.Subject, s.Username, s.SID, s.AuthTime = sub, user.PreferredUsername, sess.ID, sess.AuthTime.UTC()
	if sub != user.ID {
		s.UserID = user.ID
	}
	c := s.Claims
	c.Issuer = p.issuer
	c.Subject = sub
	// Whole seconds, as in the token: fosite compares these two for
	// prompt and max_age.
	c.AuthTime = sess.AuthTime.UTC().Truncate(time.Second)
	c.RequestedAt = started.UTC().Truncate(time.Second)
	c.Extra = userClaims(user, scopes)
	c.Extra["sid"] = sess.ID
	return s
}

// authorizeError answers a failed authorization request. With a redirect
// URI that fosite verified as the client's, the error goes there with
// state and iss (RFC 6749 §4.1.2.1, RFC 9207 §2); otherwise an error page
// is shown and nothing redirects — an unverified redirect_uri is exactly
// what an attacker would supply (RFC 6749 §3.1.2.4).
func (p *Provider) authorizeError(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, err error) {
	if isUnavailable(err) {
		p.log.Warn("store unavailable", "path", r.URL.Path, "err", err)
		err = fosite.ErrTemporarilyUnavailable
	}
	rfc := fosite.ErrorToRFC6749Error(err)
	if rfc.CodeField >= 500 {
		p.log.Error("authorization failed", "err", err, "debug", rfc.Debug())
	}
	if !redirectVerified(ar) {
		status := rfc.CodeField
		if status < 400 {
			status = http.StatusBadRequest
		}
		p.page(w, status, "Authorization request refused", rfc.GetDescription(), rfc.ErrorField)
		return
	}
	v := rfc.ToValues()
	if st := ar.GetState(); st != "" {
		v.Set("state", st)
	}
	v.Set("iss", p.issuer)
	noStore(w)
	redir := *ar.GetRedirectURI()
	redir.Fragment = ""
	switch ar.GetResponseMode() {
	case fosite.ResponseModeFormPost:
		w.Header().Set("Content-Security-Policy", "frame-ancestors 'none'")
		w.Header().Set("Content-Type", "text/html;charset=UTF-8")
		fosite.WriteAuthorizeFormPostResponse(redir.String(), v, fosite.DefaultFormPostTemplate, w)
	case fosite.ResponseModeFragment:
		w.Header().Set("Location", redir.String()+"#"+v.Encode())
		w.WriteHeader(http.StatusSeeOther)
	default:
		q := redir.Query()
		for k, vs := range v {
			q[k] = vs
		}
		redir.RawQuery = q.Encode()
		w.Header().Set("Location", redir.String())
		w.WriteHeader(http.StatusSeeOther)
	}
}

// savePending parks the request (under its existing handle when resuming)
// and returns the handle.
func (p *Provider) savePending(ctx context.Context, id string, params url.Values, started time.Time) (string, error) {
	if id == "" {
		id = randomHandle()
	}
	data, err := json.Marshal(pending{Params: params, Started: started.UTC()})
	if err != nil {
		return "", err
	}
	if len(data) > maxPendingBytes {
		return "", fmt.Errorf("%w: %d bytes", errPendingTooLarge, len(data))
	}
	return id, p.st.Put(ctx, pendingKey(id), data, pendingTTL)
}

func (p *Provider) loadPending(ctx context.Context, id string) (*pending, error) {
	if len(id) != 43 {
		return nil, store.ErrNotFound
	}
	data, err := p.st.Get(ctx, pendingKey(id))
	if err != nil {
		return nil, err
	}
	var pr pending
	if err := json.Unmarshal(data, &pr); err != nil {
		return nil, store.ErrNotFound
	}
	return &pr, nil
}

// syntheticRequest is r carrying params as a GET query: fosite reads the
// authorization request from an *http.Request.
func syntheticRequest(r *http.Request, params url.Values) *http.Request {
	r2 := r.Clone(r.Context())
	r2.Method = http.MethodGet
	u := *r.URL
	u.RawQuery = params.Encode()
	r2.URL = &u
	r2.Body = http.NoBody
	r2.ContentLength = 0
	r2.Form, r2.PostForm, r2.MultipartForm = nil, nil, nil
	r2.Header.Del("Content-Type")
	return r2
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}
