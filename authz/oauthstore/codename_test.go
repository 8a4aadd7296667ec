package oauthstore_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/aero2/aero2/authz/oauthstore"
	"github.com/aero2/aero2/store"
)

// clock is a settable clock for the store.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// clocked is backends with a store on a settable clock.
func clocked(t *testing.T, fn func(t *testing.T, s *oauthstore.Store, c *clock, be store.Store, app string)) {
	backends(t, func(t *testing.T, _ *oauthstore.Store, be store.Store, app string) {
		c := &clock{now: time.Now()}
		s := oauthstore.New(oauthstore.Options{Backend: store.ForApp(be, app), Clients: testClients, GrantTTL: time.Hour, CodeTTL: 5 * time.Minute, Now: c.Now})
		fn(t, s, c, be, app)
	})
}

// recordKey is the store key of a code's record (as the package names it).
func recordKey(prefix, signature string) string {
	sum := sha256.Sum256([]byte(signature))
	return prefix + base64.RawURLEncoding.EncodeToString(sum[:])
}

// TestNamedCodeIsTakenAndKnownByItsName: a code of this release is
// redeemed by taking its record, and nothing is written in its place; shown
// again inside its lifetime (plus the slack) it still yields its grant
// with ErrInvalidatedAuthorizeCode, so that fosite revokes the grant;
// shown after it, it is simply not found.
func TestNamedCodeIsTakenAndKnownByItsName(t *testing.T) {
	clocked(t, func(t *testing.T, s *oauthstore.Store, c *clock, be store.Store, app string) {
		ctx := t.Context()
		exp := c.Now().Add(time.Minute)
		sig := oauthstore.CodeSignature("sigN", "grant-n", exp)
		req := request("grant-n", "sid-n")
		req.Session.(*oauthstore.Session).SetExpiresAt(fosite.AuthorizeCode, exp)
		must(t, s.CreateAuthorizeCodeSession(ctx, sig, req))
		got, err := s.GetAuthorizeCodeSession(ctx, sig, oauthstore.NewSession())
		if err != nil || got.GetID() != "grant-n" || got.GetSession().GetSubject() != "alice" {
			t.Fatalf("fresh named code: %v %+v", err, got)
		}
		must(t, s.InvalidateAuthorizeCodeSession(ctx, sig))
		if v, err := be.Get(ctx, app, recordKey("oauth:code:", sig)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the redeemed code's record is still there: %q %v", v, err)
		}
		if v, err := be.Get(ctx, app, recordKey("oauth:code-used:", sig)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a named code left a used-code marker: %q %v", v, err)
		}
		// Replayed inside the window: the grant, to revoke.
		for _, late := range []time.Duration{0, time.Minute + 50*time.Second} {
			c.add(late)
			got, err = s.GetAuthorizeCodeSession(ctx, sig, oauthstore.NewSession())
			if !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) || got == nil || got.GetID() != "grant-n" {
				t.Fatalf("replay %s later: err %v, request %v; want ErrInvalidatedAuthorizeCode with grant-n", late, err, got)
			}
		}
		err = s.InvalidateAuthorizeCodeSession(ctx, sig)
		if !errors.Is(err, oauthstore.ErrConcurrentUse) || !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) {
			t.Fatalf("second redemption: %v", err)
		}
		// After the window: nothing to revoke by it any more.
		c.add(20 * time.Second)
		if got, err := s.GetAuthorizeCodeSession(ctx, sig, oauthstore.NewSession()); !errors.Is(err, fosite.ErrNotFound) {
			t.Fatalf("replay after the code's expiry: err %v, request %v; want ErrNotFound", err, got)
		}
		// Never issued (a name that opened, for a code nobody stored):
		// inside its window it can only name the grant sealed in it.
		ghost := oauthstore.CodeSignature("sigGhost", "grant-g", c.Now().Add(time.Minute))
		if got, err := s.GetAuthorizeCodeSession(ctx, ghost, nil); !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) || got.GetID() != "grant-g" {
			t.Fatalf("missing named code: %v %v", err, got)
		}
	})
}

