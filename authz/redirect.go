package authz

import (
	"net"
	"net/url"
	"slices"

	"github.com/ory/fosite"
)

// errRedirectMismatch refuses a redirect URI that is not the client's.
var errRedirectMismatch = fosite.ErrInvalidRequest.WithHint("The 'redirect_uri' parameter does not match any of the OAuth 2.0 Client's pre-registered redirect urls.")

// redirectVerified reports whether the request's redirect URI is one of
// its client's, so that a response (a code or an error) may go there.
//
// Redirect URIs match character for character (RFC 9700 §4.1.3). The one
// exception is RFC 8252 §7.3: a native app listens on a loopback IP
// literal at whatever port it could open, so for public clients a
// registered http://127.0.0.1/path (or [::1]) matches that URI on any
// port. fosite applies that exception to every client; a confidential
// client gets exact matching here, port included: another port on the
// machine is another program, and must not receive the client's codes.
func redirectVerified(ar fosite.AuthorizeRequester) bool {
	if ar == nil || !ar.IsRedirectURIValid() {
		return false
	}
	c := ar.GetClient()
	raw := ar.GetRequestForm().Get("redirect_uri")
	if raw == "" {
		// fosite used the client's only registered URI.
		return len(c.GetRedirectURIs()) == 1
	}
	if slices.Contains(c.GetRedirectURIs(), raw) {
		return true
	}
	return c.IsPublic() && slices.ContainsFunc(c.GetRedirectURIs(), func(reg string) bool { return loopbackAnyPort(reg, raw) })
}

// loopbackAnyPort reports whether requested is registered on another
// port: both plain http on the same loopback IP literal (not "localhost",
// which a resolver may send elsewhere: RFC 8252 §8.3), with the same path
// and query.
func loopbackAnyPort(registered, requested string) bool {
	reg, err1 := url.Parse(registered)
	req, err2 := url.Parse(requested)
	if err1 != nil || err2 != nil || reg.Scheme != "http" || req.Scheme != "http" || reg.User != nil || req.User != nil {
		return false
	}
	ip := net.ParseIP(reg.Hostname())
	return ip != nil && ip.IsLoopback() && reg.Hostname() == req.Hostname() &&
		reg.EscapedPath() == req.EscapedPath() && reg.RawQuery == req.RawQuery && req.Fragment == ""
}
