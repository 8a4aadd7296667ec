package federation

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/aero2/aero2/audit"
	"github.com/aero2/aero2/ratelimit"
	"github.com/aero2/aero2/store"
)

// loginState is stored under "rp-state:<state>" for StateTTL and taken
// (read and deleted at once) by the callback.
type loginState struct {
	IDP          string `json:"idp"`
	ReturnTo     string `json:"return_to"`
	Binding      string `json:"binding"` // SHA-256 of the browser's binding cookie
	Nonce        string `json:"nonce"`
	PKCEVerifier string `json:"pkce_verifier"`
}

func stateKey(state string) string { return "rp-state:" + state }

// random returns n random bytes, base64url: state, nonce and binding
// values. n=32 is 256 bits, beyond guessing.
func random(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashB64(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// authorize starts a sign-in: GET /rp/authorize?idp=ID&redirect_uri=/path.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p, ok := h.providers[q.Get("idp")]
	if !ok {
		h.fail(w, http.StatusBadRequest, "Unknown identity provider", "This application has no identity provider by that name.", "invalid_request", true)
		return
	}
	returnTo := q.Get("redirect_uri")
	if returnTo == "" {
		returnTo = h.URL("/account")
	}
	if !h.opts.Redirects.Allowed(returnTo) {
		h.fail(w, http.StatusBadRequest, "Sign-in refused", "The page asked to return to an address this application does not allow.", "invalid_redirect", false)
		return
	}

	// Anyone can start a sign-in: how many states one address may keep
	// is limited, and each is small (the return address is at most
	// safeurl.MaxLen).
	if !h.allow(w, r, ratelimit.AnonymousState, ratelimit.Address(r)) {
		return
	}

	// The binding cookie ties the state to this browser: a callback URL
	// replayed in another browser (login CSRF, a leaked URL) finds no
	// matching cookie. One binding serves every sign-in the browser has
	// under way, so two tabs do not overwrite each other.
	binding := ""
	if c, err := r.Cookie(h.stateName); err == nil && len(c.Value) == 43 {
		binding = c.Value
	} else {
		binding = random(32)
	}
	st := loginState{
		IDP:          p.ID,
		ReturnTo:     returnTo,
		Binding:      hashB64(binding),
		Nonce:        random(32),
		PKCEVerifier: random(32),
	}
	state := random(32)
	flow := Flow{State: state, Nonce: st.Nonce, PKCEVerifier: st.PKCEVerifier, CallbackURL: h.URL("/rp/callback/" + p.ID)}
	target, err := p.Connector.LoginURL(r.Context(), flow)
	if err != nil {
		h.log.Error("identity provider unusable", "idp", p.ID, "err", err)
		h.fail(w, http.StatusBadGateway, "Identity provider unavailable", "Aero2 could not reach "+p.Name+". Please try again shortly.", "temporarily_unavailable", true)
		return
	}
	val, _ := json.Marshal(st)
	if err := h.opts.Store.Create(r.Context(), stateKey(state), val, StateTTL); err != nil {
		h.storeFailure(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: h.stateName, Value: binding, Path: "/", MaxAge: int(StateTTL.Seconds()),
		HttpOnly: true, Secure: h.opts.Secure, SameSite: http.SameSiteLaxMode,
	})
	http.Redirect(w, r, target, http.StatusFound)
}

// callback finishes a sign-in: GET /rp/callback/{idp}?code&state.
func (h *Handler) callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	state := q.Get("state")
	c, cerr := r.Cookie(h.stateName)
	if state == "" || len(state) > 256 || cerr != nil {
		h.signInFailed(r, "", "invalid_state")
		h.fail(w, http.StatusBadRequest, "Sign-in expired", "This sign-in was not started in this browser, or took too long. Please sign in again.", "invalid_state", true)
		return
	}
	// Take, not Get: the state is consumed in one atomic step, so a
	// replayed callback — even one racing the first — finds nothing.
	raw, err := h.opts.Store.Take(ctx, stateKey(state))
	if errors.Is(err, store.ErrNotFound) {
		h.signInFailed(r, "", "state_used_or_expired")
		h.fail(w, http.StatusBadRequest, "Sign-in expired", "This sign-in link was already used or has expired. Please sign in again.", "invalid_state", true)
		return
	}
	if err != nil {
		h.storeFailure(w, r, err)
		return
	}
	var st loginState
	if err := json.Unmarshal(raw, &st); err != nil {
		h.storeFailure(w, r, err)
		return
	}
	if subtle.ConstantTimeCompare([]byte(hashB64(c.Value)), []byte(st.Binding)) != 1 {
		h.signInFailed(r, st.IDP, "browser_mismatch")
		h.fail(w, http.StatusBadRequest, "Sign-in expired", "This sign-in was not started in this browser. Please sign in again.", "invalid_state", true)
		return
	}
	// Mix-up defence (RFC 9700 §4.4): the provider that answers must be
	// the one the state was issued for.
	idp := r.PathValue("idp")
	p, ok := h.providers[idp]
	if !ok || idp != st.IDP {
		h.log.Warn("callback for another identity provider than the state's", "path_idp", idp, "state_idp", st.IDP)
		h.signInFailed(r, st.IDP, "idp_mismatch")
		h.fail(w, http.StatusBadRequest, "Sign-in refused", "The answer came from another identity provider than the one this sign-in started with.", "invalid_state", true)
		return
	}
	// RFC 9207 §2.4: the issuer in the response is checked before
	// anything else in it, error responses included.
	if ok := h.checkResponseIssuer(w, r, p); !ok {
		return
	}
	if e := q.Get("error"); e != "" {
		h.log.Info("identity provider refused sign-in", "idp", idp, "error", e)
		h.signInFailed(r, idp, "provider_error")
		h.fail(w, http.StatusForbidden, "Sign-in cancelled", providerErrorMessage(p.Name, e), "", true)
		return
	}
	flow := Flow{State: state, Nonce: st.Nonce, PKCEVerifier: st.PKCEVerifier, CallbackURL: h.URL("/rp/callback/" + p.ID)}
	ident, err := p.Connector.HandleCallback(ctx, flow, r)
	if err != nil {
		if errors.Is(err, ErrDenied) {
			h.log.Info("sign-in denied", "idp", idp, "err", err)
			h.signInFailed(r, idp, "denied")
			h.fail(w, http.StatusForbidden, "Access denied", "Your "+p.Name+" account may not sign in to this application.", "access_denied", true)
			return
		}
		if errors.Is(err, store.ErrUnavailable) {
			h.storeFailure(w, r, err)
			return
		}
		h.log.Warn("sign-in failed", "idp", idp, "err", err)
		h.signInFailed(r, idp, "provider_failed")
		h.fail(w, http.StatusBadGateway, "Sign-in failed", "Aero2 could not complete the sign-in with "+p.Name+". Please try again.", "server_error", true)
		return
	}
	if ident.Subject == "" || len(ident.Subject) > maxSubject {
		h.log.Error("connector returned an identity without a usable subject", "idp", idp, "len", len(ident.Subject))
		h.signInFailed(r, idp, "no_subject")
		h.fail(w, http.StatusBadGateway, "Sign-in failed", p.Name+" did not say who you are.", "server_error", true)
		return
	}
	ident = h.cleanIdentity(p.ID, ident)
	u, sessions, err := h.upsertUser(r, p, ident)
	if errors.Is(err, ErrUserDisabled) {
		h.log.Info("sign-in refused: user disabled", "idp", idp)
		h.fail(w, http.StatusForbidden, "Account disabled", "Your account has been disabled. Ask the administrator of this application.", "access_denied", false)
		return
	}
	if err != nil {
		h.storeFailure(w, r, err)
		return
	}
	if !h.allow(w, r, ratelimit.Callback, ratelimit.Account(u.ID)) {
		return
	}
	if _, err := h.opts.Sessions.StartCounted(w, r, u.ID, p.ID, sessions); err != nil {
		h.storeFailure(w, r, err)
		return
	}
	h.log.Info("signed in", "idp", idp, "user", u.ID)
	audit.Log(ctx, h.opts.Audit, audit.Event{Type: audit.SignInSucceeded, App: h.app, IDP: idp, User: u.ID})
	// The return target was checked when the sign-in started; check
	// again, since the allow-list may have changed in between.
	target := st.ReturnTo
	if !h.opts.Redirects.Allowed(target) {
		target = h.URL("/account")
	}
	http.Redirect(w, r, target, http.StatusFound)
}

