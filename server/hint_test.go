package server_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store/redis/redistest"
)

// TestProxySessionHintIsOnlyAHint: the provider session ID after the '.'
// of a proxy cookie is the client's to change, so it is hostile input. It
// may only save a round trip, never choose whose session is checked:
// another user's live session named there neither admits alice once hers
// has ended nor serves anyone but alice while hers lives; an oversized or
// malformed hint is read as none; concurrent requests with hostile hints
// change nothing. Every request reads the store (session_cache 1ms).
func TestProxySessionHintIsOnlyAHint(t *testing.T) {
	st := redistest.New(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("X-Forwarded-Email"))
	}))
	t.Cleanup(up.Close)
	cfg := strings.Replace(servertest.DevConfig, "\nserver:\n", "\nserver:\n  rate_limits: {disabled: true}\n", 1) + `
proxy: {session_cache: 1ms}
routes:
  - {path: /app, upstream: "` + up.URL + `"}
`
	in := servertest.StartWith(t, cfg, servertest.Options{Store: st})
	signIn := func(user string) *http.Cookie {
		b := servertest.NewBrowser(t)
		if p := b.SignInDev(in.URL+"/app/start", user); p.Status != http.StatusOK {
			t.Fatalf("%s: sign-in ended at %d %s", user, p.Status, p.URL)
		}
		return proxyCookie(t, b, in.URL)
	}
	alice, eve := signIn("alice"), signIn("eve")
	token, aliceSID, ok := strings.Cut(alice.Value, ".")
	_, eveSID, ok2 := strings.Cut(eve.Value, ".")
	if !ok || !ok2 || aliceSID == eveSID {
		t.Fatalf("proxy cookies without distinct hints: %q %q", alice.Value, eve.Value)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(value string) (int, string) {
		time.Sleep(3 * time.Millisecond) // past session_cache
		req, _ := http.NewRequest(http.MethodGet, in.URL+"/app/x", nil)
		req.AddCookie(&http.Cookie{Name: alice.Name, Value: value})
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return res.StatusCode, string(body)
	}
	hostile := []string{
		token + "." + eveSID,                      // another user's live session
		token + "." + strings.Repeat("A", 10<<10), // oversized
		token + ".%00../x",                        // not an ID
		token + "." + aliceSID + "." + eveSID,     // two hints
		token + ".",                               // empty
		token,                                     // none
	}
	for _, v := range hostile {
		if s, who := get(v); s != http.StatusOK || who != "alice@example.com" {
			t.Errorf("hint %.40q: %d %q, want alice served", v, s, who)
		}
	}
	var wg sync.WaitGroup
	for range 16 {
		for _, v := range hostile {
			wg.Go(func() {
				if s, who := get(v); s != http.StatusOK || who != "alice@example.com" {
					t.Errorf("concurrent hint %.40q: %d %q", v, s, who)
				}
			})
		}
	}
	wg.Wait()

	// alice's provider session ends; eve's lives. Naming eve's session
	// must not keep alice's proxy session alive.
	if err := st.DeleteSession(t.Context(), "default", aliceSID); err != nil {
		t.Fatal(err)
	}
	for _, v := range hostile {
		if s, who := get(v); s == http.StatusOK {
			t.Errorf("alice's provider session ended, hint %.40q: %d %q, want a sign-in", v, s, who)
		}
	}
	// eve is untouched by all of it.
	if s, who := get(eve.Value); s != http.StatusOK || who != "eve@example.org" {
		t.Errorf("eve after alice's hostile hints: %d %q", s, who)
	}
}