// TestNamedCodeSignaturesFromHostileInput: signatures no code of ours
// has, and a named code with its name cut off (an earlier release's
// format), find nothing, redeem nothing and name no grant to revoke; a
// signature that names another grant than its request is not stored.
// (That a name the client altered never reaches the store is the token
// strategy's part: authz TestAuthorizeCodeNamesItsGrant.)
func TestNamedCodeSignaturesFromHostileInput(t *testing.T) {
	backends(t, func(t *testing.T, s *oauthstore.Store, _ store.Store, _ string) {
		ctx := t.Context()
		exp := time.Now().Add(time.Minute)
		sig := oauthstore.CodeSignature("sigH", "grant-h", exp)
		must(t, s.CreateAuthorizeCodeSession(ctx, sig, request("grant-h", "")))
		if err := s.CreateAuthorizeCodeSession(ctx, oauthstore.CodeSignature("sigX", "grant-x", exp), request("grant-y", "")); err == nil {
			t.Fatal("a code whose signature names another grant was stored")
		}
		secs := func(t time.Time) string { return strings.TrimPrefix(oauthstore.CodeSignature("", "", t), "~") }
		for name, bad := range map[string]string{
			"name cut off":         "sigH",
			"empty":                "",
			"no expiry":            "sigH~~grant-h",
			"no grant":             "sigH~" + strings.TrimSuffix(secs(exp), "~") + "~",
			"expiry not a number":  "sigH~soon~grant-h",
			"negative expiry":      "sigH~-5~grant-h",
			"zero expiry":          "sigH~0~grant-h",
			"expiry with a zero":   "sigH~0" + strings.TrimSuffix(secs(exp), "~") + "~grant-h",
			"no signature":         "~" + secs(exp) + "grant-h",
			"a third separator":    sig + "~x",
			"grant too long":       oauthstore.CodeSignature("sigH", strings.Repeat("g", oauthstore.MaxCodeGrant+1), exp),
			"only a separator":     "~",
			"expiry overflows":     "sigH~99999999999999999999~grant-h",
			"expiry with a plus":   "sigH~+" + secs(exp) + "grant-h",
			"name without expiry":  "sigH~grant-h",
			"separator in the sig": "si~gH",
		} {
			got, err := s.GetAuthorizeCodeSession(ctx, bad, oauthstore.NewSession())
			if !errors.Is(err, fosite.ErrNotFound) {
				t.Errorf("%s (%.60q): %v %v, want ErrNotFound", name, bad, err, got)
			}
			if _, err := s.GetPKCERequestSession(ctx, bad, oauthstore.NewSession()); !errors.Is(err, fosite.ErrNotFound) {
				t.Errorf("%s: PKCE: %v", name, err)
			}
			if err := s.InvalidateAuthorizeCodeSession(ctx, bad); err == nil {
				t.Errorf("%s: redeemed", name)
			}
		}
		// The code itself was not used up by any of that.
		if got, err := s.GetAuthorizeCodeSession(ctx, sig, oauthstore.NewSession()); err != nil || got.GetID() != "grant-h" {
			t.Fatalf("the code after hostile signatures: %v", err)
		}
	})
}

// TestNamedCodeConcurrentRedemptions: token requests redeeming one code
// at once, each computing its tokens and committing them: exactly one
// commit is applied; every other fails with ErrConcurrentUse (fosite's
// reused-code error inside) and stores nothing.
func TestNamedCodeConcurrentRedemptions(t *testing.T) {
	backends(t, func(t *testing.T, s *oauthstore.Store, _ store.Store, _ string) {
		for round := range 5 {
			id := "grant-c" + string(rune('a'+round))
			sig := oauthstore.CodeSignature("sig-"+id, id, time.Now().Add(time.Minute))
			must(t, s.CreateAuthorizeCodeSession(t.Context(), sig, request(id, "")))
			var wins atomic.Int32
			var wg sync.WaitGroup
			for i := range 12 {
				wg.Go(func() {
					ctx, held := oauthstore.WithRequest(t.Context())
					defer s.Release(ctx, held)
					req, err := s.GetAuthorizeCodeSession(ctx, sig, oauthstore.NewSession())
					if errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) {
						return // read after the winner's commit: fosite revokes
					}
					if err != nil {
						t.Errorf("read: %v", err)
						return
					}
					must(t, s.InvalidateAuthorizeCodeSession(ctx, sig))
					at := "at-" + id + "-" + string(rune('A'+i))
					must(t, s.CreateAccessTokenSession(ctx, at, req))
					err = s.Commit(ctx, held)
					if err == nil {
						wins.Add(1)
						return
					}
					if !errors.Is(err, oauthstore.ErrConcurrentUse) || !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) {
						t.Errorf("losing commit: %v", err)
					}
					if _, err := s.GetAccessTokenSession(t.Context(), at, nil); !errors.Is(err, fosite.ErrNotFound) {
						t.Errorf("a losing redemption stored its token: %v", err)
					}
				})
			}
			wg.Wait()
			if wins.Load() != 1 {
				t.Fatalf("round %d: %d redemptions committed, want 1", round, wins.Load())
			}
		}
	})
}