// providerErrorMessage explains the error codes of RFC 6749 §4.1.2.1 that
// users meet; the provider's error_description is not shown (it is
// attacker-controllable text in a trusted page).
func providerErrorMessage(name, code string) string {
	switch code {
	case "access_denied":
		return "You (or " + name + ") declined the sign-in."
	case "temporarily_unavailable", "server_error":
		return name + " is having trouble right now. Please try again later."
	case "login_required", "consent_required", "interaction_required":
		return name + " needs you to sign in there first."
	}
	return name + " could not complete the sign-in."
}

// maxSubject bounds a provider's subject: OIDC Core §2 allows 255 ASCII
// characters.
const maxSubject = 255

// checkResponseIssuer applies RFC 9207 to the callback: an `iss` parameter
// must be the provider's issuer, and a provider that promised to send it
// must have. It has answered the request when it returns false.
func (h *Handler) checkResponseIssuer(w http.ResponseWriter, r *http.Request, p Provider) bool {
	got, present := r.URL.Query()["iss"]
	ic, ok := p.Connector.(IssuerConnector)
	if !ok {
		// A plain OAuth 2.0 provider (GitHub) has no issuer identifier to
		// compare with; the state's provider, checked above, is the
		// mix-up defence there.
		return true
	}
	want, required, err := ic.ResponseIssuer(r.Context())
	if err != nil {
		h.log.Warn("identity provider metadata unavailable", "idp", p.ID, "err", err)
		h.fail(w, http.StatusBadGateway, "Identity provider unavailable", "Aero2 could not reach "+p.Name+". Please try again shortly.", "temporarily_unavailable", true)
		return false
	}
	if want == "" {
		return true
	}
	switch {
	case present && (len(got) != 1 || got[0] != want):
		// Simple string comparison, as RFC 9207 §2.4 requires: no
		// normalisation that an attacker could play with.
		h.log.Warn("authorization response from another issuer (mix-up?)", "idp", p.ID, "iss", truncate(got[0], 200), "want", want)
	case !present && required:
		h.log.Warn("authorization response without the iss its provider promised", "idp", p.ID)
	default:
		return true
	}
	h.signInFailed(r, p.ID, "issuer_mismatch")
	h.fail(w, http.StatusBadRequest, "Sign-in refused", "The answer did not come from "+p.Name+" as expected. Please sign in again.", "invalid_request", true)
	return false
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
