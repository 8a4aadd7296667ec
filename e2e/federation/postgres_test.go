package federation_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/postgres/pgtest"
)

// manyUsersConfig is DevConfig with n dev users (u0…), so that sign-ins
// under load keep creating users, and without rate limits (the load comes
// from one address).
func manyUsersConfig(n int) string {
	var b strings.Builder
	b.WriteString(`
insecure_dev: true
server:
  public_url: "{{.URL}}"
  rate_limits: {disabled: true}
secrets:
  cookie_keys: ["` + servertest.CookieKey + `"]
  storage_key: "` + servertest.StorageKey + `"
identity_providers:
  - id: dev
    type: dev
    config:
      users:
`)
	for i := range n {
		fmt.Fprintf(&b, "        - {username: u%d, email: u%d@example.com}\n", i, i)
	}
	return b.String()
}

// signInAt runs one dev sign-in as user with a fresh browser and returns
// the status the flow ended on (200 on the account page), whether a 503
// carried Retry-After, and where it ended (path and body, for messages).
// It never fails the test: it runs in load goroutines.
func signInAt(base, user string) (status int, retryAfter bool, at string, err error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: servertest.AnswerWithin}
	page := func(res *http.Response, err error) (*servertest.Page, error) {
		if err != nil {
			return nil, err
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		return &servertest.Page{Status: res.StatusCode, URL: res.Request.URL, Header: res.Header, Body: string(body)}, err
	}
	p, err := page(c.Get(base + devAuthorize))
	if err != nil {
		return 0, false, "", err
	}
	if p.Status == http.StatusOK {
		action, v, ok := p.FindForm("/rp/idp/")
		if !ok {
			return 0, false, "", fmt.Errorf("no dev provider form at %s", p.URL)
		}
		v.Set("user", user)
		u, _ := p.URL.Parse(action)
		if p, err = page(c.PostForm(u.String(), v)); err != nil {
			return 0, false, "", err
		}
		if p.Status == http.StatusOK && p.URL.Path != "/account" {
			return 0, false, "", fmt.Errorf("sign-in ended at %s", p.URL)
		}
	}
	return p.Status, p.Header.Get("Retry-After") != "", p.URL.Path + " " + p.Body, nil
}

// TestSignInsWhilePostgresRestarts: sign-ins under load while PostgreSQL
// is stopped (as a crash would: -m immediate) and started again. Every
// answer is the account page or 503 with Retry-After — never a 500 —
// sign-ins succeed again by themselves once the database is back (no
// restart of Aero2), and no user was half-written (every user has its
// identity).
func TestSignInsWhilePostgresRestarts(t *testing.T) {
	p := pgtest.NewPrivate(t)
	st := pgtest.Open(t, config.Postgres{DSN: p.DSN, ConnectTimeout: 500 * time.Millisecond, QueryTimeout: time.Second, MaxConns: 8})
	const users = 400
	in := servertest.Start(t, manyUsersConfig(users), st)

	var (
		mu       sync.Mutex
		statuses = map[int]int{}
		bad      []string
		next     atomic.Int64
		okAfter  atomic.Int64 // successes since the restart
		restart  atomic.Bool
	)
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				user := fmt.Sprintf("u%d", next.Add(1)%users)
				status, retryAfter, at, err := signInAt(in.URL, user)
				mu.Lock()
				statuses[status]++
				switch {
				case err != nil:
					bad = append(bad, err.Error())
				case status == http.StatusOK:
					if restart.Load() {
						okAfter.Add(1)
					}
				case status == http.StatusServiceUnavailable && retryAfter:
				default:
					bad = append(bad, fmt.Sprintf("%s: %d (Retry-After %v) at %s", user, status, retryAfter, at))
				}
				mu.Unlock()
			}
		})
	}
	time.Sleep(time.Second) // under load
	p.Stop(t)
	time.Sleep(1500 * time.Millisecond) // sign-ins meet a database that is gone
	p.Start(t)
	restart.Store(true)
	deadline := time.Now().Add(20 * time.Second)
	for okAfter.Load() < 20 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	wg.Wait()
	t.Logf("answers: %v; sign-ins after the restart: %d", statuses, okAfter.Load())
	if len(bad) > 0 {
		t.Errorf("%d answers neither the account page nor 503 with Retry-After, e.g. %q", len(bad), bad[:min(len(bad), 5)])
	}
	if statuses[http.StatusServiceUnavailable] == 0 {
		t.Error("no 503 while PostgreSQL was down: the outage was not met")
	}
	if okAfter.Load() < 20 {
		t.Errorf("only %d sign-ins succeeded within 20s of the restart: no recovery by itself", okAfter.Load())
	}
	var orphans, created int
	err := st.Pool().QueryRow(t.Context(), `SELECT count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM identities i WHERE i.app = u.app AND i.user_id = u.id)), count(*) FROM users u`).Scan(&orphans, &created)
	if err != nil || orphans != 0 || created == 0 {
		t.Errorf("%d of %d users without an identity (%v)", orphans, created, err)
	}
}

// failSession fails the next CreateSession, as an outage between "user
// created" and "session created" would.
type failSession struct {
	store.Store
	armed atomic.Bool
}

func (f *failSession) CreateSession(ctx context.Context, s *store.Session, ttl time.Duration) error {
	if f.armed.CompareAndSwap(true, false) {
		return fmt.Errorf("%w: the database went away", store.ErrUnavailable)
	}
	return f.Store.CreateSession(ctx, s, ttl)
}

// TestSignInInterruptedAfterTheUserWasCreated (on PostgreSQL): a first
// sign-in that
// created its user but failed to create the session (503) leaves a user
// with its identity and nothing else; the next sign-in finds that user
// (no second user, no refusal) and signs in.
func TestSignInInterruptedAfterTheUserWasCreated(t *testing.T) {
	pg := pgtest.New(t)
	st := &failSession{Store: pg}
	st.armed.Store(true)
	in := servertest.Start(t, servertest.DevConfig, st)
	b := servertest.NewBrowser(t)
	if p := b.SignInDev(in.URL+devAuthorize, "alice"); p.Status != http.StatusServiceUnavailable || p.Header.Get("Retry-After") == "" {
		t.Fatalf("interrupted sign-in: %d (Retry-After %q) at %s", p.Status, p.Header.Get("Retry-After"), p.URL)
	}
	u, id, err := pg.UserByIdentity(t.Context(), config.DefaultApplication, "dev", "alice")
	if err != nil {
		t.Fatalf("the interrupted sign-in's user: %v", err)
	}
	p := b.SignInDev(in.URL+devAuthorize, "alice")
	if got := userID(t, p); got != u.ID || id.UserID != u.ID {
		t.Fatalf("the next sign-in is user %q, the interrupted one created %q", got, u.ID)
	}
	users, err := pg.UsersByVerifiedEmail(t.Context(), config.DefaultApplication, "alice@example.com")
	if err != nil || len(users) != 1 {
		t.Fatalf("users with alice's email: %d (%v), want 1", len(users), err)
	}
	var n int
	if err := pg.Pool().QueryRow(t.Context(), `SELECT count(*) FROM users`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d users after an interrupted and a full sign-in (%v), want 1", n, err)
	}
}
