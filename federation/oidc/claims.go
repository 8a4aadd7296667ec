package oidc

// claims are an ID token's or userinfo's JSON object. Providers disagree on
// types (email_verified as "true", groups as one string), so values are
// read leniently here and strictly everywhere they matter.
type claims map[string]any

// protected are the claims userinfo must not replace: they identify the
// token and were verified on the ID token.
var protected = map[string]bool{"iss": true, "sub": true, "aud": true, "azp": true, "nonce": true, "exp": true, "iat": true, "nbf": true, "tid": true, "hd": true}

// merge adds userinfo's claims, which complete or update the ID token's
// profile (OIDC Core §5.3.2) but never its identifying claims.
func (c claims) merge(more claims) {
	for k, v := range more {
		if !protected[k] {
			c[k] = v
		}
	}
}

func (c claims) string(name string) string {
	s, _ := c[name].(string)
	return s
}

// bool reads a boolean claim; the string "true" counts (some providers
// send email_verified so), anything else is false.
func (c claims) bool(name string) bool {
	switch v := c[name].(type) {
	case bool:
		return v
	case string:
		return v == "true"
	}
	return false
}

// strings reads a list of strings, or one string as a list of one;
// entries of other types are dropped.
func (c claims) strings(name string) []string {
	switch v := c[name].(type) {
	case string:
		if v != "" {
			return []string{v}
		}
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
