package redis_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/redis"
	"github.com/aero2/aero2/store/redis/redistest"
	"github.com/aero2/aero2/store/storetest"
)

// The tests below run on a real Redis Cluster of three masters that the
// package starts once (redistest.ClusterServer).

func TestClusterConformance(t *testing.T) {
	c := redistest.ClusterServer(t)
	storetest.Run(t, func(t *testing.T) store.Store { return c.Open(t) })
}

// TestClusterConformanceApplicationLayout: the one-slot layout of earlier
// versions (key_layout: application), kept for deployments not yet
// copied, still passes on Cluster.
func TestClusterConformanceApplicationLayout(t *testing.T) {
	c := redistest.ClusterServer(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		cfg := c.Config(t)
		cfg.KeyLayout = "application"
		s := c.OpenWith(t, cfg)
		return s
	})
}

func TestClusterAdminConformance(t *testing.T) {
	c := redistest.ClusterServer(t)
	storetest.RunAdmin(t, func(t *testing.T) storetest.AdminStore { return c.Open(t) })
}

// signIn writes and reads what one federated sign-in and its code
// exchange write and read in the store, in the order the server does:
// the rate limits of the address and the account, the login state
// (created, then taken on the callback), the user with its identity, the
// browser session, the authorization code with its indexes, and the
// token commit — the code taken (its single-use guard), the tokens and
// their grant indexes, guarded by the grant's tombstone — then one read of the
// session and an introspection-style read of the access token.
func signIn(ctx context.Context, s store.Store, app, ip string, i int) error {
	id := rand.Text()
	user, sid, grant := "u-"+id, "s-"+id, "g-"+id
	rl := store.Rate{Requests: 1 << 20, Period: time.Second, Burst: 1 << 20}
	res, err := s.RateLimit(ctx, app,
		store.RateBucket{Key: "rl:login:a:" + ip, Rate: rl, N: 1},
		store.RateBucket{Key: "rl:login:s:" + user, Rate: rl, N: 1})
	if err != nil {
		return fmt.Errorf("rate limit: %w", err)
	}
	if !res.Allowed {
		return errors.New("rate limit refused")
	}
	state := "login:state:" + id
	if err := s.Create(ctx, app, state, []byte(`{"return":"/"}`), time.Minute); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if _, err := s.Take(ctx, app, state); err != nil {
		return fmt.Errorf("take state: %w", err)
	}
	now := time.Now().UTC()
	u := &store.User{ID: user, App: app, Email: id + "@example.com", EmailVerified: true, CreatedAt: now, LastLogin: now}
	ident := &store.Identity{App: app, IDP: "corp", Subject: "sub-" + id, UserID: user, Email: u.Email, EmailVerified: true, LinkedAt: now, LastLogin: now}
	if _, _, err := s.UserByIdentity(ctx, app, "corp", ident.Subject); !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("identity lookup: %v", err)
	}
	if err := s.CreateUser(ctx, u, ident); err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	if err := s.CreateSession(ctx, &store.Session{ID: sid, App: app, UserID: user, IDP: "corp", AuthTime: now, CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(time.Hour)}, time.Hour); err != nil {
		return fmt.Errorf("session: %w", err)
	}
	code := "c-" + id
	if err := s.Create(ctx, app, "oauth:code:"+code, []byte(`{"id":"`+grant+`"}`), time.Minute); err != nil {
		return fmt.Errorf("code: %w", err)
	}
	if err := s.Put(ctx, app, "oauth:pkce:"+code, []byte("challenge"), time.Minute); err != nil {
		return fmt.Errorf("pkce: %w", err)
	}
	if err := s.SetAdd(ctx, app, "oauth:sid:"+sid, time.Hour, grant); err != nil {
		return fmt.Errorf("sid index: %w", err)
	}
	vals, err := s.GetMany(ctx, app, "oauth:code:"+code)
	if err != nil || vals[0] == nil {
		return fmt.Errorf("read code: %v %q", err, vals)
	}
	at, rt := "at-"+id, "rt-"+id
	if err := s.Apply(ctx, app,
		store.Op{Kind: store.OpTake, Key: "oauth:code:" + code},
		store.Op{Kind: store.OpPut, Key: "oauth:at:" + at, Value: []byte(`{"id":"` + grant + `"}`), TTL: time.Hour},
		store.Op{Kind: store.OpSetAdd, Key: "oauth:grant-at:" + grant, TTL: time.Hour, Members: []string{at}},
		store.Op{Kind: store.OpPut, Key: "oauth:rt:" + rt, Value: []byte(`{"id":"` + grant + `"}`), TTL: time.Hour},
		store.Op{Kind: store.OpSetAdd, Key: "oauth:grant-rt:" + grant, TTL: time.Hour, Members: []string{rt}},
		store.Op{Kind: store.OpAbsent, Key: "oauth:grant-revoked:" + grant},
		store.Op{Kind: store.OpDelete, Key: "oauth:pkce:" + code},
	); err != nil {
		return fmt.Errorf("token commit: %w", err)
	}
	if sess, err := s.GetSession(ctx, app, sid); err != nil || sess.UserID != user {
		return fmt.Errorf("read session: %v", err)
	}
	if err := s.TouchSession(ctx, &store.Session{ID: sid, App: app, UserID: user, LastSeen: time.Now()}, time.Hour); err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	if v, err := s.Get(ctx, app, "oauth:at:"+at); err != nil || len(v) == 0 {
		return fmt.Errorf("read access token: %v", err)
	}
	if got, _, err := s.UserByIdentity(ctx, app, "corp", ident.Subject); err != nil || got.ID != user {
		return fmt.Errorf("identity after sign-up: %v", err)
	}
	return nil
}

