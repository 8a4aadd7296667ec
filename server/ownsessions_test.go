package server_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/server"
	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store/redis/redistest"
)

// TestOwnProviderSessionsEndWithoutAnIndex: at Aero2's own provider the
// proxy keeps no index from provider sessions (or subjects) to proxy
// sessions (proxy/backchannel.go, index). Two replicas on one real Redis
// cache proxy sessions for 30s (an hour while broadcasts are heard); for
// every way a session ends — the provider's sign-out on the account page,
// the proxy's sign-out, `aero2 sessions revoke` (one session, and every
// session of a user), `aero2 users disable` — the next request of the
// ended session, on either replica, is sent to sign in at once, while
// another user's session, and a cookie of hers that names the ended
// provider session, stay hers; and a cookie of the ended session that
// names her live provider session is not let in by it. Uncached as well:
// then what ends the proxy session is the provider-session check alone.
func TestOwnProviderSessionsEndWithoutAnIndex(t *testing.T) {
	for _, cache := range []string{"cached", "uncached"} {
		for _, how := range []string{"account page", "proxy sign-out", "sessions revoke", "sessions revoke --user", "users disable"} {
			t.Run(cache+"/"+how, func(t *testing.T) { endWithoutAnIndex(t, cache, how) })
		}
	}
}

