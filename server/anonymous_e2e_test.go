package server_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/memory"
	"github.com/aero2/aero2/store/redis"
	"github.com/aero2/aero2/store/redis/redistest"
)

// withServer adds keys to the server block of servertest.DevConfig.
func withServer(keys string) string {
	return strings.Replace(servertest.DevConfig, "server:\n", "server:\n"+keys, 1)
}

// anonStore records the size of every anonymous record written: parked
// authorization requests, relying-party and proxy sign-in states (by the
// key prefixes of authz, federation and proxy; should those change, the
// counts stay at zero and the tests fail).
type anonStore struct {
	store.Store
	mu    sync.Mutex
	sizes map[string][]int
}

var anonKinds = []string{"authz:pending:", "rp-state:", "proxy-state:"}

func newAnonStore(st store.Store) *anonStore { return &anonStore{Store: st, sizes: map[string][]int{}} }

func (a *anonStore) record(key string, n int) {
	for _, k := range anonKinds {
		if strings.HasPrefix(key, k) {
			a.mu.Lock()
			a.sizes[k] = append(a.sizes[k], n)
			a.mu.Unlock()
		}
	}
}

func (a *anonStore) Create(ctx context.Context, app, key string, v []byte, ttl time.Duration) error {
	err := a.Store.Create(ctx, app, key, v, ttl)
	if err == nil {
		a.record(key, len(v))
	}
	return err
}

func (a *anonStore) Put(ctx context.Context, app, key string, v []byte, ttl time.Duration) error {
	err := a.Store.Put(ctx, app, key, v, ttl)
	if err == nil {
		a.record(key, len(v))
	}
	return err
}

// written returns how many records of kind were written and the largest.
func (a *anonStore) written(kind string) (n, largest int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range a.sizes[kind] {
		largest = max(largest, s)
	}
	return len(a.sizes[kind]), largest
}

// anonBackends runs fn on a memory store and on the real Redis, each
// wrapped in an anonStore. For Redis it also returns a function that
// counts the live keys of a kind and their bytes as Redis stores them.
func anonBackends(t *testing.T, fn func(t *testing.T, st *anonStore, live func(kind string) (keys, bytes int))) {
	t.Run("memory", func(t *testing.T) {
		m := memory.New()
		t.Cleanup(func() { m.Close() })
		fn(t, newAnonStore(m), nil)
	})
	t.Run("redis", func(t *testing.T) {
		cfg := redistest.Config(t)
		rs, err := redis.Open(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rs.Close() })
		live := func(kind string) (keys, bytes int) {
			ctx := context.Background()
			c := rs.Client()
			it := c.Scan(ctx, 0, cfg.KeyPrefix+":*:r:{"+kind+"*", 1000).Iterator() // store/redis/layout.go
			for it.Next(ctx) {
				keys++
				n, err := c.MemoryUsage(ctx, it.Val()).Result()
				if err != nil {
					t.Fatal(err)
				}
				bytes += int(n)
			}
			if err := it.Err(); err != nil {
				t.Fatal(err)
			}
			return keys, bytes
		}
		fn(t, newAnonStore(rs), live)
	})
}

const anonLimit = 20

// anonConfig: a public client, a protected route, and anonymous_state at
// 20 per address (per 10 minutes).
func anonConfig(upstream string) string {
	return withServer(`  rate_limits:
    anonymous_state:
      per_address: {requests: 20, per: 10m}
`) + `
clients:
  - id: spa
    token_endpoint_auth_method: none
    redirect_uris: ["https://spa.example.com/cb"]
routes:
  - path: /app
    upstream: "` + upstream + `"
`
}