// returning is the sign-in of a user who has an account already: found
// by identity, profile updated (WATCH and MULTI of the user), identity
// updated, a new session.
func returning(ctx context.Context, s store.Store, app, subject string) error {
	u, id, err := s.UserByIdentity(ctx, app, "corp", subject)
	if err != nil {
		return fmt.Errorf("returning user: %w", err)
	}
	now := time.Now().UTC()
	u.LastLogin, id.LastLogin = now, now
	if err := s.UpdateUser(ctx, u); err != nil {
		return fmt.Errorf("update user: %w", err)
	}
	if err := s.UpdateIdentity(ctx, id); err != nil {
		return fmt.Errorf("update identity: %w", err)
	}
	sid := "s-" + rand.Text()
	if err := s.CreateSession(ctx, &store.Session{ID: sid, App: app, UserID: u.ID, IDP: "corp", AuthTime: now, CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(time.Hour)}, time.Hour); err != nil {
		return fmt.Errorf("session: %w", err)
	}
	if ss, err := s.UserSessions(ctx, app, u.ID); err != nil || len(ss) == 0 {
		return fmt.Errorf("user sessions: %v", err)
	}
	return nil
}

// keysPerMaster counts, on each master, the keys of the store's prefix.
func keysPerMaster(t *testing.T, c *redistest.Cluster, prefix string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, a := range c.Addrs {
		out[a] = 0
		n := c.Node(t, a)
		role, err := n.Do(t.Context(), "ROLE").Slice()
		if err != nil || role[0] != "master" {
			t.Fatalf("%s is not a master: %v %v", a, role, err)
		}
		iter := n.Scan(t.Context(), 0, prefix+":*", 1000).Iterator()
		for iter.Next(t.Context()) {
			out[a]++
		}
		if err := iter.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestClusterSpread: the keys that sign-ins of one application leave
// are spread over the three masters, each within ±20% of a third.
func TestClusterSpread(t *testing.T) {
	c := redistest.ClusterServer(t)
	cfg := c.Config(t)
	s := c.OpenWith(t, cfg)
	const n = 300
	for i := range n {
		if err := signIn(t.Context(), s, "app", "203.0.113.7", i); err != nil {
			t.Fatalf("sign-in %d: %v", i, err)
		}
	}
	per := keysPerMaster(t, c, cfg.KeyPrefix)
	total := 0
	for _, k := range per {
		total += k
	}
	mean := float64(total) / 3
	t.Logf("%d sign-ins of one application: %d keys, per master %v (mean %.0f)", n, total, per, mean)
	for a, k := range per {
		if dev := (float64(k) - mean) / mean; dev > 0.2 || dev < -0.2 {
			t.Errorf("master %s holds %d of %d keys: %+.0f%% from a third, want within ±20%%", a, k, total, 100*dev)
		}
	}
}

// redirects counts the MOVED, ASK and TRYAGAIN answers a cluster client's
// nodes got: the proof that a test's migration was met by its load.
type redirects struct{ moved, ask, tryAgain atomic.Int64 }

func (r *redirects) count(err error) {
	switch {
	case err == nil:
	case strings.HasPrefix(err.Error(), "MOVED "):
		r.moved.Add(1)
	case strings.HasPrefix(err.Error(), "ASK "):
		r.ask.Add(1)
	case strings.HasPrefix(err.Error(), "TRYAGAIN "):
		r.tryAgain.Add(1)
	}
}

func (r *redirects) DialHook(next goredis.DialHook) goredis.DialHook { return next }
func (r *redirects) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		err := next(ctx, cmd)
		r.count(err)
		return err
	}
}
func (r *redirects) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		err := next(ctx, cmds)
		for _, c := range cmds {
			r.count(c.Err())
		}
		return err
	}
}

