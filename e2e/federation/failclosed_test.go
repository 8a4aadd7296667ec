package federation_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/aero2/aero2/federation/github/githubfake"
	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store/redis/redistest"
)

// TestSignInFailsClosedWhenTheStoreFails: with Redis down, hanging, or
// dying under the request, starting a sign-in, finishing one (whether
// Redis fails before the state is read, or after, while Aero2 talks to the
// identity provider) and signing out answer 503 with Retry-After, sign
// nobody in, and show nothing of the failure.
func TestSignInFailsClosedWhenTheStoreFails(t *testing.T) {
	p := redistest.PrivateServer(t)
	gh := githubfake.Start(t, githubfake.User{ID: 1, Login: "alice"})
	in := servertest.Start(t, githubConfig(gh, false), p.Open(t))
	start := in.URL + "/rp/authorize?idp=github&redirect_uri=/account"
	get := servertest.NewGet
	noSession := func(b *servertest.Browser) {
		t.Helper()
		if p := b.NoRedirects().Get(in.URL + "/account"); p.Status != http.StatusFound {
			t.Errorf("a failed sign-in signed the browser in: %d", p.Status)
		}
	}

	b := servertest.NewBrowser(t)
	b.FailsClosed(t, p, "/rp/authorize", get(start))
	b.FailsClosed(t, p, "callback", func() *http.Request {
		return get(b.FollowUntil(start, in.URL+"/rp/callback/"))()
	})
	noSession(b)

	// Redis fails after the callback took its state, while Aero2 redeems
	// the code at GitHub: creating the user or the session fails.
	for _, o := range []struct {
		name       string
		fail, back func(*redistest.Private, testing.TB)
	}{
		{"stalled", (*redistest.Private).Stall, (*redistest.Private).Resume},
		{"stopped", (*redistest.Private).Stop, (*redistest.Private).Start},
	} {
		cb := b.FollowUntil(start, in.URL+"/rp/callback/")
		gh.OnToken(func() { o.fail(p, t) })
		pg := b.NoRedirects().Get(cb)
		gh.OnToken(nil)
		o.back(p, t)
		servertest.AwaitStore(t, in.URL)
		servertest.CheckUnavailable(t, p, "callback, Redis "+o.name+" during the code exchange", pg)
		noSession(b)
	}

	// Sign-out: the session stays (with its cookie) until what it issued
	// can be revoked.
	if pg := b.SignInDev(in.URL+"/rp/authorize?idp=dev&redirect_uri=/account", "alice"); pg.URL.Path != "/account" {
		t.Fatalf("sign-in: %d %s", pg.Status, pg.URL)
	}
	pages := b.FailsClosed(t, p, "sign-out", func() *http.Request {
		action, f := b.Get(in.URL+"/account").Form(t, "/logout")
		return servertest.NewPost(action, f, "", "")()
	})
	for _, pg := range pages {
		if strings.Contains(strings.Join(pg.Header.Values("Set-Cookie"), "\n"), "aero2_session=;") {
			t.Error("a failed sign-out cleared the session cookie")
		}
	}
	if pg := b.NoRedirects().Get(in.URL + "/account"); pg.Status != http.StatusOK {
		t.Errorf("after failed sign-outs the session is gone: %d", pg.Status)
	}
}
