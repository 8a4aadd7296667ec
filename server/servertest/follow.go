package servertest

import "strings"

// FollowUntil fetches start and follows redirects, without fetching the
// first URL that begins with prefix, and returns that URL: the way to stop
// a sign-in at Aero2's callback (prefix in.URL+"/rp/callback/") and then
// replay, alter or deliver it. It fails the test after 10 hops or on a
// page that does not redirect.
func (b *Browser) FollowUntil(start, prefix string) string {
	b.t.Helper()
	nb := b.NoRedirects()
	u := start
	for range 10 {
		if strings.HasPrefix(u, prefix) {
			return u
		}
		res, err := nb.Client.Get(u)
		if err != nil {
			b.t.Fatalf("GET %s: %v", u, err)
		}
		page := read(b.t, res)
		loc := res.Header.Get("Location")
		if res.StatusCode < 300 || res.StatusCode > 399 || loc == "" {
			b.t.Fatalf("GET %s: %d without a redirect on the way to %s:\n%s", u, res.StatusCode, prefix, page.Body)
		}
		u = resolve(res.Request.URL, loc)
	}
	b.t.Fatalf("more than 10 redirects from %s without reaching %s", start, prefix)
	return ""
}

// Redirect fetches u without following a redirect and returns the status
// and the Location.
func (b *Browser) Redirect(u string) (int, string) {
	b.t.Helper()
	res, err := b.NoRedirects().Client.Get(u)
	if err != nil {
		b.t.Fatalf("GET %s: %v", u, err)
	}
	read(b.t, res)
	return res.StatusCode, res.Header.Get("Location")
}