// TestClusterMigrationUnderLoad: sign-ins run on eight workers while
// slots that they use move between masters — the slot of the shared
// rate-limit bucket of their address (every sign-in uses it) and slots of
// users, sessions and grants written moments before — and none fails.
func TestClusterMigrationUnderLoad(t *testing.T) {
	c := redistest.ClusterServer(t)
	cfg := c.Config(t)
	s := c.OpenWith(t, cfg)
	var red redirects
	cc := s.Client().(*goredis.ClusterClient)
	cc.OnNewNode(func(n *goredis.Client) { n.AddHook(&red) })
	if err := cc.ForEachShard(t.Context(), func(ctx context.Context, n *goredis.Client) error {
		n.AddHook(&red)
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	const app, ip = "app", "198.51.100.9"
	// Keys already in place before the load: some sign-ins, whose slots
	// are moved below while the load reads and writes beside them.
	for i := range 20 {
		if err := signIn(t.Context(), s, app, ip, i); err != nil {
			t.Fatalf("warm-up sign-in %d: %v", i, err)
		}
	}
	// One returning user per worker, whose records every sign-in of the
	// worker reads and writes again.
	now := time.Now().UTC()
	for w := range 8 {
		sub := fmt.Sprintf("regular-%d", w)
		u := &store.User{ID: "u-" + sub, App: app, Email: sub + "@example.com", EmailVerified: true, CreatedAt: now, LastLogin: now}
		if err := s.CreateUser(t.Context(), u, &store.Identity{App: app, IDP: "corp", Subject: sub, UserID: u.ID, LinkedAt: now, LastLogin: now}); err != nil {
			t.Fatal(err)
		}
	}
	hot := redis.Slot(cfg.KeyPrefix + ":" + app + ":rl:{rl:login:a:" + ip + "}")
	slots := []int{hot}
	var keys []string
	for _, a := range c.Addrs {
		ks, err := c.Node(t, a).Keys(t.Context(), cfg.KeyPrefix+":*").Result() // this test's few hundred
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, ks...)
	}
	seen := map[int]bool{hot: true}
	regular := map[int]bool{}
	for w := range 8 { // the returning users' records
		sl := redis.Slot(cfg.KeyPrefix + ":" + app + ":u:{u-regular-" + fmt.Sprint(w) + "}")
		if !seen[sl] {
			seen[sl] = true
			regular[sl] = true
			slots = append(slots, sl)
		}
	}
	for _, k := range keys {
		if sl := redis.Slot(k); !seen[sl] && len(slots) < 48 {
			seen[sl] = true
			slots = append(slots, sl)
		}
	}

	ctx, stop := context.WithCancel(t.Context())
	var ok, failed atomic.Int64
	var mu sync.Mutex
	var firstErrs []string
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := signIn(rctx, s, app, ip, w*1_000_000+i)
				if err == nil {
					err = returning(rctx, s, app, fmt.Sprintf("regular-%d", w))
				}
				cancel()
				if err != nil {
					failed.Add(1)
					mu.Lock()
					if len(firstErrs) < 5 {
						firstErrs = append(firstErrs, err.Error())
					}
					mu.Unlock()
				} else {
					ok.Add(1)
				}
			}
		})
	}
	time.Sleep(200 * time.Millisecond) // the load is running
	start := time.Now()
	before := ok.Load()
	movedKeys, moves := 0, 0
	for _, sl := range slots {
		// Each slot moves once, keys and all, the hot slot and the
		// returning users' among them. Moving one slot back and forth
		// within seconds (three rounds) made the fixture flaky: in 2 of 4
		// runs the masters' views of the slot then diverged for longer
		// than 30 s (config epochs gossiped out of order), before any
		// sign-in failed. Left for later: a fixture that reshards as
		// redis-cli does, waiting for the epochs to settle.
		rounds := 1
		for range rounds {
			from, to, n := c.MigrateSlot(t, sl, 5*time.Millisecond)
			movedKeys += n
			moves++
			if sl == hot {
				t.Logf("hot slot %d: %s -> %s, %d keys", sl, from, to, n)
			}
		}
	}
	during := ok.Load() - before
	elapsed := time.Since(start)
	time.Sleep(200 * time.Millisecond)
	stop()
	wg.Wait()
	t.Logf("migrated %d slot moves (%d keys) in %v; %d sign-ins completed meanwhile, %d in all, %d failed; redirects met: MOVED %d, ASK %d, TRYAGAIN %d",
		moves, movedKeys, elapsed.Round(time.Millisecond), during, ok.Load(), failed.Load(), red.moved.Load(), red.ask.Load(), red.tryAgain.Load())
	if failed.Load() != 0 {
		t.Errorf("%d sign-ins failed during the migration; first: %s", failed.Load(), strings.Join(firstErrs, "; "))
	}
	if during == 0 {
		t.Error("no sign-in completed while the slots moved: the test measured nothing")
	}
	if red.ask.Load()+red.moved.Load()+red.tryAgain.Load() == 0 {
		t.Error("the load met no MOVED, ASK or TRYAGAIN: the migration did not touch it")
	}
	// Everything written is still there, on its new master.
	for i := range 20 {
		if err := signIn(t.Context(), s, app, ip, 10_000_000+i); err != nil {
			t.Fatalf("sign-in after the migration: %v", err)
		}
	}
}