// TestEarlierReleaseCodeWithItsMarker: a code of the earlier release (no
// name) is still redeemed with its "used" marker while it lives, and a
// marker that release wrote still yields the grant to revoke.
func TestEarlierReleaseCodeWithItsMarker(t *testing.T) {
	backends(t, func(t *testing.T, s *oauthstore.Store, be store.Store, app string) {
		ctx := t.Context()
		must(t, s.CreateAuthorizeCodeSession(ctx, "sigOld", request("grant-old", "")))
		must(t, s.InvalidateAuthorizeCodeSession(ctx, "sigOld"))
		if _, err := be.Get(ctx, app, recordKey("oauth:code-used:", "sigOld")); err != nil {
			t.Fatalf("an earlier release's code was redeemed without its marker: %v", err)
		}
		got, err := s.GetAuthorizeCodeSession(ctx, "sigOld", nil)
		if !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) || got.GetID() != "grant-old" {
			t.Fatalf("used earlier-release code: %v %v", err, got)
		}
		// As the earlier release left it: the marker alone.
		marker, _ := json.Marshal(map[string]string{"id": "grant-left", "client_id": "web"})
		must(t, be.Put(ctx, app, recordKey("oauth:code-used:", "sigLeft"), marker, time.Minute))
		got, err = s.GetAuthorizeCodeSession(ctx, "sigLeft", nil)
		if !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) || got.GetID() != "grant-left" || got.GetClient().GetID() != "web" {
			t.Fatalf("the earlier release's marker: %v %v", err, got)
		}
		if err := s.InvalidateAuthorizeCodeSession(ctx, "sigLeft"); !errors.Is(err, oauthstore.ErrConcurrentUse) {
			t.Fatalf("redeeming a code the earlier release marked used: %v", err)
		}
	})
}

// firstParty is a client that asks for no consent (authz's first-party
// clients).
type firstParty struct{ *fosite.DefaultClient }

func (firstParty) SkipsConsent() bool { return true }

// TestUserClientIndexOnlyWhereConsentCanReach: removing a consent finds
// every grant it may need to (consent clients; first-party clients whose
// grants get refresh tokens), and a first-party grant without a refresh
// token is not indexed. A refresh token issued for a code whose client
// changed meanwhile indexes its grant itself.
func TestUserClientIndexOnlyWhereConsentCanReach(t *testing.T) {
	fp := firstParty{&fosite.DefaultClient{ID: "fp", GrantTypes: []string{"authorization_code"}}}
	fpRefresh := firstParty{&fosite.DefaultClient{ID: "fp-rt", GrantTypes: []string{"authorization_code", "refresh_token"}}}
	consent := &fosite.DefaultClient{ID: "consent", GrantTypes: []string{"authorization_code"}}
	cl := clients{"fp": fp, "fp-rt": fpRefresh, "consent": consent}
	backends(t, func(t *testing.T, _ *oauthstore.Store, be store.Store, app string) {
		ctx := t.Context()
		s := oauthstore.New(oauthstore.Options{Backend: store.ForApp(be, app), Clients: cl, GrantTTL: time.Hour, CodeTTL: 5 * time.Minute})
		for _, tc := range []struct {
			client  fosite.Client
			indexed bool
		}{{fp, false}, {fpRefresh, true}, {consent, true}} {
			id := "g-" + tc.client.GetID()
			r := request(id, "sid-"+id)
			r.Client = tc.client
			must(t, s.CreateAuthorizeCodeSession(ctx, "code-"+id, r))
			members, err := be.SetMembers(ctx, app, "oauth:user-client:5:alice:"+tc.client.GetID())
			must(t, err)
			if got := len(members) == 1 && members[0] == id; got != tc.indexed {
				t.Errorf("client %s: user-client index %v, want indexed %v", tc.client.GetID(), members, tc.indexed)
			}
			must(t, s.CreateAccessTokenSession(ctx, "at-"+id, r))
			must(t, s.RevokeUserClient(ctx, "alice", tc.client.GetID()))
			_, err = s.GetAccessTokenSession(ctx, "at-"+id, nil)
			if revoked := errors.Is(err, fosite.ErrNotFound); revoked != tc.indexed {
				t.Errorf("client %s: token revoked with the consent %v, want %v", tc.client.GetID(), revoked, tc.indexed)
			}
		}
		// The code foresaw no refresh token; a reload gave the client the
		// grant before the code was redeemed: the exchange indexes it.
		r := request("g-reloaded", "sid-r")
		r.Client = fp
		must(t, s.CreateAuthorizeCodeSession(ctx, "code-reloaded", r))
		r.Form.Set("grant_type", "authorization_code")
		must(t, s.CreateAccessTokenSession(ctx, "at-reloaded", r))
		must(t, s.CreateRefreshTokenSession(ctx, "rt-reloaded", "at-reloaded", r))
		must(t, s.RevokeUserClient(ctx, "alice", "fp"))
		if _, err := s.GetRefreshTokenSession(ctx, "rt-reloaded", nil); !errors.Is(err, fosite.ErrNotFound) {
			t.Fatalf("a refresh token issued for a first-party code survived removing the consent: %v", err)
		}
		// A rotation (not a code exchange) adds nothing.
		r2 := request("g-rotated", "sid-r")
		r2.Client = fp
		r2.Form.Set("grant_type", "refresh_token")
		must(t, s.CreateRefreshTokenSession(ctx, "rt-rotated", "", r2))
		if m, _ := be.SetMembers(ctx, app, "oauth:user-client:5:alice:fp"); len(m) != 0 {
			t.Fatalf("a rotation indexed its grant: %v", m)
		}
	})
}

