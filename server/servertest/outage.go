package servertest

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aero2/aero2/store/redis/redistest"
)

// AnswerWithin bounds how long a request may take while the store fails.
// The private Redis's stores give up on a command after about half a
// second (redistest.PrivateIOTimeout); a handler that still has not
// answered after many times that is waiting on something that has no
// deadline.
const AnswerWithin = 10 * time.Second

// An outage is one way the store fails under a request: before it (Redis
// is down: connections are refused), or while it waits (Redis hangs:
// SIGSTOP; or Redis dies with the request's command in flight).
type outage struct {
	name string
	// begin makes the store fail; during runs while the request is in
	// flight; end brings the store back.
	begin, during, end func(p *redistest.Private, t testing.TB)
}

var outages = []outage{
	{"stopped", (*redistest.Private).Stop, nil, (*redistest.Private).Start},
	{"stalled", (*redistest.Private).Stall, nil, (*redistest.Private).Resume},
	{"stopped mid-request", (*redistest.Private).Stall, func(p *redistest.Private, t testing.TB) {
		time.Sleep(100 * time.Millisecond) // the request is waiting on Redis
		p.Stop(t)
	}, (*redistest.Private).Start},
}

// leaks are what an answer must not show of the failure behind it: Go's
// and Redis's error texts (and, checked apart, the store's address).
var leaks = []string{"redis", "dial ", "tcp", "refused", "timeout", "EOF", "deadline", "reset by peer", "broken pipe", "goroutine", "ErrUnavailable", "unavailable:"}

// FailsClosed sends a request once for every outage of the private Redis
// p, from the browser (its cookies, no redirects followed), and checks
// each answer: 503 with Retry-After, within AnswerWithin, and nothing of
// the failure in the body. newReq makes the request while Redis still
// works (it may use the store: sign in, get a fresh code), then Redis
// fails. Redis is running again when FailsClosed returns, with every write
// it had answered. It returns the answers, for checks of their own.
func (b *Browser) FailsClosed(t *testing.T, p *redistest.Private, what string, newReq func() *http.Request) []*Page {
	t.Helper()
	c := *b.NoRedirects().Client
	c.Timeout = AnswerWithin
	var pages []*Page
	for _, o := range outages {
		req := newReq()
		o.begin(p, t)
		type result struct {
			page *Page
			err  error
			took time.Duration
		}
		done := make(chan result, 1)
		go func() {
			start := time.Now()
			res, err := c.Do(req)
			if err != nil {
				done <- result{err: err, took: time.Since(start)}
				return
			}
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			done <- result{&Page{Status: res.StatusCode, URL: res.Request.URL, Header: res.Header, Body: string(body)}, err, time.Since(start)}
		}()
		if o.during != nil {
			o.during(p, t)
		}
		r := <-done
		o.end(p, t)
		AwaitStore(t, req.URL.Scheme+"://"+req.URL.Host)
		if r.err != nil {
			t.Errorf("%s, Redis %s: no answer (%v after %v)", what, o.name, r.err, r.took.Round(time.Millisecond))
			continue
		}
		t.Logf("%s, Redis %s: %d after %v", what, o.name, r.page.Status, r.took.Round(time.Millisecond))
		CheckUnavailable(t, p, what+", Redis "+o.name, r.page)
		pages = append(pages, r.page)
	}
	return pages
}

// NewGet returns a maker of GET requests for u with the given header
// names and values, for FailsClosed.
func NewGet(u string, header ...string) func() *http.Request {
	return func() *http.Request {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		return req
	}
}

// NewPost returns a maker of form POSTs of v to u, for FailsClosed; with
// user set, they carry HTTP Basic credentials.
func NewPost(u string, v url.Values, user, pass string) func() *http.Request {
	return func() *http.Request {
		req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		return req
	}
}

// AwaitStore waits until the Aero2 at origin reaches its store again
// (/readyz answers 200): after a store refused connections, the
// connection pool tries to dial it again about once a second, and answers
// with the last failure until then.
func AwaitStore(t testing.TB, origin string) {
	t.Helper()
	ready := origin + "/readyz"
	deadline := time.Now().Add(AnswerWithin)
	for {
		res, err := http.Get(ready)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the store did not come back within %v (%s: %v)", AnswerWithin, ready, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// CheckUnavailable checks an answer given while the private Redis p
// failed: 503 with Retry-After, and nothing of the failure in the body.
func CheckUnavailable(t *testing.T, p *redistest.Private, what string, pg *Page) {
	t.Helper()
	if pg.Status != http.StatusServiceUnavailable || pg.Header.Get("Retry-After") == "" {
		t.Errorf("%s: %d, Retry-After %q; want 503 with Retry-After:\n%s", what, pg.Status, pg.Header.Get("Retry-After"), pg.Body)
	}
	_, port, _ := net.SplitHostPort(p.Addr)
	if strings.Contains(pg.Body, ":"+port) {
		t.Errorf("%s: the answer shows the store's address:\n%s", what, pg.Body)
	}
	for _, l := range leaks {
		if strings.Contains(strings.ToLower(pg.Body), strings.ToLower(l)) {
			t.Errorf("%s: the answer shows %q:\n%s", what, l, pg.Body)
		}
	}
}