// TestClusterTimedOutCommandIsNotSentAgain: a command whose answer timed
// out may have run; the cluster client must not send it again (go-redis
// retries timeouts up to max_redirects times on Cluster). A master is
// stalled with DEBUG SLEEP while a rate limit is spent on it: the call
// fails (503 for its request) and, once the master wakes, exactly one
// request was spent, not one per attempt.
func TestClusterTimedOutCommandIsNotSentAgain(t *testing.T) {
	c := redistest.ClusterServer(t)
	cfg := c.Config(t)
	cfg.ReadTimeout, cfg.WriteTimeout = 150*time.Millisecond, 150*time.Millisecond
	s := c.OpenWith(t, cfg)
	const app = "app"
	bucket := store.RateBucket{Key: "rl:once:a:192.0.2.8", Rate: store.Rate{Requests: 1, Period: time.Hour, Burst: 100}, N: 1}
	owner := c.Owner(t, redis.Slot(cfg.KeyPrefix+":"+app+":rl:{"+bucket.Key+"}"))
	// The store knows the cluster's layout before the stall.
	if _, err := s.RateLimit(t.Context(), app, store.RateBucket{Key: bucket.Key, Rate: bucket.Rate}); err != nil {
		t.Fatal(err)
	}
	slept := make(chan error, 1)
	go func() { slept <- c.Node(t, owner).Do(context.Background(), "DEBUG", "SLEEP", "1.5").Err() }()
	time.Sleep(100 * time.Millisecond) // the master sleeps
	_, err := s.RateLimit(t.Context(), app, bucket)
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("a spend on a stalled master: %v, want ErrUnavailable", err)
	}
	if err := <-slept; err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // what reached the master has run
	res, err := s.RateLimit(t.Context(), app, store.RateBucket{Key: bucket.Key, Rate: bucket.Rate})
	if err != nil {
		t.Fatal(err)
	}
	if res.Remaining != 99 && res.Remaining != 100 {
		t.Fatalf("after one timed-out spend the bucket has %d of 100 left: the spend was sent %d times", res.Remaining, 100-res.Remaining)
	}
	t.Logf("after one timed-out spend: %d of 100 left", res.Remaining)
}

