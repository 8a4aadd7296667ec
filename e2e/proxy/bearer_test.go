package proxy_test

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/aero2/aero2/proxy/proxytest"
)

func bearerGet(t *testing.T, u, token string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func TestBearerTokens(t *testing.T) {
	s := start(t, nil, routesYAML, nil)
	good, idToken := s.op.Tokens(t)
	if st := bearerGet(t, s.in.URL+"/admin/api", good); st != 200 {
		t.Fatalf("valid token: %d", st)
	}
	seen := s.up.Last(t)
	if seen.Header.Get("X-Forwarded-User") != "u-alice" || seen.Header.Get("Authorization") != "" {
		t.Errorf("upstream got user %q, Authorization %q", seen.Header.Get("X-Forwarded-User"), seen.Header.Get("Authorization"))
	}
	// RFC 9068 §4: "application/at+jwt", in any case, is the same type.
	if st := bearerGet(t, s.in.URL+"/admin/api", s.op.Resign(t, good, "application/AT+JWT", nil)); st != 200 {
		t.Errorf("typ application/AT+JWT: %d", st)
	}
	revoked, _ := s.op.Tokens(t)
	s.op.Revoke(t, revoked)
	// Another provider with the same client: right shape, wrong issuer.
	foreign := proxytest.StartOP(t)
	foreignToken, _ := foreign.Tokens(t)
	// alg none: the good token's claims, unsigned.
	parts := strings.Split(good, ".")
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."
	// The good token with its signature swapped for another's.
	forged := parts[0] + "." + parts[1] + "." + strings.Split(foreignToken, ".")[2]
	// The provider's own signature on the same claims, without the
	// access token's typ (RFC 9068 §4): an ID token, an assertion, or
	// anything else the provider signs.
	typJWT := s.op.Resign(t, good, "JWT", nil)
	typNone := s.op.Resign(t, good, "", nil)
	typAssertion := s.op.Resign(t, good, "aero2-assertion+jwt", nil)
	// The ID token with the access token's claims for audience: still not
	// an access token.
	idAsAccess := s.op.Resign(t, idToken, "JWT", func(c map[string]any) { c["aud"] = proxytest.ClientID })
	for name, tok := range map[string]string{
		"revoked": revoked, "foreign issuer": foreignToken, "alg none": none, "forged signature": forged,
		"id token": idToken, "garbage": "not-a-token", "typ JWT": typJWT, "no typ": typNone,
		"typ of an assertion": typAssertion, "id token for the proxy's audience": idAsAccess,
	} {
		before := s.up.Count()
		if st := bearerGet(t, s.in.URL+"/admin/api", tok); st != 401 {
			t.Errorf("%s: %d, want 401", name, st)
		}
		if s.up.Count() != before {
			t.Errorf("%s reached the upstream", name)
		}
	}
}
