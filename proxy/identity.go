// Package proxy is Aero2's identity-aware reverse proxy: routes from the
// configuration, a policy per route, identity headers for the upstream,
// forward-auth for other proxies, and the sign-in that gets browsers a
// proxy session.
//
// The proxy is a first-party OIDC client of a provider (by default the
// application's own): it never reads the provider's internals, only what
// the provider publishes (discovery, JWKS, tokens, introspection) and the
// provider sessions' liveness through the store. See docs/proxy.md.
package proxy

import (
	"fmt"
	"strings"
)

// Identity is who a request comes from, as the provider vouched for it
// (ID token and userinfo, or a verified access token).
type Identity struct {
	Subject           string   `json:"sub"`
	Email             string   `json:"email,omitempty"`
	EmailVerified     bool     `json:"email_verified,omitempty"`
	PreferredUsername string   `json:"preferred_username,omitempty"`
	Name              string   `json:"name,omitempty"`
	Groups            []string `json:"groups,omitempty"`
	// SessionID is the provider session the identity came from (the ID
	// token's `sid`): while it is alive the proxy session is.
	SessionID string `json:"sid,omitempty"`
	// Claims keeps every claim, for allowed_claims.
	Claims map[string]any `json:"claims,omitempty"`
	// Client is set, to the client ID, for a bearer token that a client
	// obtained for itself (client credentials): no user stands behind it.
	// RFC 9068 §2.2 tells it by sub being the client_id. Never stored:
	// proxy sessions are always a user's.
	Client string `json:"-"`
	// groups is groupsHeader(Groups), made once with the Identity
	// (identityFromClaims) rather than for every request of a session.
	groups string
}

// groupsValue is the groups header's value.
func (id *Identity) groupsValue() string {
	if id.groups != "" || len(id.Groups) == 0 {
		return id.groups
	}
	return groupsHeader(id.Groups) // not made by identityFromClaims, or no group fits a header
}

// identityFromClaims builds an Identity from a claim set. Values of the
// wrong type are dropped, not guessed at: a policy must not match on a
// number that looks like a group.
func identityFromClaims(c map[string]any) Identity {
	id := Identity{Claims: c}
	id.Subject, _ = c["sub"].(string)
	id.Email, _ = c["email"].(string)
	id.EmailVerified = claimBool(c["email_verified"])
	id.PreferredUsername, _ = c["preferred_username"].(string)
	id.Name, _ = c["name"].(string)
	id.SessionID, _ = c["sid"].(string)
	id.Groups = claimStrings(c["groups"])
	id.groups = groupsHeader(id.Groups)
	return id
}

// claimBool reads a boolean claim. Some providers send "true" as a string
// (a known quirk of a few); anything else is false.
func claimBool(v any) bool {
	switch b := v.(type) {
	case bool:
		return b
	case string:
		return b == "true"
	}
	return false
}

// claimStrings reads a claim that is a string or a list of strings.
func claimStrings(v any) []string {
	switch x := v.(type) {
	case string:
		if x == "" {
			return nil
		}
		return []string{x}
	case []string:
		return x
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// claimValues renders a claim for allowed_claims: strings as they are,
// booleans and numbers in their JSON form, lists member by member.
func claimValues(v any) []string {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return []string{x}
	case bool, float64, int, int64:
		return []string{fmt.Sprint(x)}
	case []any:
		var out []string
		for _, e := range x {
			switch e.(type) {
			case []any, map[string]any:
				continue // nested structures never match a flat value
			}
			out = append(out, claimValues(e)...)
		}
		return out
	case []string:
		return x
	}
	return nil
}

// Display is how the 403 page names the user.
func (id Identity) Display() string {
	switch {
	case id.Email != "":
		return id.Email
	case id.PreferredUsername != "":
		return id.PreferredUsername
	case id.Name != "":
		return id.Name
	}
	return id.Subject
}

// groupsHeader joins groups for a header. Groups containing a comma or a
// control character cannot be represented unambiguously and are left out
// (a group named "admins,users" must not read as two groups).
func groupsHeader(groups []string) string {
	var b strings.Builder
	for _, g := range groups {
		if g == "" || strings.ContainsAny(g, ",\r\n\x00") {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(g)
	}
	return b.String()
}
