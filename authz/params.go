package authz

import (
	"errors"
	"fmt"
	"net/url"
)

// authorizeParams are the authorization request's parameters Aero2 reads
// (RFC 6749 §4.1.1, RFC 7636 §4.3, OIDC Core §3.1.2.1, fosite's audience),
// each with the longest value it accepts. A request waiting for its user
// to sign in is parked in the store (authz:pending) by anyone, signed in
// or not, so what it may hold is decided here: any other parameter is
// dropped — RFC 6749 §3.1 says to ignore unrecognised ones — and a value
// too long is refused. Values that must match the configuration
// (client_id, redirect_uri, scope, audience) are checked against it
// before anything is parked; the rest are free text the client chose.
var authorizeParams = map[string]int{
	"response_type":         64,
	"client_id":             256,
	"redirect_uri":          2048,
	"scope":                 1024,
	"audience":              1024,
	"state":                 2048, // opaque to us; some frameworks seal a whole context into it
	"nonce":                 512,
	"code_challenge":        128, // checked exactly later: 43 base64url characters
	"code_challenge_method": 16,
	"response_mode":         32,
	"prompt":                64,
	"max_age":               10,
	"display":               16,
	"ui_locales":            128,
	"claims_locales":        128,
	"login_hint":            256,
	"acr_values":            256,
	"id_token_hint":         4096, // one of our ID tokens
	// Refused as unsupported once the redirect URI is verified (see
	// parseAuthorize), never parked; bounded so the refusal can say so.
	"request":     8192,
	"request_uri": 2048,
}

// maxPendingBytes bounds a parked request as stored. The limits above
// sum to well under it for text; characters that JSON escapes take up to
// six bytes each, and a request that grows past it that way is refused
// (errPendingTooLarge).
const maxPendingBytes = 16 << 10

var errPendingTooLarge = errors.New("authorization request too large to park")

// knownParams keeps the parameters Aero2 reads, and refuses one whose
// value is longer than its limit.
func knownParams(in url.Values) (url.Values, error) {
	out := make(url.Values, len(in))
	for k, vs := range in {
		limit, ok := authorizeParams[k]
		if !ok {
			continue
		}
		for _, v := range vs {
			if len(v) > limit {
				return nil, fmt.Errorf("parameter %s is longer than %d bytes", k, limit)
			}
		}
		out[k] = vs
	}
	return out, nil
}