// between runs a function once, the first time a pipeline with a script
// is sent: between a multi-slot batch's guards and its writes.
type between struct {
	armed atomic.Bool
	fn    func()
}

func (b *between) DialHook(next goredis.DialHook) goredis.DialHook          { return next }
func (b *between) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook { return next }
func (b *between) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		for _, c := range cmds {
			if c.Name() == "evalsha" && b.armed.CompareAndSwap(true, false) {
				b.fn()
				break
			}
		}
		return next(ctx, cmds)
	}
}

// TestClusterBatchRevokedBetweenGuardAndWrite: the interleaving the
// tombstone guard exists for, forced. A token batch (its keys in several
// slots) has passed its guards; before its writes, the grant is revoked:
// the tombstone written, then the grant's index read (empty). The batch
// must notice the tombstone after its writes, take them back and fail —
// else its token would live, found by no revocation.
func TestClusterBatchRevokedBetweenGuardAndWrite(t *testing.T) {
	c := redistest.ClusterServer(t)
	cfg := c.Config(t)
	s := c.OpenWith(t, cfg)
	revoker := c.OpenWith(t, cfg)
	const app = "app"
	var seen []string
	b := &between{fn: func() {
		if err := revoker.Put(context.Background(), app, "oauth:grant-revoked:g1", []byte("1"), time.Hour); err != nil {
			t.Error(err)
		}
		seen, _ = revoker.SetMembers(context.Background(), app, "oauth:grant-at:g1")
	}}
	b.armed.Store(true)
	s.Client().AddHook(b)
	err := s.Apply(t.Context(), app,
		store.Op{Kind: store.OpCreate, Key: "oauth:code-used:c1", Value: []byte("1"), TTL: time.Hour},
		store.Op{Kind: store.OpPut, Key: "oauth:at:h1", Value: []byte("token"), TTL: time.Hour},
		store.Op{Kind: store.OpSetAdd, Key: "oauth:grant-at:g1", TTL: time.Hour, Members: []string{"h1"}},
		store.Op{Kind: store.OpAbsent, Key: "oauth:grant-revoked:g1"})
	if b.armed.Load() {
		t.Fatal("the batch sent no script: its keys were in one slot, or the test's hook missed it")
	}
	if len(seen) != 0 {
		t.Fatalf("the revoker saw %v: the writes ran before the tombstone, not after", seen)
	}
	if !errors.Is(err, store.ErrExists) {
		t.Errorf("a batch whose grant was revoked during it: %v, want ErrExists", err)
	}
	if v, err := s.Get(t.Context(), app, "oauth:at:h1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the revoked grant's token is stored: %q %v", v, err)
	}
	if m, _ := s.SetMembers(t.Context(), app, "oauth:grant-at:g1"); len(m) != 0 {
		t.Errorf("the revoked grant's index holds %v", m)
	}
}

