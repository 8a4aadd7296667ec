package proxy

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestIntrospectionNamesTheSession: the session a bearer token is checked
// against is its introspection answer's sid (Aero2's JWT access tokens
// carry none), the claims' when the answer has none; answers that
// disagree with the claims refuse the token, and a sid that is not a
// string (not a registered name: another provider's) is no session,
// never an answer that fails to decode.
func TestIntrospectionNamesTheSession(t *testing.T) {
	answers := map[string]struct {
		claimed, want string
		refused       bool
	}{
		`{"active":true,"sub":"u","sid":"s1"}`:   {"", "s1", false},
		`{"active":true,"sid":"s1"}`:             {"s1", "s1", false},
		`{"active":true}`:                        {"s1", "s1", false},
		`{"active":true,"sid":""}`:               {"", "", false},
		`{"active":true,"sid":"s2"}`:             {"s1", "", true},
		`{"active":true,"sid":7}`:                {"", "", false},
		`{"active":true,"sid":{"id":"s1"}}`:      {"", "", false},
		`{"active":true,"sid":["s1"]}`:           {"s1", "s1", false},
		`{"active":true,"sid":null,"sub":"u"}`:   {"", "", false},
		`{"active":false,"sid":"s1","extra":[]}`: {"", "s1", false},
	}
	for body, c := range answers {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(body)) }))
		p := NewOIDCProvider(OIDCConfig{ClientID: "c", ClientSecret: "s", HTTPClient: srv.Client()})
		in, err := p.introspect(t.Context(), srv.URL, "token")
		srv.Close()
		if err != nil {
			t.Errorf("%s: %v", body, err)
			continue
		}
		sid, err := in.sessionOf(c.claimed)
		if c.refused != errors.Is(err, ErrInvalidToken) || sid != c.want {
			t.Errorf("%s with the claims' sid %q: %q, %v; want %q (refused %v)", body, c.claimed, sid, err, c.want, c.refused)
		}
	}
}
