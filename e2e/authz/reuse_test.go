package authz_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aero2/aero2/server/servertest"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/memory"
)

// tokenReply is one token endpoint answer.
type tokenReply struct {
	Status       int
	Error        string `json:"error"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
}

// String says what came back, without the tokens themselves.
func (r tokenReply) String() string {
	return fmt.Sprintf("%d %s (access token %t, refresh token %t, ID token %t)", r.Status, r.Error, r.AccessToken != "", r.RefreshToken != "", r.IDToken != "")
}

// postToken sends a token request as the web client. Safe to call from
// any goroutine: it returns transport errors instead of failing the test.
func postToken(e *env, form url.Values) (tokenReply, error) {
	req, _ := http.NewRequest(http.MethodPost, e.in.URL+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("web", webSecret)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return tokenReply{}, err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	r := tokenReply{Status: res.StatusCode}
	if err := json.Unmarshal(body, &r); err != nil {
		return r, fmt.Errorf("token endpoint: %d %q", res.StatusCode, body)
	}
	return r, nil
}

func refreshForm(rt string) url.Values {
	return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
}

// activeForOwner introspects as the web client, the tokens' owner.
func activeForOwner(e *env, token string) bool {
	e.t.Helper()
	status, _, m := e.post("/oauth2/introspect", url.Values{"token": {token}}, "web", webSecret)
	if status != http.StatusOK {
		e.t.Fatalf("introspection: %d %v", status, m)
	}
	return m["active"] == true
}

// working lists which of the given tokens still do something: an access
// token active at introspection, a refresh token that refreshes.
func working(e *env, replies ...tokenReply) []string {
	e.t.Helper()
	var out []string
	for _, r := range replies {
		if r.AccessToken != "" && activeForOwner(e, r.AccessToken) {
			out = append(out, "access token")
		}
		if r.RefreshToken != "" {
			got, err := postToken(e, refreshForm(r.RefreshToken))
			if err != nil {
				e.t.Fatal(err)
			}
			if got.Status == http.StatusOK {
				out = append(out, "refresh token")
			} else if got.Error != "invalid_grant" {
				e.t.Fatalf("refresh with a revoked token: %d %s, want invalid_grant", got.Status, got.Error)
			}
		}
	}
	return out
}

// grant signs alice in with the web client and returns its first tokens.
func grant(e *env) tokenReply {
	e.t.Helper()
	f := newFlow(e.web())
	tok, err := e.exchange(f, e.login(e.browser(), f, "alice"))
	if err != nil {
		e.t.Fatal(err)
	}
	return tokenReply{Status: http.StatusOK, AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken}
}

// stall is a store that can hold a request at a chosen write while the
// test runs other requests: a token request at its commit (the batch with
// a single-use guard, an OpTake of the code or an OpCreate of the refresh
// token's "used" marker: it has read the code or refresh token unused and
// computed its tokens), or a revocation at its tombstone.
type stall struct {
	store.Store
	mu     sync.Mutex
	points []*point
}

// point is one armed place to stop; it fires once.
type point struct {
	match            func(key string, ops []store.Op) bool
	reached, release chan struct{}
	once             sync.Once
}

func (p *point) resume() { p.once.Do(func() { close(p.release) }) }

// at arms a point; the test's end releases it if the test did not.
func (s *stall) at(t *testing.T, match func(key string, ops []store.Op) bool) *point {
	p := &point{match: match, reached: make(chan struct{}), release: make(chan struct{})}
	s.mu.Lock()
	s.points = append(s.points, p)
	s.mu.Unlock()
	t.Cleanup(p.resume)
	return p
}

func (s *stall) wait(key string, ops []store.Op) {
	s.mu.Lock()
	var hit *point
	for i, p := range s.points {
		if p.match(key, ops) {
			hit = p
			s.points = append(s.points[:i], s.points[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	if hit != nil {
		close(hit.reached)
		<-hit.release
	}
}

func (s *stall) Apply(ctx context.Context, app string, ops ...store.Op) error {
	s.wait("", ops)
	return s.Store.Apply(ctx, app, ops...)
}

func (s *stall) Put(ctx context.Context, app, key string, value []byte, ttl time.Duration) error {
	s.wait(key, nil)
	return s.Store.Put(ctx, app, key, value, ttl)
}

// commit matches a token request's commit.
func commit(_ string, ops []store.Op) bool {
	for _, op := range ops {
		if op.Kind == store.OpCreate || op.Kind == store.OpTake {
			return true
		}
	}
	return false
}

// tombstone matches the write that marks a grant revoked.
func tombstone(key string, _ []store.Op) bool { return strings.HasPrefix(key, "oauth:grant-revoked:") }

// stallStores runs fn on a stall over memory and over the real Redis.
func stallStores(t *testing.T, fn func(t *testing.T, st *stall)) {
	t.Run("memory", func(t *testing.T) { fn(t, &stall{Store: memory.New()}) })
	t.Run("redis", func(t *testing.T) { fn(t, &stall{Store: servertest.SharedStore(t)}) })
}

// held starts a token request that stops where match says, and returns a
// function that lets it finish and gives its answer.
func held(t *testing.T, e *env, st *stall, match func(string, []store.Op) bool, form url.Values) func() tokenReply {
	t.Helper()
	p := st.at(t, match)
	done := make(chan tokenReply, 1)
	go func() {
		r, err := postToken(e, form)
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	<-p.reached
	return func() tokenReply {
		p.resume()
		return <-done
	}
}

// TestRefreshReuseInterleavings runs, with a controlled order, the
// interleavings in which a refresh family used to survive its reuse
// detection. Once a refresh token is presented twice, nothing of its
// family works, whatever the order (RFC 9700 §4.14.2).
func TestRefreshReuseInterleavings(t *testing.T) {
	t.Run("a request that read the token before the revocation commits after it", func(t *testing.T) {
		stallStores(t, func(t *testing.T, st *stall) {
			e := start(t, providerConfig, st)
			first := grant(e)
			late := held(t, e, st, commit, refreshForm(first.RefreshToken)) // read R0 unused, waits
			winner, err := postToken(e, refreshForm(first.RefreshToken))
			if err != nil || winner.Status != http.StatusOK {
				t.Fatalf("first refresh: %v %v", err, winner)
			}
			reuse, err := postToken(e, refreshForm(first.RefreshToken)) // sees R0 used: revokes
			if err != nil || reuse.Error != "invalid_grant" {
				t.Fatalf("reuse: %v %v", err, reuse)
			}
			got := late()
			if got.Status == http.StatusOK {
				t.Errorf("a refresh that read the token before the family was revoked got tokens after it")
			} else if got.Error != "invalid_grant" {
				t.Errorf("late refresh: %d %s, want invalid_grant", got.Status, got.Error)
			}
			if w := working(e, first, winner, got); len(w) > 0 {
				t.Fatalf("after reuse detection, still working: %v", w)
			}
			// Replaying the first token later finds nothing alive either.
			if w := working(e, first); len(w) > 0 {
				t.Fatalf("replay: %v", w)
			}
		})
	})
	t.Run("a request that read the token before the first rotation commits while reuse is being revoked", func(t *testing.T) {
		stallStores(t, func(t *testing.T, st *stall) {
			e := start(t, providerConfig, st)
			first := grant(e)
			late := held(t, e, st, commit, refreshForm(first.RefreshToken))
			winner, err := postToken(e, refreshForm(first.RefreshToken))
			if err != nil || winner.Status != http.StatusOK {
				t.Fatalf("first refresh: %v %v", err, winner)
			}
			// The reuse detector has seen the token used and stops just
			// before it marks the grant revoked; the late request
			// commits in that gap.
			reuse := held(t, e, st, tombstone, refreshForm(first.RefreshToken))
			got := late()
			if got.Status == http.StatusOK {
				t.Errorf("a second request got tokens for one refresh token")
			}
			if r := reuse(); r.Error != "invalid_grant" {
				t.Fatalf("reuse: %d %s", r.Status, r.Error)
			}
			if w := working(e, first, winner, got); len(w) > 0 {
				t.Fatalf("after reuse detection, still working: %v", w)
			}
		})
	})
	t.Run("two requests redeem one token at once", func(t *testing.T) {
		stallStores(t, func(t *testing.T, st *stall) {
			e := start(t, providerConfig, st)
			loserRevokesWinner(t, e, st, refreshForm(grant(e).RefreshToken))
		})
	})
}

// loserRevokesWinner redeems form twice at once: one request waits at its
// commit while the other wins. The held one, committing last, finds the
// guard taken: the credential was presented twice, so the grant dies,
// the winner's new tokens with it.
func loserRevokesWinner(t *testing.T, e *env, st *stall, form url.Values) {
	t.Helper()
	loser := held(t, e, st, commit, form)
	winner, err := postToken(e, form)
	if err != nil || winner.Status != http.StatusOK {
		t.Fatalf("first redemption: %v %v", err, winner)
	}
	if got := loser(); got.Error != "invalid_grant" {
		t.Fatalf("concurrent loser: %d %s, want invalid_grant", got.Status, got.Error)
	}
	if w := working(e, winner); len(w) > 0 {
		t.Fatalf("the winner's tokens survived the concurrent reuse: %v", w)
	}
}

// codeForm signs alice in with the web client and returns the token
// request that redeems her code.
func codeForm(e *env) url.Values {
	e.t.Helper()
	f := newFlow(e.web())
	res := e.login(e.browser(), f, "alice")
	return url.Values{"grant_type": {"authorization_code"}, "code": {res.Query.Get("code")}, "redirect_uri": {webRedirect}, "code_verifier": {f.verifier}}
}

// TestCodeReuseInterleavings: an authorization code has one winner, and
// what it issued dies when the code is shown again (RFC 6749 §4.1.2),
// including a refresh that raced the revocation.
func TestCodeReuseInterleavings(t *testing.T) {
	t.Run("a refresh of the winner's token that read it before the code was shown again", func(t *testing.T) {
		stallStores(t, func(t *testing.T, st *stall) {
			e := start(t, providerConfig, st)
			form := codeForm(e)
			winner, err := postToken(e, form)
			if err != nil || winner.Status != http.StatusOK {
				t.Fatalf("exchange: %v %v", err, winner)
			}
			late := held(t, e, st, commit, refreshForm(winner.RefreshToken)) // reads RT1 unused, waits
			reuse, err := postToken(e, form)                                 // the code again: revokes the grant
			if err != nil || reuse.Error != "invalid_grant" {
				t.Fatalf("code reuse: %v %v", err, reuse)
			}
			got := late()
			if got.Status == http.StatusOK {
				t.Errorf("a refresh that read the token before the code reuse got tokens after it")
			}
			if w := working(e, winner, got); len(w) > 0 {
				t.Fatalf("after code reuse, still working: %v", w)
			}
		})
	})
	t.Run("two requests redeem one code at once", func(t *testing.T) {
		stallStores(t, func(t *testing.T, st *stall) {
			e := start(t, providerConfig, st)
			loserRevokesWinner(t, e, st, codeForm(e))
		})
	})
}

// TestCodeRedeemedWhileAnotherWaitsAtCommit: the first redemption has
// done all its work and waits at its commit when a second runs whole. The
// second must meet the same PKCE challenge and ID token session (not find
// them deleted by the first, and answer "invalid_grant" without revoking
// anything, or issue tokens without an ID token), win the guard, and then
// die with the grant when the first shows the code at its commit.
func TestCodeRedeemedWhileAnotherWaitsAtCommit(t *testing.T) {
	stallStores(t, func(t *testing.T, st *stall) {
		e := start(t, providerConfig, st)
		form := codeForm(e)
		first := held(t, e, st, commit, form)
		second, err := postToken(e, form)
		if err != nil || second.Status != http.StatusOK || second.IDToken == "" {
			t.Fatalf("second redemption while the first waits: %v %v, want tokens with an ID token", err, second)
		}
		if got := first(); got.Error != "invalid_grant" {
			t.Fatalf("first redemption, committing last: %d %s", got.Status, got.Error)
		}
		if w := working(e, second); len(w) > 0 {
			t.Fatalf("tokens of a code redeemed twice still work: %v", w)
		}
	})
}

// reuseRounds is how many rounds TestConcurrentRefreshReuse runs;
// AERO2_REUSE_ROUNDS changes it (to measure).
func reuseRounds(t *testing.T) int {
	if v := os.Getenv("AERO2_REUSE_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("AERO2_REUSE_ROUNDS=%q", v)
		}
		return n
	}
	return 10
}

// TestConcurrentRefreshReuse: twelve refreshes of one token at once, in
// many rounds. At most one may get tokens, and afterwards no token of the
// family works.
func TestConcurrentRefreshReuse(t *testing.T) {
	const parallel = 12
	// Every round signs in and refreshes from one address: rate limits
	// off, or they decide the rounds.
	const public = "server:\n  public_url: \"{{.URL}}\"\n"
	if !strings.Contains(providerConfig, public) {
		t.Fatal("providerConfig has no server.public_url line to add rate_limits to")
	}
	unlimited := strings.Replace(providerConfig, public, public+"  rate_limits: {disabled: true}\n", 1)
	stores(t, func(t *testing.T, st store.Store) {
		e := start(t, unlimited, st)
		rounds := reuseRounds(t)
		var survived, doubled int
		for round := range rounds {
			first := grant(e)
			replies := make([]tokenReply, parallel)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range replies {
				wg.Go(func() {
					<-start
					r, err := postToken(e, refreshForm(first.RefreshToken))
					if err != nil {
						t.Error(err)
					}
					replies[i] = r
				})
			}
			close(start)
			wg.Wait()
			wins := 0
			for _, r := range replies {
				switch {
				case r.Status == http.StatusOK:
					wins++
				case r.Error != "invalid_grant":
					t.Fatalf("round %d: a refresh answered %d %q, want invalid_grant", round, r.Status, r.Error)
				}
			}
			if wins > 1 {
				doubled++
			}
			if w := working(e, append(replies, first)...); len(w) > 0 {
				survived++
				t.Logf("round %d: %d refreshes got tokens; still working afterwards: %v", round, wins, w)
			}
		}
		t.Logf("%d refreshes at once: %d of %d rounds left a token of the family working, %d had more than one winner", parallel, survived, rounds, doubled)
		if survived > 0 || doubled > 0 {
			t.Errorf("%d of %d rounds left a working token, %d had more than one winner", survived, rounds, doubled)
		}
	})
}
