package authz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/aero2/aero2/ratelimit"
	"github.com/aero2/aero2/store"
)

// parPath is the pushed authorization request endpoint (RFC 9126).
const parPath = "/oauth2/par"

const (
	// requestURIPrefix starts every request_uri this provider issues
	// (RFC 9126 §2.2).
	requestURIPrefix = "urn:ietf:params:oauth:request_uri:"
	// parTTL is a request_uri's life: the client redirects the browser
	// with it at once (RFC 9126 §2.2 suggests 5 to 600 seconds).
	parTTL = 60 * time.Second
)

// pushed is a pushed authorization request as stored: single-use, read
// only with Take. Params went through knownParams and parseAuthorize, as
// a parked request's do, and the record is bounded like one
// (maxPendingBytes).
type pushed struct {
	ClientID string     `json:"client_id"`
	Params   url.Values `json:"params"`
}

func pushedKey(handle string) string { return "authz:par:" + handle }

// par is the pushed authorization request endpoint (RFC 9126 §2): an
// authenticated client (or a public one, by client_id) posts its
// authorization request, which is validated now — as the authorization
// endpoint would, client, redirect URI, scopes and PKCE included — and
// stored for parTTL under a request_uri that the client then sends the
// browser to /oauth2/authorize with. The parameters reach Aero2 from the
// client, not through the browser, so the user cannot see or change them.
func (p *Provider) par(w http.ResponseWriter, r *http.Request) {
	ctx := withClientAuth(r.Context())
	c, err := p.oauth.AuthenticateClient(ctx, r, r.PostForm)
	if err != nil {
		p.clientAuthError(w, r, err)
		return
	}
	client := c.(*Client)
	in := r.PostForm
	switch {
	case in.Has("request_uri"):
		// RFC 9126 §2.1: a pushed request cannot point to another.
		writeJSONError(w, http.StatusBadRequest, "invalid_request", "A pushed authorization request must not contain request_uri.")
		return
	case in.Has("request"):
		writeJSONError(w, http.StatusBadRequest, "request_not_supported", "Request objects are not supported; push the parameters themselves.")
		return
	case in.Get("client_id") != "" && in.Get("client_id") != client.GetID():
		writeJSONError(w, http.StatusBadRequest, "invalid_request", "client_id is not the authenticated client.")
		return
	}
	params, err := knownParams(in)
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, "invalid_request", "The request could not be read: "+err.Error()+".")
		return
	}
	// Client authentication is not part of the authorization request.
	params.Set("client_id", client.GetID())
	if _, err := p.parseAuthorize(r, params); err != nil {
		rfc := fosite.ErrorToRFC6749Error(err)
		if errors.Is(err, errRedirectMismatch) {
			rfc = fosite.ErrInvalidRequest.WithHint("The redirect_uri is not registered for this client.")
		}
		status := rfc.CodeField
		if status < 400 || status >= 500 {
			status = http.StatusBadRequest
		}
		writeJSONError(w, status, rfc.ErrorField, rfc.GetDescription())
		return
	}
	// What a public client pushes is stored for anyone who knows its ID:
	// counted like any anonymous record.
	if d := p.opts.Limits.Allow(ctx, p.app, ratelimit.AnonymousState, ratelimit.Address(r)); !d.Allowed {
		ratelimit.WriteJSON(w, d)
		return
	}
	handle, err := p.savePushed(ctx, client.GetID(), params)
	if errors.Is(err, errPendingTooLarge) {
		writeJSONError(w, http.StatusRequestEntityTooLarge, "invalid_request", "The authorization request is too large.")
		return
	}
	if err != nil {
		if isUnavailable(err) {
			p.unavailable(w, r, err)
			return
		}
		p.log.Error("par", "err", err)
		writeJSONError(w, http.StatusInternalServerError, "server_error", "")
		return
	}
	noStore(w)
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(http.StatusCreated)
	writeBody(w, map[string]any{"request_uri": requestURIPrefix + handle, "expires_in": int(parTTL.Seconds())})
}

func (p *Provider) savePushed(ctx context.Context, clientID string, params url.Values) (string, error) {
	data, err := json.Marshal(pushed{ClientID: clientID, Params: params})
	if err != nil {
		return "", err
	}
	if len(data) > maxPendingBytes {
		return "", fmt.Errorf("%w: %d bytes", errPendingTooLarge, len(data))
	}
	handle := randomHandle()
	return handle, p.st.Create(ctx, pushedKey(handle), data, parTTL)
}

// errRequestURI: the request_uri is unknown, expired, used, or another
// client's. One error for all, so that a request_uri of another client is
// told apart from none.
var errRequestURI = errors.New("request_uri unknown, expired, already used, or not this client's")

// takePushed redeems a request_uri for clientID: in one atomic step
// (store.Take), so of two authorization requests with one request_uri at
// most one gets its parameters — RFC 9126 §4 makes a request_uri single
// use. A request_uri shown with another client_id is used up all the same.
func (p *Provider) takePushed(ctx context.Context, clientID, requestURI string) (url.Values, error) {
	handle, ok := strings.CutPrefix(requestURI, requestURIPrefix)
	if !ok || len(handle) != 43 {
		return nil, errRequestURI
	}
	data, err := p.st.Take(ctx, pushedKey(handle))
	if errors.Is(err, store.ErrNotFound) {
		return nil, errRequestURI
	}
	if err != nil {
		return nil, err
	}
	var pr pushed
	if err := json.Unmarshal(data, &pr); err != nil || pr.ClientID != clientID || clientID == "" {
		return nil, errRequestURI
	}
	return pr.Params, nil
}
