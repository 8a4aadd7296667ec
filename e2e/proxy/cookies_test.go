package proxy_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/aero2/aero2/proxy/proxytest"
	"github.com/aero2/aero2/server/servertest"
)

// ownCookieLines are Set-Cookie lines an upstream might send for Aero2's
// cookies: every prefix, any case, the sign-in binding, the provider's
// session and login cookies, and a nameless cookie whose value reads as a
// name.
var ownCookieLines = []string{
	"__Host-aero2_proxy=planted; Path=/; Secure; HttpOnly",
	"aero2_proxy=planted; Path=/",
	"__Secure-aero2_proxy=planted; Path=/; Secure",
	"__HOST-AERO2_PROXY=planted; Path=/; Secure",
	" aero2_proxy_login =planted",
	"__Host-aero2_session=planted; Path=/; Secure",
	"aero2_session_login=planted",
	"aero2_session",
	"__Host-aero2_proxy=; Max-Age=0; Path=/; Secure",
}

func mountCookies(up *proxytest.Upstream, mux *http.ServeMux) {
	mux.HandleFunc("/app/cookies", func(w http.ResponseWriter, r *http.Request) {
		up.Record(r)
		for _, l := range ownCookieLines {
			w.Header().Add("Set-Cookie", l)
		}
		w.Header().Add("Set-Cookie", "app_pref=dark; Path=/")
		w.Write([]byte("ok"))
	})
}

// TestUpstreamCannotSetAero2Cookies: through the whole server, whose
// provider cookies the proxy learns from the server, a signed-in
// browser's response keeps the upstream's own cookie and none of
// Aero2's.
func TestUpstreamCannotSetAero2Cookies(t *testing.T) {
	src := strings.Replace(routesYAML, "routes:\n", "routes:\n  - {path: /app/cookies, upstream: \"UP\"}\n", 1)
	s := start(t, nil, src, mountCookies)
	b := servertest.NewBrowser(t)
	b.Get(s.in.URL + "/app") // sign in
	res, err := b.Client.Get(s.in.URL + "/app/cookies")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	got := res.Header.Values("Set-Cookie")
	if len(got) != 1 || got[0] != "app_pref=dark; Path=/" {
		t.Errorf("the browser got Set-Cookie %q, want only the upstream's own", got)
	}
	if p := b.Get(s.in.URL + "/app/x"); p.Status != 200 {
		t.Errorf("the session did not survive: %d", p.Status)
	}
}
