package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aero2/aero2/server"
	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/redis/redistest"
)

// countingStore counts every call of every store operation, by name:
// each is one round trip to the backend (GetSessionAndRecord, GetMany and
// Apply included).
type countingStore struct {
	store.Store
	mu    sync.Mutex
	calls map[string]int
}

func (c *countingStore) count(op string) {
	c.mu.Lock()
	c.calls[op]++
	c.mu.Unlock()
}

// take returns the calls counted since the last take, and their total.
func (c *countingStore) take() (map[string]int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	got, n := c.calls, 0
	for _, v := range got {
		n += v
	}
	c.calls = map[string]int{}
	return got, n
}

func (c *countingStore) Create(ctx context.Context, app, key string, v []byte, ttl time.Duration) error {
	c.count("Create")
	return c.Store.Create(ctx, app, key, v, ttl)
}
func (c *countingStore) Put(ctx context.Context, app, key string, v []byte, ttl time.Duration) error {
	c.count("Put")
	return c.Store.Put(ctx, app, key, v, ttl)
}
func (c *countingStore) Get(ctx context.Context, app, key string) ([]byte, error) {
	c.count("Get")
	return c.Store.Get(ctx, app, key)
}
func (c *countingStore) Take(ctx context.Context, app, key string) ([]byte, error) {
	c.count("Take")
	return c.Store.Take(ctx, app, key)
}
func (c *countingStore) Delete(ctx context.Context, app string, keys ...string) error {
	c.count("Delete")
	return c.Store.Delete(ctx, app, keys...)
}
func (c *countingStore) SetAdd(ctx context.Context, app, key string, ttl time.Duration, m ...string) error {
	c.count("SetAdd")
	return c.Store.SetAdd(ctx, app, key, ttl, m...)
}
func (c *countingStore) SetMembers(ctx context.Context, app, key string) ([]string, error) {
	c.count("SetMembers")
	return c.Store.SetMembers(ctx, app, key)
}
func (c *countingStore) SetRemove(ctx context.Context, app, key string, m ...string) error {
	c.count("SetRemove")
	return c.Store.SetRemove(ctx, app, key, m...)
}
func (c *countingStore) Apply(ctx context.Context, app string, ops ...store.Op) error {
	c.count("Apply")
	return c.Store.Apply(ctx, app, ops...)
}
func (c *countingStore) GetMany(ctx context.Context, app string, keys ...string) ([][]byte, error) {
	c.count("GetMany")
	return c.Store.GetMany(ctx, app, keys...)
}
func (c *countingStore) CreateSession(ctx context.Context, s *store.Session, ttl time.Duration) error {
	c.count("CreateSession")
	return c.Store.CreateSession(ctx, s, ttl)
}
func (c *countingStore) GetSession(ctx context.Context, app, id string) (*store.Session, error) {
	c.count("GetSession")
	return c.Store.GetSession(ctx, app, id)
}
func (c *countingStore) TouchSession(ctx context.Context, s *store.Session, ttl time.Duration) error {
	c.count("TouchSession")
	return c.Store.TouchSession(ctx, s, ttl)
}
func (c *countingStore) DeleteSession(ctx context.Context, app, id string) error {
	c.count("DeleteSession")
	return c.Store.DeleteSession(ctx, app, id)
}
func (c *countingStore) UserSessions(ctx context.Context, app, uid string) ([]*store.Session, error) {
	c.count("UserSessions")
	return c.Store.UserSessions(ctx, app, uid)
}
func (c *countingStore) GetSessionAndRecord(ctx context.Context, app, id, key string) (*store.Session, []byte, error) {
	c.count("GetSessionAndRecord")
	return c.Store.GetSessionAndRecord(ctx, app, id, key)
}
func (c *countingStore) GetUser(ctx context.Context, app, id string) (*store.User, error) {
	c.count("GetUser")
	return c.Store.GetUser(ctx, app, id)
}
func (c *countingStore) UserByIdentity(ctx context.Context, app, idp, sub string) (*store.User, *store.Identity, error) {
	c.count("UserByIdentity")
	return c.Store.UserByIdentity(ctx, app, idp, sub)
}
func (c *countingStore) RateLimit(ctx context.Context, app string, b ...store.RateBucket) (store.RateResult, error) {
	c.count("RateLimit")
	return c.Store.RateLimit(ctx, app, b...)
}

