package authz

import (
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/ory/fosite"
)

// TestTypedTokenResponseIsFosites: the token endpoint's answer written from
// its struct has fosite's headers, status and bytes, for each set of
// members fosite's handlers give (client credentials, code and refresh with
// and without an ID token, no scope, DPoP); an answer with any other member
// is fosite's own.
func TestTypedTokenResponseIsFosites(t *testing.T) {
	oauth := &fosite.Fosite{Config: &fosite.Config{}}
	p := &Provider{oauth: oauth}
	for i, extra := range []map[string]any{
		{"expires_in": int64(300), "scope": "api read"},
		{"expires_in": int64(300), "scope": "", "refresh_token": "r.t", "id_token": "a.b.c"},
		{"expires_in": int64(0), "scope": "openid", "refresh_token": "r<&>t"},
		{},
		{"expires_in": int64(300), "issued_token_type": "x"},
		{"expires_in": 300, "scope": "api"},
		{"id_token": ""},
	} {
		for _, typ := range []string{"bearer", "DPoP"} {
			resp := func() *fosite.AccessResponse {
				r := fosite.NewAccessResponse()
				r.SetAccessToken("h.p.s")
				r.SetTokenType(typ)
				for k, v := range extra {
					r.SetExtra(k, v)
				}
				return r
			}
			_, typed := typedResponse(resp())
			got, want := httptest.NewRecorder(), httptest.NewRecorder()
			p.writeAccessResponse(t.Context(), got, nil, resp())
			oauth.WriteAccessResponse(t.Context(), want, nil, resp())
			if got.Code != want.Code || got.Body.String() != want.Body.String() {
				t.Errorf("%d %s: %d %s, fosite's %d %s", i, typ, got.Code, got.Body, want.Code, want.Body)
			}
			for _, h := range []string{"Cache-Control", "Pragma", "Content-Type"} {
				if g, w := got.Header().Values(h), want.Header().Values(h); len(g) != 1 || g[0] != w[0] || len(w) != 1 {
					t.Errorf("%d %s: %s %q, fosite's %q", i, typ, h, g, w)
				}
			}
			if n := got.Header().Get("Content-Length"); typed && n != strconv.Itoa(got.Body.Len()) {
				t.Errorf("%d %s: Content-Length %q, body %d bytes", i, typ, n, got.Body.Len())
			}
			if typed != (i < 4) {
				t.Errorf("%d %s: written from the struct: %v", i, typ, typed)
			}
		}
	}
}