func challenge() string {
	v := make([]byte, 32)
	rand.Read(v)
	sum := sha256.Sum256([]byte(base64.RawURLEncoding.EncodeToString(v)))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// from sends r as if from client address addr, through the trusted proxy
// (loopback) in front.
func from(r *http.Request, addr string) *http.Request {
	r.Header.Set("X-Forwarded-For", addr)
	return r
}

var noFollowClient = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func do(t *testing.T, r *http.Request) *http.Response {
	t.Helper()
	res, err := noFollowClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res
}

// floodOneAddress sends 3×anonLimit requests from one address and checks
// the bound: exactly anonLimit answered kept (and stored under prefix,
// each under 1 KiB; on Redis, under 2 KiB each by MEMORY USAGE), the rest
// refused with 429 and Retry-After.
func floodOneAddress(t *testing.T, st *anonStore, live func(string) (int, int), prefix string, kept int, send func() *http.Response) {
	t.Helper()
	const sent = 3 * anonLimit
	var stored, refused int
	for range sent {
		switch res := send(); res.StatusCode {
		case kept:
			stored++
		case http.StatusTooManyRequests:
			if res.Header.Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
			refused++
		default:
			t.Fatalf("answered %d", res.StatusCode)
		}
	}
	n, largest := st.written(prefix)
	t.Logf("%d requests from one address: %d kept under %s (largest %d bytes), %d refused", sent, stored, prefix, largest, refused)
	if stored != anonLimit || n != anonLimit || refused != sent-anonLimit {
		t.Fatalf("kept %d (stored %d), refused %d: want %d kept, the rest refused", stored, n, refused, anonLimit)
	}
	if largest > 1024 {
		t.Fatalf("a record under %s is %d bytes: the oversized parameter was kept", prefix, largest)
	}
	if live != nil {
		keys, bytes := live(prefix)
		t.Logf("Redis: %d keys, %d bytes (MEMORY USAGE), %d bytes per request", keys, bytes, bytes/max(keys, 1))
		if keys != anonLimit || bytes > anonLimit*2048 {
			t.Fatalf("Redis holds %d records under %s in %d bytes", keys, prefix, bytes)
		}
	}
}

// TestAnonymousAuthorizeRequestsAreSmallAndBounded: cookie-less POSTs to
// /oauth2/authorize with a 60 KiB junk parameter. Each parks only the
// parameters Aero2 reads (well under 1 KiB instead of 60), and one address
// parks at most anonymous_state of them; the rest get 429 with
// Retry-After. Another address is not affected.
func TestAnonymousAuthorizeRequestsAreSmallAndBounded(t *testing.T) {
	anonBackends(t, func(t *testing.T, st *anonStore, live func(string) (int, int)) {
		in := servertest.Start(t, anonConfig("http://127.0.0.1:9"), st)
		junk := strings.Repeat("x", 60<<10)
		post := func(addr string) *http.Response {
			form := url.Values{
				"response_type": {"code"}, "client_id": {"spa"}, "redirect_uri": {"https://spa.example.com/cb"},
				"scope": {"openid profile"}, "state": {"s-" + rand.Text()}, "nonce": {rand.Text()},
				"code_challenge": {challenge()}, "code_challenge_method": {"S256"}, "junk": {junk},
			}
			r := httptest.NewRequest(http.MethodPost, in.URL+"/oauth2/authorize", strings.NewReader(form.Encode()))
			r.RequestURI = ""
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return do(t, from(r, addr))
		}
		floodOneAddress(t, st, live, "authz:pending:", http.StatusSeeOther, func() *http.Response { return post("198.51.100.7") })
		if res := post("198.51.100.8"); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("another address got %d", res.StatusCode)
		}
	})
}

// TestAnonymousProxySignInsAreSmallAndBounded: anonymous browsers on a
// protected route with a 60 KB query. Each sign-in state keeps the path
// without the query (cut: the query is too long to keep), and one address
// keeps at most anonymous_state of them.
func TestAnonymousProxySignInsAreSmallAndBounded(t *testing.T) {
	anonBackends(t, func(t *testing.T, st *anonStore, live func(string) (int, int)) {
		in := servertest.Start(t, anonConfig("http://127.0.0.1:9"), st)
		query := "?q=" + strings.Repeat("y", 60<<10)
		get := func(addr string) *http.Response {
			r := httptest.NewRequest(http.MethodGet, in.URL+"/app/report"+query, nil)
			r.RequestURI = ""
			r.Header.Set("Accept", "text/html")
			return do(t, from(r, addr))
		}
		floodOneAddress(t, st, live, "proxy-state:", http.StatusFound, func() *http.Response { return get("203.0.113.9") })
		if res := get("203.0.113.10"); res.StatusCode != http.StatusFound {
			t.Fatalf("another address got %d", res.StatusCode)
		}
	})
}

// TestAnonymousRelyingPartyStatesAreBounded: /rp/authorize keeps a sign-in
// state for anyone; one address keeps at most anonymous_state of them,
// each small (a return address longer than safeurl.MaxLen is refused).
func TestAnonymousRelyingPartyStatesAreBounded(t *testing.T) {
	anonBackends(t, func(t *testing.T, st *anonStore, live func(string) (int, int)) {
		in := servertest.Start(t, anonConfig("http://127.0.0.1:9"), st)
		get := func(addr, returnTo string) *http.Response {
			r := httptest.NewRequest(http.MethodGet, in.URL+"/rp/authorize?"+url.Values{"idp": {"dev"}, "redirect_uri": {returnTo}}.Encode(), nil)
			r.RequestURI = ""
			return do(t, from(r, addr))
		}
		if res := get("192.0.2.50", "/account?x="+strings.Repeat("z", 60<<10)); res.StatusCode != http.StatusBadRequest {
			t.Fatalf("a 60 KB return address: %d, want 400", res.StatusCode)
		}
		var started int
		for range 2 * anonLimit {
			switch res := get("192.0.2.50", "/account"); res.StatusCode {
			case http.StatusFound:
				started++
			case http.StatusTooManyRequests:
			default:
				t.Fatalf("/rp/authorize answered %d", res.StatusCode)
			}
		}
		n, largest := st.written("rp-state:")
		t.Logf("%d sign-in states (largest %d bytes)", n, largest)
		if started != anonLimit || n != anonLimit || largest > 1024 {
			t.Fatalf("%d started, %d stored, largest %d bytes: want %d, small", started, n, largest, anonLimit)
		}
		if live != nil {
			if keys, _ := live("rp-state:"); keys != anonLimit {
				t.Fatalf("Redis holds %d sign-in states", keys)
			}
		}
	})
}

// TestLongHostIsRefused: the Host header is bounded before anything reads
// it (a sign-in state keeps the origin it was started on).
func TestLongHostIsRefused(t *testing.T) {
	in := servertest.Start(t, anonConfig("http://127.0.0.1:9"), nil)
	r := httptest.NewRequest(http.MethodGet, in.URL+"/app/x", nil)
	r.RequestURI = ""
	r.Host = strings.Repeat("a", 300) + ".example.com"
	r.Header.Set("Accept", "text/html")
	if res := do(t, r); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("a 312-byte Host: %d, want 400", res.StatusCode)
	}
}