// TestUncachedProxySessionIsOneStoreRoundTrip: a proxied request whose
// session is not in the proxy's cache costs one store round trip on
// Redis, which reads the proxy session's record and the provider session
// it depends on together; and a session ended at the provider still
// ends the proxy session at the next such read.
func TestUncachedProxySessionIsOneStoreRoundTrip(t *testing.T) {
	cs := &countingStore{Store: redistest.New(t), calls: map[string]int{}}
	up := tokenEcho(t)
	cfg := strings.Replace(servertest.DevConfig, "\nserver:\n", "\nserver:\n  rate_limits: {disabled: true}\n", 1) + `
proxy: {session_cache: 1ms}
routes:
  - {path: /app, upstream: "` + up.URL + `"}
`
	in := servertest.StartWith(t, cfg, servertest.Options{Store: cs})
	b := servertest.NewBrowser(t)
	if p := b.SignInDev(in.URL+"/app/start", "alice"); p.Status != http.StatusOK {
		t.Fatalf("sign-in ended at %d %s", p.Status, p.URL)
	}
	cookie := proxyCookie(t, b, in.URL)
	get := func() int {
		time.Sleep(5 * time.Millisecond) // session_cache lapses
		req, _ := http.NewRequest("GET", in.URL+"/app/x", nil)
		req.AddCookie(cookie)
		res, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	for i := range 3 {
		cs.take()
		if s := get(); s != http.StatusOK {
			t.Fatalf("request %d: %d", i, s)
		}
		if calls, n := cs.take(); n != 1 || calls["GetSessionAndRecord"] != 1 {
			t.Errorf("request %d: %d store calls, want 1 (GetSessionAndRecord): %v", i, n, sorted(calls))
		}
	}

	// The provider session ends (sign-out on the account page or at the
	// provider): the next uncached read refuses the proxy session.
	sessions, err := cs.Store.UserSessions(t.Context(), "default", userOf(t, cs))
	if err != nil || len(sessions) != 1 {
		t.Fatalf("alice's provider sessions: %v %v", sessions, err)
	}
	if err := cs.Store.DeleteSession(t.Context(), "default", sessions[0].ID); err != nil {
		t.Fatal(err)
	}
	if s := get(); s == http.StatusOK {
		t.Fatalf("after the provider session ended: %d, want a sign-in", s)
	}
}

// userOf is the ID of the one user the store's dev sign-in made.
func userOf(t *testing.T, st store.Store) string {
	t.Helper()
	u, _, err := st.UserByIdentity(t.Context(), "default", "dev", "alice")
	if err != nil {
		t.Fatalf("alice: %v", err)
	}
	return u.ID
}

func sorted(m map[string]int) []string {
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(out)
	return out
}

// BenchmarkUncachedProxySession: proxied GETs on Redis with no session
// cache (session_cache: 0), so that every request reads its session: with
// the cookie's provider session hint (one round trip, reading both
// together) and with the hint cut off (the two sequential reads cookies
// without one still take), in turns within one run.
//
//	go test -run '^$' -bench BenchmarkUncachedProxySession -benchmem ./server/
func BenchmarkUncachedProxySession(b *testing.B) {
	up := httptestServer(b)
	cfg := strings.Replace(servertest.DevConfig, "\nserver:\n", "\nserver:\n  rate_limits: {disabled: true}\n", 1) + `
proxy: {session_cache: 0s}
routes:
  - {path: /app, upstream: "` + up + `"}
`
	in := servertest.StartWith(b, cfg, servertest.Options{Store: redistest.New(b), Server: server.Options{Logger: slog.New(slog.DiscardHandler)}})
	br := servertest.NewBrowser(b)
	if p := br.SignInDev(in.URL+"/app/start", "alice"); p.Status != http.StatusOK {
		b.Fatalf("sign-in ended at %d %s", p.Status, p.URL)
	}
	pu, _ := url.Parse(in.URL)
	var hinted *http.Cookie
	for _, c := range br.Jar.Cookies(pu) {
		if c.Name == "aero2_proxy" {
			hinted = c
		}
	}
	if hinted == nil || !strings.Contains(hinted.Value, ".") {
		b.Fatalf("no proxy cookie with a provider session hint: %v", hinted)
	}
	token, _, _ := strings.Cut(hinted.Value, ".")
	plain := &http.Cookie{Name: hinted.Name, Value: token}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	get := func(c *http.Cookie) {
		req, _ := http.NewRequest("GET", in.URL+"/app/x", nil)
		req.AddCookie(c)
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			b.Fatalf("status %d", res.StatusCode)
		}
	}
	get(hinted)
	get(plain)
	var one, two time.Duration
	n := 0
	for b.Loop() {
		t0 := time.Now()
		get(hinted)
		t1 := time.Now()
		get(plain)
		one += t1.Sub(t0)
		two += time.Since(t1)
		n++
	}
	b.ReportMetric(float64(one)/float64(n), "one-trip-ns/req")
	b.ReportMetric(float64(two)/float64(n), "two-trip-ns/req")
	b.ReportMetric(float64(one)/float64(two), "ratio")
}

// httptestServer answers 1 KiB to every request.
func httptestServer(b *testing.B) string {
	body := strings.Repeat("a", 1024)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) }))
	b.Cleanup(up.Close)
	return up.URL
}