// TestClusterKeysWithBraces: a key's hash tag runs from Aero2's '{' to
// the first '}' after it, so a client-chosen key, email or subject with a
// '}' (or a '{') in it ends the tag early and lands in another slot than
// its siblings would. Every operation must still find what it wrote:
// records, single-use takes, a guarded batch, a user with such an email
// and identity, sessions.
func TestClusterKeysWithBraces(t *testing.T) {
	c := redistest.ClusterServer(t)
	s := c.Open(t)
	ctx := t.Context()
	const app = "app"
	for _, k := range []string{"a}b", "{x}", "}", "{", "a{b}c}d", "k}" + strings.Repeat("z", 300)} {
		if err := s.Create(ctx, app, k, []byte("v"), time.Minute); err != nil {
			t.Fatalf("create %q: %v", k, err)
		}
		if v, err := s.Take(ctx, app, k); err != nil || string(v) != "v" {
			t.Fatalf("take %q: %q %v", k, v, err)
		}
		if _, err := s.Take(ctx, app, k); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second take %q: %v", k, err)
		}
	}
	ops := []store.Op{
		{Kind: store.OpCreate, Key: "used:}1", Value: []byte("1"), TTL: time.Minute},
		{Kind: store.OpPut, Key: "at:{2}", Value: []byte("tok"), TTL: time.Minute},
		{Kind: store.OpSetAdd, Key: "grant:}{3", TTL: time.Minute, Members: []string{"at:{2}"}},
		{Kind: store.OpAbsent, Key: "revoked:}3"},
	}
	if err := s.Apply(ctx, app, ops...); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(ctx, app, ops...); !errors.Is(err, store.ErrExists) {
		t.Fatalf("the batch applied twice: %v", err)
	}
	// Keys that begin with '}': an empty tag, so Redis hashes the whole
	// key (and so must Slot, or such a batch goes to one node as one
	// script across slots).
	if err := s.Apply(ctx, app,
		store.Op{Kind: store.OpPut, Key: "}a", Value: []byte("1"), TTL: time.Minute},
		store.Op{Kind: store.OpPut, Key: "}b", Value: []byte("2"), TTL: time.Minute},
		store.Op{Kind: store.OpSetAdd, Key: "}c", TTL: time.Minute, Members: []string{"m"}},
	); err != nil {
		t.Fatal(err)
	}
	if vals, err := s.GetMany(ctx, app, "}a", "}b"); err != nil || string(vals[0]) != "1" || string(vals[1]) != "2" {
		t.Fatalf("get many of '}' keys: %q %v", vals, err)
	}
	vals, err := s.GetMany(ctx, app, "at:{2}", "used:}1", "absent}")
	if err != nil || string(vals[0]) != "tok" || string(vals[1]) != "1" || vals[2] != nil {
		t.Fatalf("get many: %q %v", vals, err)
	}
	if m, err := s.SetMembers(ctx, app, "grant:}{3"); err != nil || len(m) != 1 || m[0] != "at:{2}" {
		t.Fatalf("set members: %q %v", m, err)
	}

	now := time.Now().UTC()
	u := &store.User{ID: "u}{1", App: app, Email: "a}b{c@example.com", EmailVerified: true, CreatedAt: now, LastLogin: now}
	id := &store.Identity{App: app, IDP: "corp", Subject: "s}1{2", UserID: u.ID, Email: u.Email, EmailVerified: true, LinkedAt: now, LastLogin: now}
	if err := s.CreateUser(ctx, u, id); err != nil {
		t.Fatal(err)
	}
	if got, _, err := s.UserByIdentity(ctx, app, "corp", "s}1{2"); err != nil || got.ID != u.ID {
		t.Fatalf("user by identity: %v %v", got, err)
	}
	if us, err := s.UsersByVerifiedEmail(ctx, app, "A}B{C@example.com"); err != nil || len(us) != 1 || us[0].ID != u.ID {
		t.Fatalf("users by email: %v %v", us, err)
	}
	u.Name = "Renamed"
	if err := s.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if ids, err := s.Identities(ctx, app, u.ID); err != nil || len(ids) != 1 {
		t.Fatalf("identities: %v %v", ids, err)
	}
	sess := &store.Session{ID: "s}{x", App: app, UserID: u.ID, CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(time.Hour)}
	if err := s.CreateSession(ctx, sess, time.Hour); err != nil {
		t.Fatal(err)
	}
	if ss, err := s.UserSessions(ctx, app, u.ID); err != nil || len(ss) != 1 || ss[0].ID != sess.ID {
		t.Fatalf("user sessions: %v %v", ss, err)
	}
	if got, v, err := s.GetSessionAndRecord(ctx, app, sess.ID, "at:{2}"); err != nil || got == nil || string(v) != "tok" {
		t.Fatalf("session and record: %v %q %v", got, v, err)
	}
	if err := s.DeleteSession(ctx, app, sess.ID); err != nil {
		t.Fatal(err)
	}
	if ss, _ := s.UserSessions(ctx, app, u.ID); len(ss) != 0 {
		t.Fatalf("sessions after delete: %d", len(ss))
	}
}
