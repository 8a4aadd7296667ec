package proxy_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aero2/aero2/server/servertest"
)

// TestCallbackSendsCodesOnlyToConfiguredOrigins: the callback checks, as
// the handoff code leaves, that the origin it sends the browser to is one
// the application serves. A sign-in state that names another origin (one
// written before origins came from the configuration, or by a bug) sends
// nobody anywhere with a code.
func TestCallbackSendsCodesOnlyToConfiguredOrigins(t *testing.T) {
	s := start(t, nil, routesYAML, nil)
	b := servertest.NewBrowser(t)
	nb := b.NoRedirects()
	p := nb.Get(s.in.URL + "/app")
	authorize, err := url.Parse(p.Header.Get("Location"))
	if err != nil || p.Status != http.StatusFound {
		t.Fatalf("sign-in start: %d %q", p.Status, p.Header.Get("Location"))
	}
	state := authorize.Query().Get("state")
	st := s.in.Server.Store()
	ctx := context.Background()
	raw, err := st.Get(ctx, "default", "proxy-state:"+state)
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	json.Unmarshal(raw, &rec)
	if rec["origin"] != s.in.URL {
		t.Fatalf("the sign-in state's origin is %v, want %s", rec["origin"], s.in.URL)
	}
	rec["origin"] = "http://evil.example"
	raw, _ = json.Marshal(rec)
	if err := st.Put(ctx, "default", "proxy-state:"+state, raw, 0); err != nil {
		t.Fatal(err)
	}
	callback := flowTo(t, b, authorize.String(), s.in.URL+"/.aero2/callback")
	p = nb.Get(callback)
	if p.Status != http.StatusBadRequest || strings.Contains(p.Header.Get("Location"), "evil") {
		t.Errorf("callback for a state naming another origin: %d, Location %q", p.Status, p.Header.Get("Location"))
	}
}
