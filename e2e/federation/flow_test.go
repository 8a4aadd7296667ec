package federation_test

import (
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aero2/aero2/federation/github/githubfake"
	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store/memory"
	"github.com/aero2/aero2/store/redis/redistest"
)

const devAuthorize = "/rp/authorize?idp=dev&redirect_uri=/account"

// devCallback runs a dev sign-in as user up to Aero2's callback, and
// returns the callback URL without fetching it.
func devCallback(t *testing.T, b *servertest.Browser, in *servertest.Instance, user string) string {
	t.Helper()
	p := b.Get(in.URL + devAuthorize)
	action, v := p.Form(t, "/rp/idp/")
	v.Set("user", user)
	res, err := b.NoRedirects().Client.PostForm(action, v)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	cb := res.Header.Get("Location")
	if !strings.HasPrefix(cb, in.URL+"/rp/callback/dev?") {
		t.Fatalf("dev provider redirected to %q", cb)
	}
	return cb
}

func withParam(t *testing.T, raw, k, v string) string {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set(k, v)
	u.RawQuery = q.Encode()
	return u.String()
}

func TestStateMismatch(t *testing.T) {
	in := servertest.Start(t, servertest.DevConfig, nil)
	b := servertest.NewBrowser(t)
	cb := devCallback(t, b, in, "alice")
	// Another sign-in's state in this browser: a live state, bound to
	// this very browser, but not the one the code was issued for.
	other := devCallback(t, b, in, "alice")
	otherState, _ := url.Parse(other)
	p := b.Get(withParam(t, cb, "state", otherState.Query().Get("state")))
	if p.Status == 200 && p.URL.Path == "/account" {
		t.Fatalf("callback with another sign-in's state succeeded")
	}
	// A state nobody issued.
	if p := b.Get(withParam(t, cb, "state", strings.Repeat("A", 43))); p.Status != 400 || !strings.Contains(p.Body, "invalid_state") {
		t.Fatalf("forged state: %d\n%s", p.Status, p.Body)
	}
}

func TestStateCookie(t *testing.T) {
	in := servertest.Start(t, servertest.DevConfig, nil)
	b := servertest.NewBrowser(t)
	cb := devCallback(t, b, in, "alice")

	// The state cookie is HttpOnly and SameSite=Lax.
	res, err := b.NoRedirects().Client.Get(in.URL + devAuthorize)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	var sc string
	for _, c := range res.Header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "aero2_session_login=") {
			sc = c
		}
	}
	for _, want := range []string{"HttpOnly", "SameSite=Lax", "Max-Age=600"} {
		if !strings.Contains(sc, want) {
			t.Errorf("state cookie %q lacks %s", sc, want)
		}
	}

	// No cookie at all.
	if p := servertest.NewBrowser(t).Get(cb); p.Status != 400 || !strings.Contains(p.Body, "invalid_state") {
		t.Fatalf("callback without the state cookie: %d", p.Status)
	}
	// Another browser's cookie: it has its own binding.
	thief := servertest.NewBrowser(t)
	thief.Get(in.URL + devAuthorize)
	if p := thief.Get(cb); p.Status != 400 || !strings.Contains(p.Body, "not started in this browser") {
		t.Fatalf("callback with another browser's cookie: %d\n%s", p.Status, p.Body)
	}
}