// staleRead is a backend whose next GetMany answers with values read
// earlier: how a read of two keys in two slots of a Redis Cluster, one
// MGET each, can see one key before a concurrent write and the other
// after it.
type staleRead struct {
	oauthstore.Backend
	mu   sync.Mutex
	next [][]byte
}

func (b *staleRead) GetMany(ctx context.Context, keys ...string) ([][]byte, error) {
	b.mu.Lock()
	v := b.next
	b.next = nil
	b.mu.Unlock()
	if v != nil {
		return v, nil
	}
	return b.Backend.GetMany(ctx, keys...)
}

// TestCodeReadWithoutItsChallengeAfterAWinner: a redemption that read the
// code before the winner took it, and its PKCE challenge after the winner
// deleted it, is told the code is used (so that fosite revokes the grant),
// not handed the code to fail later on the missing challenge with an error
// that revokes nothing. A code that really has no challenge is handed over
// as it is (fosite's PKCE handler refuses it).
func TestCodeReadWithoutItsChallengeAfterAWinner(t *testing.T) {
	backends(t, func(t *testing.T, _ *oauthstore.Store, be store.Store, app string) {
		ctx := t.Context()
		stale := &staleRead{Backend: store.ForApp(be, app)}
		s := oauthstore.New(oauthstore.Options{Backend: stale, Clients: testClients, GrantTTL: time.Hour, CodeTTL: 5 * time.Minute})
		exp := time.Now().Add(time.Minute)
		sig := oauthstore.CodeSignature("sigS", "grant-s", exp)
		req := request("grant-s", "")
		req.Session.(*oauthstore.Session).SetExpiresAt(fosite.AuthorizeCode, exp)
		must(t, s.CreateAuthorizeCodeSession(ctx, sig, req))
		must(t, s.CreatePKCERequestSession(ctx, sig, req))
		code, err := be.Get(ctx, app, recordKey("oauth:code:", sig))
		must(t, err)

		// The winner redeems it: the code taken, the challenge deleted,
		// in one batch.
		wctx, held := oauthstore.WithRequest(ctx)
		_, err = s.GetAuthorizeCodeSession(wctx, sig, oauthstore.NewSession())
		must(t, err)
		must(t, s.InvalidateAuthorizeCodeSession(wctx, sig))
		must(t, s.DeletePKCERequestSession(wctx, sig))
		must(t, s.Commit(wctx, held))

		// The loser's read: the code as it was, the challenge as it is.
		lctx, lheld := oauthstore.WithRequest(ctx)
		defer s.Release(lctx, lheld)
		stale.mu.Lock()
		stale.next = [][]byte{code, nil}
		stale.mu.Unlock()
		got, err := s.GetAuthorizeCodeSession(lctx, sig, oauthstore.NewSession())
		if !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) || got == nil || got.GetID() != "grant-s" {
			t.Fatalf("code read before its winner's take, challenge after: err %v, request %v; want ErrInvalidatedAuthorizeCode with grant-s", err, got)
		}

		// A live code without a challenge is still a code.
		bare := oauthstore.CodeSignature("sigB", "grant-b", exp)
		must(t, s.CreateAuthorizeCodeSession(ctx, bare, request("grant-b", "")))
		if got, err := s.GetAuthorizeCodeSession(ctx, bare, oauthstore.NewSession()); err != nil || got.GetID() != "grant-b" {
			t.Fatalf("live code without a challenge: err %v, request %v", err, got)
		}
	})
}
