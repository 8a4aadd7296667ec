package server_test

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store/redis"
	"github.com/aero2/aero2/store/redis/redistest"
)

// Footprint bounds (issue 13): a browser session in at most 1 KiB of
// Redis memory; a proxy session of the application's own provider, when
// no route sends tokens upstream, in at most 640 B (584 B measured: a
// reference to the provider session, the claims, the origin and two
// times; 2.2 KB while it kept the ID token as a logout hint and the
// claims three times over, 3.7 KB while it also kept the access and
// refresh tokens it never sent). The whole sign-in there (identity
// headers only), provider's keys included, in at most 2,400 B and 6 keys
// (2,368 B in 6 measured: the access token's record, the proxy session,
// the browser session, the user's session index, the grant's index and
// the browser session's index at the provider). Until the code named its
// grant, 2,672 B in 8: a redeemed code left a used-code marker
// (oauth:code-used:<h>, 232 B; now its record is taken and its sealed
// name says which grant a replay revokes), and every grant was filed in
// the user-client index (oauth:user-client:…, 72 B), which a first-party
// client's grant without a refresh token, as the proxy's is, skips
// (nothing can remove a consent it never asked for). Before stop 19,
// 4,696 B in 11 keys: the proxy indexed its sessions under the provider
// session (proxy-sid:<sid>, 296 B) and asked for a refresh token it never
// redeemed (oauth:rt:<sig>, 1,032 B, and its member of the grant's
// index); the provider kept back-channel registrations in a set of their
// own (bcl-sid:<sid>, 296 B) and each access token's whole request
// (648 B, now 264 B: the grant and what the JWT does not say).
const (
	maxBrowserSession = 1024
	maxProxySession   = 640
	maxSignIn         = 2400
	maxSignInKeys     = 6
)

// TestSignInFootprintOnRedis signs the same user in twice through the
// proxy (identity headers only) and measures, with MEMORY USAGE, every key
// the second sign-in wrote: the browser session and the proxy session are
// bounded; the whole is logged (it includes the provider's codes, tokens
// and indexes, which are the authorization server's to shrink).
func TestSignInFootprintOnRedis(t *testing.T) {
	for _, tc := range []struct{ name, headers string }{
		{"identity headers", ""},
		{"access token upstream", ", headers: {access_token: [X-Forwarded-Access-Token]}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := redistest.Config(t)
			st, err := redis.Open(context.Background(), rc)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			up := tokenEcho(t)
			in := servertest.StartWith(t, servertest.DevConfig+`
routes:
  - {path: /app, upstream: "`+up.URL+`"`+tc.headers+`}
`, servertest.Options{Store: st})
			c := goredis.NewClient(&goredis.Options{Addr: rc.Addrs[0]})
			defer c.Close()
			snap := func() map[string]int64 {
				out := map[string]int64{}
				iter := c.Scan(t.Context(), 0, rc.KeyPrefix+":*", 1000).Iterator()
				for iter.Next(t.Context()) {
					n, err := c.MemoryUsage(t.Context(), iter.Val()).Result()
					if err != nil {
						t.Fatalf("MEMORY USAGE %s: %v", iter.Val(), err)
					}
					out[strings.TrimPrefix(iter.Val(), rc.KeyPrefix)] = n
				}
				if err := iter.Err(); err != nil {
					t.Fatal(err)
				}
				return out
			}
			signIn := func() {
				b := servertest.NewBrowser(t)
				if p := b.SignInDev(in.URL+"/app/start", "alice"); p.Status != http.StatusOK {
					t.Fatalf("sign-in ended at %d %s", p.Status, p.URL)
				}
			}
			signIn() // creates the user: not per sign-in
			before := snap()
			signIn()
			after := snap()
			var keys []string
			var total, browser, proxied int64
			for k, v := range after {
				if before[k] == v {
					continue
				}
				keys = append(keys, k)
				d := v - before[k]
				total += d
				switch {
				case strings.Contains(k, ":s:"): // both key layouts: ":s:<id>" and ":s:{<id>}"
					browser += d
				case strings.Contains(k, ":r:proxy-session:"), strings.Contains(k, ":r:{proxy-session:"):
					proxied += d
				}
			}
			sort.Strings(keys)
			for _, k := range keys {
				t.Logf("%6d B %s", after[k]-before[k], k)
			}
			t.Logf("per sign-in: %d B in %d keys (targets 4 KB, 6 keys); browser session %d B, proxy session %d B", total, len(keys), browser, proxied)
			if browser == 0 || proxied == 0 {
				t.Fatalf("the sign-in wrote no browser session (%d B) or no proxy session (%d B): the key names changed", browser, proxied)
			}
			if browser > maxBrowserSession {
				t.Errorf("browser session: %d B, more than %d", browser, maxBrowserSession)
			}
			if tc.headers == "" && proxied > maxProxySession {
				t.Errorf("proxy session without tokens to send: %d B, more than %d", proxied, maxProxySession)
			}
			if tc.headers == "" && (total > maxSignIn || len(keys) > maxSignInKeys) {
				t.Errorf("sign-in without tokens to send: %d B in %d keys, more than %d B or %d keys", total, len(keys), maxSignIn, maxSignInKeys)
			}
			for _, k := range keys {
				// At the application's own provider: no index of proxy
				// sessions (its sessions are references to provider
				// sessions), and no refresh token unless one is sent on.
				if strings.Contains(k, "proxy-sid:") || strings.Contains(k, "proxy-sub:") || tc.headers == "" && strings.Contains(k, "oauth:rt:") {
					t.Errorf("the sign-in wrote %s", k)
				}
			}
		})
	}
}