func TestReplayedCallback(t *testing.T) {
	for name, st := range map[string]func(*testing.T) *servertest.Instance{
		"memory": func(t *testing.T) *servertest.Instance { return servertest.Start(t, servertest.DevConfig, nil) },
		"redis": func(t *testing.T) *servertest.Instance {
			return servertest.Start(t, servertest.DevConfig, servertest.SharedStore(t))
		},
	} {
		t.Run(name, func(t *testing.T) {
			in := st(t)
			b := servertest.NewBrowser(t)
			cb := devCallback(t, b, in, "alice")
			// The same callback, many times at once: exactly one signs in.
			var mu sync.Mutex
			var wg sync.WaitGroup
			wins := 0
			for range 8 {
				wg.Go(func() {
					status, loc := b.Redirect(cb)
					if status == 302 && strings.HasSuffix(loc, "/account") {
						mu.Lock()
						wins++
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if wins != 1 {
				t.Fatalf("%d of 8 concurrent deliveries of one callback signed in, want 1", wins)
			}
			if p := b.Get(cb); p.Status != 400 || !strings.Contains(p.Body, "already used or has expired") {
				t.Fatalf("replay: %d", p.Status)
			}
		})
	}
}

// clock is a settable clock for the memory store.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }
func newClock() *clock               { return &clock{now: time.Now()} }
func expired(p *servertest.Page) bool {
	return p.Status == 400 && strings.Contains(p.Body, "already used or has expired")
}
func signedIn(p *servertest.Page) bool   { return p.Status == 200 && p.URL.Path == "/account" }
func describe(p *servertest.Page) string { return p.URL.String() + " " + p.Body }

func TestExpiredState(t *testing.T) {
	t.Run("memory clock", func(t *testing.T) {
		// GitHub's (fake's) codes live on in real time; only the state
		// ages with the store's clock.
		clk := newClock()
		gh := githubfake.Start(t, githubfake.User{ID: 1, Login: "alice"})
		in := servertest.Start(t, githubConfig(gh, false), memory.New(memory.WithClock(clk.Now)))
		b := servertest.NewBrowser(t)
		start := in.URL + "/rp/authorize?idp=github&redirect_uri=/account"

		cb := b.FollowUntil(start, in.URL+"/rp/callback/")
		clk.Add(10*time.Minute - time.Second)
		if p := b.Get(cb); !signedIn(p) {
			t.Fatalf("callback 9m59s after the start: %s", describe(p))
		}
		cb = b.FollowUntil(start, in.URL+"/rp/callback/")
		clk.Add(10*time.Minute + time.Second)
		if p := b.Get(cb); !expired(p) {
			t.Fatalf("callback 10m01s after the start: %d %s", p.Status, describe(p))
		}
	})
	t.Run("redis", func(t *testing.T) {
		// Real Redis keeps real time: check that the state is stored
		// with a 10-minute TTL, then let Redis expire it (PEXPIRE) as it
		// would after 10 minutes, and check that the callback fails.
		st := redistest.New(t)
		in := servertest.Start(t, servertest.DevConfig, st)
		b := servertest.NewBrowser(t)
		cb := devCallback(t, b, in, "alice")
		u, _ := url.Parse(cb)
		ctx := t.Context()
		keys, err := st.Client().Keys(ctx, "*:{rp-state:"+u.Query().Get("state")+"}").Result() // store/redis/layout.go
		if err != nil || len(keys) != 1 {
			t.Fatalf("state key in Redis: %v %v", keys, err)
		}
		ttl, err := st.Client().PTTL(ctx, keys[0]).Result()
		if err != nil || ttl <= 9*time.Minute || ttl > 10*time.Minute {
			t.Fatalf("state TTL in Redis = %s (%v), want 10m", ttl, err)
		}
		if err := st.Client().PExpire(ctx, keys[0], time.Millisecond).Err(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		if p := b.Get(cb); !expired(p) {
			t.Fatalf("callback after Redis expired the state: %s", describe(p))
		}
	})
}

// githubConfig is the dev config plus a `github` provider at gh.
func githubConfig(gh *githubfake.Server, link bool) string {
	return fmt.Sprintf(`%s
  - id: github
    type: github
    link_by_email: %v
    config:
      client_id: "%s"
      client_secret: "%s"
      base_url: "%s"
`, servertest.DevConfig, link, gh.ClientID, gh.ClientSecret, gh.URL)
}

// TestCodeOfAnotherSignIn delivers GitHub's code for one sign-in with the
// state of another sign-in in the same browser: both states are live and
// bound to the browser, and GitHub does not bind codes to states, so it is
// the PKCE verifier stored with the state that refuses the code.
func TestCodeOfAnotherSignIn(t *testing.T) {
	gh := githubfake.Start(t, githubfake.User{ID: 1, Login: "alice"})
	in := servertest.Start(t, githubConfig(gh, false), nil)
	b := servertest.NewBrowser(t)
	start := in.URL + "/rp/authorize?idp=github&redirect_uri=/account"
	a := b.FollowUntil(start, in.URL+"/rp/callback/")
	other, _ := url.Parse(b.FollowUntil(start, in.URL+"/rp/callback/"))
	p := b.Get(withParam(t, a, "state", other.Query().Get("state")))
	if p.Status != 502 {
		t.Fatalf("code of another sign-in: %d %s", p.Status, describe(p))
	}
	// The attempt consumed the other sign-in's state.
	if p := b.Get(other.String()); !expired(p) {
		t.Fatalf("the other sign-in's callback after its state was used: %s", describe(p))
	}
}