// endWithoutAnIndex is one case of TestOwnProviderSessionsEndWithoutAnIndex.
// Uncached, no replica keeps a session in memory: the logout token the
// provider sends the proxy finds none to delete, and the ended session's
// record stays in the store, refused by the provider-session check alone.
func endWithoutAnIndex(t *testing.T, cache, how string) {
	cfg := redistest.Config(t)
	up := tokenEcho(t)
	// Each replica (and the admin command) opens its own store
	// from the file, as separate processes would.
	src := strings.NewReplacer("SHORT", "30s", "UP", up.URL).Replace(longCacheConfig)
	if cache == "uncached" {
		src = strings.Replace(src, "proxy: {session_cache: 30s, session_cache_invalidated: 1h}", "proxy: {session_cache: 0s}", 1)
		if !strings.Contains(src, "session_cache: 0s") {
			t.Fatal("the configuration's proxy line changed")
		}
	}
	src = strings.Replace(src, "store: {type: memory}", fmt.Sprintf("store: {type: redis, redis: {addrs: [%q], key_prefix: %q}}", cfg.Addrs[0], cfg.KeyPrefix), 1)
	r1 := servertest.StartWith(t, src, servertest.Options{})
	r2 := servertest.StartWith(t, src, servertest.Options{PublicURL: r1.URL})
	host := r1.HTTP.Listener.Addr().String()
	replicas := map[string]string{"replica 1": r1.Addr, "replica 2": r2.Addr}

	alice, eve := servertest.NewBrowser(t), servertest.NewBrowser(t)
	for user, b := range map[string]*servertest.Browser{"alice": alice, "eve": eve} {
		if p := b.SignInDev(r1.URL+"/app/start", user); p.Status != http.StatusOK {
			t.Fatalf("%s's sign-in ended at %d %s", user, p.Status, p.URL)
		}
	}
	ac, ec := proxyCookie(t, alice, r1.URL), proxyCookie(t, eve, r1.URL)
	aliceToken, aliceSID, _ := strings.Cut(ac.Value, ".")
	eveToken, eveSID, _ := strings.Cut(ec.Value, ".")
	if aliceSID == "" || eveSID == "" {
		t.Fatalf("cookies without a provider session hint: %q %q", ac.Value, ec.Value)
	}
	for name, addr := range replicas {
		for _, c := range []*http.Cookie{ac, ec} {
			if s := proxied(t, addr, host, c, "/app/x"); s != http.StatusOK {
				t.Fatalf("%s before the ending: %d", name, s) // and now cached there
			}
		}
	}
	if keys := proxyIndexKeys(t, cfg); len(keys) != 0 {
		t.Errorf("the proxy indexed its sessions at its own provider: %v", keys)
	}

	switch how {
	case "account page":
		acct := alice.Get(r1.URL + "/account")
		action, fields := acct.Form(t, "/logout")
		if p := alice.PostForm(action, fields); p.Status >= 400 {
			t.Fatalf("sign-out: %d", p.Status)
		}
	case "proxy sign-out":
		page := alice.Get(r1.URL + "/.aero2/sign_out")
		action, fields := page.Form(t, "/.aero2/sign_out")
		if p := alice.PostForm(r1.URL+action, fields); p.Status >= 400 {
			t.Fatalf("sign-out: %d", p.Status)
		}
	default: // the admin commands, from a process of their own (server.OpenAdmin)
		adm, err := server.OpenAdmin(t.Context(), r1.Config, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer adm.Close()
		ss, err := adm.Sessions(t.Context(), "default", "")
		if err != nil {
			t.Fatal(err)
		}
		var userID string
		for _, s := range ss {
			if s.ID == aliceSID {
				userID = s.UserID
			}
		}
		if userID == "" {
			t.Fatalf("alice's provider session %s is not among %d listed", aliceSID, len(ss))
		}
		switch how {
		case "sessions revoke":
			_, err = adm.RevokeSession(t.Context(), "default", aliceSID)
		case "sessions revoke --user":
			_, _, err = adm.RevokeUserSessions(t.Context(), "default", userID)
		case "users disable":
			_, _, err = adm.DisableUser(t.Context(), "default", userID)
		}
		if err != nil {
			t.Fatalf("%s: %v", how, err)
		}
	}

	start := time.Now()
	for name, addr := range replicas {
		for {
			s, loc := proxiedWhere(t, addr, host, ac, "/app/x")
			if s != http.StatusOK {
				if s != http.StatusFound && s != http.StatusSeeOther || !strings.Contains(loc, "/oauth2/") {
					t.Errorf("%s: the ended session got %d %q, want a redirect to sign in", name, s, loc)
				}
				break
			}
			if time.Since(start) > time.Second {
				t.Fatalf("%s still admits the ended session after %s (its cache is 30s)", name, time.Since(start))
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Logf("%s refused the ended session %s after the ending returned", name, time.Since(start))
	}
	// A forged cookie selects nobody else: the ended session's token
	// with eve's live provider session named is still refused, and
	// eve's token with alice's ended one named is still eve.
	forged := *ac
	forged.Value = aliceToken + "." + eveSID
	eveForged := *ec
	eveForged.Value = eveToken + "." + aliceSID
	for name, addr := range replicas {
		if s := proxied(t, addr, host, &forged, "/app/x"); s == http.StatusOK {
			t.Errorf("%s: the ended session's token, naming eve's provider session, was admitted", name)
		}
		for _, c := range []*http.Cookie{ec, &eveForged} {
			if s := proxied(t, addr, host, c, "/app/x"); s != http.StatusOK {
				t.Errorf("%s: eve's session (cookie %q) after alice's ended: %d", name, c.Value[len(eveToken):], s)
			}
		}
	}
	// Not only cached copies: a replica that never saw the session
	// reads it from the store, and refuses it.
	r3 := servertest.StartWith(t, src, servertest.Options{PublicURL: r1.URL})
	if s := proxied(t, r3.Addr, host, ac, "/app/x"); s == http.StatusOK {
		t.Error("a third replica admits the ended session")
	}
	if s := proxied(t, r3.Addr, host, ec, "/app/x"); s != http.StatusOK {
		t.Errorf("a third replica refuses eve's session: %d", s)
	}
}

// proxiedWhere is proxied with the Location of the answer.
func proxiedWhere(t *testing.T, addr, host string, cookie *http.Cookie, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", addr+path, nil)
	req.Host = host
	req.AddCookie(cookie)
	res, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, res.Header.Get("Location")
}

// proxyIndexKeys lists the proxy's back-channel index sets in Redis.
func proxyIndexKeys(t *testing.T, rc config.Redis) []string {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: rc.Addrs[0]})
	defer c.Close()
	var out []string
	iter := c.Scan(t.Context(), 0, rc.KeyPrefix+":*", 1000).Iterator()
	for iter.Next(t.Context()) {
		if k := iter.Val(); strings.Contains(k, "proxy-sid:") || strings.Contains(k, "proxy-sub:") {
			out = append(out, k)
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
