package oauthstore_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/aero2/aero2/authz/oauthstore"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/memory"
	"github.com/aero2/aero2/store/postgres/pgtest"
	"github.com/aero2/aero2/store/redis/redistest"
	"github.com/aero2/aero2/store/storetest"
)

// The contract tests run on every backend: fosite's reuse detection
// depends on them, and a backend that breaks it breaks silently.
func backends(t *testing.T, fn func(t *testing.T, s *oauthstore.Store, be store.Store, app string)) {
	run := func(t *testing.T, be store.Store) {
		app := storetest.App(t)
		fn(t, newStore(app, be), be, app)
	}
	t.Run("memory", func(t *testing.T) {
		st := memory.New()
		t.Cleanup(func() { st.Close() })
		run(t, st)
	})
	t.Run("redis", func(t *testing.T) { run(t, redistest.New(t)) })
	t.Run("postgres", func(t *testing.T) { run(t, pgtest.New(t)) })
}

type clients map[string]fosite.Client

func (c clients) GetClient(_ context.Context, id string) (fosite.Client, error) {
	if cl, ok := c[id]; ok {
		return cl, nil
	}
	return nil, fosite.ErrNotFound
}

var testClients = clients{"web": &fosite.DefaultClient{ID: "web"}, "other": &fosite.DefaultClient{ID: "other"}}

func newStore(app string, be store.Store) *oauthstore.Store {
	return oauthstore.New(oauthstore.Options{Backend: store.ForApp(be, app), Clients: testClients, GrantTTL: time.Hour, CodeTTL: 5 * time.Minute})
}

func request(id, sid string) *fosite.Request {
	s := oauthstore.NewSession()
	s.Subject, s.SID = "alice", sid
	s.Claims.Extra = map[string]any{"email": "alice@example.com"}
	s.SetExpiresAt(fosite.AccessToken, time.Now().Add(time.Hour))
	s.SetExpiresAt(fosite.RefreshToken, time.Now().Add(time.Hour))
	s.SetExpiresAt(fosite.AuthorizeCode, time.Now().Add(time.Minute))
	r := fosite.NewRequest()
	r.ID = id
	r.Client = testClients["web"]
	r.Session = s
	r.GrantedScope = fosite.Arguments{"openid", "email"}
	r.Form.Set("redirect_uri", "https://app.example.com/cb")
	return r
}

func TestAuthorizeCodeContract(t *testing.T) {
	backends(t, func(t *testing.T, s *oauthstore.Store, _ store.Store, _ string) {
		ctx := t.Context()
		if err := s.CreateAuthorizeCodeSession(ctx, "sig1", request("grant-1", "")); err != nil {
			t.Fatal(err)
		}
		// fosite checks a code's expiry on the session it passes in: that
		// session must come back hydrated, keeping what was already set.
		into := oauthstore.NewSession()
		into.SetExpiresAt(fosite.AccessToken, time.Now().Add(time.Minute))
		got, err := s.GetAuthorizeCodeSession(ctx, "sig1", into)
		if err != nil || got.GetID() != "grant-1" || got.GetSession().GetSubject() != "alice" || got.GetRequestForm().Get("redirect_uri") == "" {
			t.Fatalf("fresh code: %v %+v", err, got)
		}
		if into.Subject != "alice" || into.GetExpiresAt(fosite.AuthorizeCode).IsZero() || into.GetExpiresAt(fosite.AccessToken).IsZero() {
			t.Fatalf("session passed in not hydrated (or its own fields lost): %+v", into)
		}
		if err := s.InvalidateAuthorizeCodeSession(ctx, "sig1"); err != nil {
			t.Fatal(err)
		}
		// fosite revokes what the first use issued only if it gets the
		// request back together with ErrInvalidatedAuthorizeCode.
		got, err = s.GetAuthorizeCodeSession(ctx, "sig1", oauthstore.NewSession())
		if !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) || got == nil || got.GetID() != "grant-1" {
			t.Fatalf("used code: err %v, request %v; want ErrInvalidatedAuthorizeCode with the request", err, got)
		}
		err = s.InvalidateAuthorizeCodeSession(ctx, "sig1")
		if !errors.Is(err, oauthstore.ErrConcurrentUse) || !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) {
			t.Fatalf("second invalidation: %v", err)
		}
		if _, err := s.GetAuthorizeCodeSession(ctx, "unknown", nil); !errors.Is(err, fosite.ErrNotFound) {
			t.Fatalf("unknown code: %v", err)
		}
		// Creating the same code twice is refused (a collision must not
		// overwrite someone's grant).
		if err := s.CreateAuthorizeCodeSession(ctx, "sig1", request("grant-2", "")); !errors.Is(err, store.ErrExists) {
			t.Fatalf("duplicate code: %v", err)
		}
	})
}

func TestConcurrentRedemptionHasOneWinner(t *testing.T) {
	backends(t, func(t *testing.T, s *oauthstore.Store, _ store.Store, _ string) {
		ctx := t.Context()
		for round := range 10 {
			sig := "race-" + string(rune('a'+round))
			if err := s.CreateAuthorizeCodeSession(ctx, sig, request("g", "")); err != nil {
				t.Fatal(err)
			}
			if err := s.CreateRefreshTokenSession(ctx, sig, "", request("g", "")); err != nil {
				t.Fatal(err)
			}
			var codeWins, refreshWins atomic.Int32
			var wg sync.WaitGroup
			for range 16 {
				wg.Go(func() {
					if s.InvalidateAuthorizeCodeSession(ctx, sig) == nil {
						codeWins.Add(1)
					}
					if s.RotateRefreshToken(ctx, "g", sig) == nil {
						refreshWins.Add(1)
					}
				})
			}
			wg.Wait()
			if codeWins.Load() != 1 || refreshWins.Load() != 1 {
				t.Fatalf("round %d: %d code and %d refresh winners, want 1 each", round, codeWins.Load(), refreshWins.Load())
			}
		}
	})
}

func TestRefreshTokenContract(t *testing.T) {
	backends(t, func(t *testing.T, s *oauthstore.Store, _ store.Store, _ string) {
		ctx := t.Context()
		req := request("grant-r", "")
		must(t, s.CreateAccessTokenSession(ctx, "at1", req))
		must(t, s.CreateRefreshTokenSession(ctx, "rt1", "at1", req))
		if got, err := s.GetRefreshTokenSession(ctx, "rt1", nil); err != nil || got.GetID() != "grant-r" {
			t.Fatalf("fresh refresh token: %v", err)
		}
		must(t, s.RotateRefreshToken(ctx, "grant-r", "rt1"))
		// fosite revokes the family only if it gets the request back
		// together with ErrInactiveToken.
		got, err := s.GetRefreshTokenSession(ctx, "rt1", oauthstore.NewSession())
		if !errors.Is(err, fosite.ErrInactiveToken) || got == nil || got.GetID() != "grant-r" {
			t.Fatalf("rotated refresh token: err %v, request %v; want ErrInactiveToken with the request", err, got)
		}
		// Rotation revoked the access token issued with the old refresh
		// token.
		if _, err := s.GetAccessTokenSession(ctx, "at1", nil); !errors.Is(err, fosite.ErrNotFound) {
			t.Fatalf("access token of a rotated refresh token: %v", err)
		}
		if err := s.RotateRefreshToken(ctx, "grant-r", "rt1"); !errors.Is(err, fosite.ErrInactiveToken) {
			t.Fatalf("second rotation: %v", err)
		}

		// The family: the new pair, then revocation of the whole grant.
		must(t, s.CreateAccessTokenSession(ctx, "at2", req))
		must(t, s.CreateRefreshTokenSession(ctx, "rt2", "at2", req))
		must(t, s.RevokeRefreshToken(ctx, "grant-r"))
		must(t, s.RevokeAccessToken(ctx, "grant-r"))
		for _, sig := range []string{"rt1", "rt2"} {
			if _, err := s.GetRefreshTokenSession(ctx, sig, nil); !errors.Is(err, fosite.ErrNotFound) {
				t.Fatalf("refresh token %s after family revocation: %v", sig, err)
			}
		}
		if _, err := s.GetAccessTokenSession(ctx, "at2", nil); !errors.Is(err, fosite.ErrNotFound) {
			t.Fatalf("access token after revocation: %v", err)
		}
	})
}

func TestSessionRevocationAndScoping(t *testing.T) {
	backends(t, func(t *testing.T, s *oauthstore.Store, be store.Store, app string) {
		ctx := t.Context()
		mine, other := request("grant-a", "sid-1"), request("grant-b", "sid-2")
		for _, r := range []*fosite.Request{mine, other} {
			must(t, s.CreateAuthorizeCodeSession(ctx, "code-"+r.ID, r))
			must(t, s.CreateAccessTokenSession(ctx, "at-"+r.ID, r))
			must(t, s.CreateRefreshTokenSession(ctx, "rt-"+r.ID, "at-"+r.ID, r))
		}
		must(t, s.RevokeSession(ctx, "sid-1"))
		if _, err := s.GetAccessTokenSession(ctx, "at-grant-a", nil); !errors.Is(err, fosite.ErrNotFound) {
			t.Fatalf("access token of the ended session: %v", err)
		}
		if _, err := s.GetRefreshTokenSession(ctx, "rt-grant-a", nil); !errors.Is(err, fosite.ErrNotFound) {
			t.Fatalf("refresh token of the ended session: %v", err)
		}
		if _, err := s.GetAccessTokenSession(ctx, "at-grant-b", nil); err != nil {
			t.Fatalf("another session's token was revoked: %v", err)
		}

		// Another application's store sees nothing of this one.
		elsewhere := newStore(storetest.App(t), be)
		if _, err := elsewhere.GetAccessTokenSession(ctx, "at-grant-b", nil); !errors.Is(err, fosite.ErrNotFound) {
			t.Fatalf("token visible in another application: %v", err)
		}

		// A token whose client has left the configuration is worthless.
		r := request("grant-c", "")
		r.Client = &fosite.DefaultClient{ID: "removed"}
		must(t, s.CreateAccessTokenSession(ctx, "at-removed", r))
		if _, err := s.GetAccessTokenSession(ctx, "at-removed", nil); !errors.Is(err, fosite.ErrNotFound) {
			t.Fatalf("token of a removed client: %v", err)
		}
	})
}

// TestUserClientRevocation: removing a client's access revokes the
// grants that user made to that client, in every browser session, and
// nothing of another client's or another user's.
func TestUserClientRevocation(t *testing.T) {
	backends(t, func(t *testing.T, s *oauthstore.Store, _ store.Store, _ string) {
		ctx := t.Context()
		aliceWeb1, aliceWeb2 := request("a-web-1", "sid-1"), request("a-web-2", "sid-2")
		aliceOther := request("a-other", "sid-1")
		aliceOther.Client = testClients["other"]
		bobWeb := request("b-web", "sid-3")
		bobWeb.Session.(*oauthstore.Session).Subject = "bob"
		// A pairwise grant names its user by UserID, not by its subject.
		pairwise := request("a-web-pairwise", "sid-2")
		pairwise.Session.(*oauthstore.Session).Subject, pairwise.Session.(*oauthstore.Session).UserID = "pairwise-sub", "alice"
		all := []*fosite.Request{aliceWeb1, aliceWeb2, aliceOther, bobWeb, pairwise}
		for _, r := range all {
			must(t, s.CreateAuthorizeCodeSession(ctx, "code-"+r.ID, r))
			must(t, s.CreateAccessTokenSession(ctx, "at-"+r.ID, r))
			must(t, s.CreateRefreshTokenSession(ctx, "rt-"+r.ID, "at-"+r.ID, r))
		}
		must(t, s.RevokeUserClient(ctx, "alice", "web"))
		revoked := map[string]bool{"a-web-1": true, "a-web-2": true, "a-web-pairwise": true}
		for _, r := range all {
			_, atErr := s.GetAccessTokenSession(ctx, "at-"+r.ID, nil)
			_, rtErr := s.GetRefreshTokenSession(ctx, "rt-"+r.ID, nil)
			if revoked[r.ID] {
				if !errors.Is(atErr, fosite.ErrNotFound) || !errors.Is(rtErr, fosite.ErrNotFound) {
					t.Errorf("grant %s after removing alice's access for web: access %v, refresh %v", r.ID, atErr, rtErr)
				}
			} else if atErr != nil || rtErr != nil {
				t.Errorf("grant %s was revoked with alice's access for web: access %v, refresh %v", r.ID, atErr, rtErr)
			}
		}
		// Idempotent: nothing left to revoke is not an error.
		must(t, s.RevokeUserClient(ctx, "alice", "web"))
		must(t, s.RevokeUserClient(ctx, "nobody", "web"))
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestHeldWrites: inside a Request, token writes wait for Commit (a token
// request that fails half-way stores nothing), records are read once, and
// the single-use guards are never held.
func TestHeldWrites(t *testing.T) {
	backends(t, func(t *testing.T, s *oauthstore.Store, _ store.Store, _ string) {
		req := request("grant-h", "")
		must(t, s.CreateRefreshTokenSession(t.Context(), "rt-h", "", req))
		ctx, held := oauthstore.WithRequest(t.Context())
		must(t, s.CreateAccessTokenSession(ctx, "at-h", req))
		if _, err := s.GetAccessTokenSession(t.Context(), "at-h", nil); !errors.Is(err, fosite.ErrNotFound) {
			t.Fatalf("held write visible before commit: %v", err)
		}
		// The rotation guard commits with the writes: a rotation that won
		// meanwhile makes the whole commit fail, and nothing is written.
		if _, err := s.GetRefreshTokenSession(ctx, "rt-h", nil); err != nil {
			t.Fatal(err)
		}
		must(t, s.RotateRefreshToken(ctx, "grant-h", "rt-h"))
		must(t, s.RotateRefreshToken(t.Context(), "grant-h", "rt-h")) // the other request
		if err := s.Commit(ctx, held); !errors.Is(err, oauthstore.ErrConcurrentUse) || !errors.Is(err, fosite.ErrInactiveToken) {
			t.Fatalf("commit after losing the rotation: %v", err)
		}
		if _, err := s.GetAccessTokenSession(t.Context(), "at-h", nil); !errors.Is(err, fosite.ErrNotFound) {
			t.Fatalf("loser's access token stored: %v", err)
		}
		// A winning commit stores everything.
		must(t, s.CreateRefreshTokenSession(t.Context(), "rt-w", "", req))
		ctx, held = oauthstore.WithRequest(t.Context())
		must(t, s.RotateRefreshToken(ctx, "grant-h", "rt-w"))
		must(t, s.CreateAccessTokenSession(ctx, "at-w", req))
		must(t, s.Commit(ctx, held))
		if _, err := s.GetAccessTokenSession(t.Context(), "at-w", nil); err != nil {
			t.Fatalf("committed write: %v", err)
		}
		if _, err := s.GetRefreshTokenSession(t.Context(), "rt-w", nil); !errors.Is(err, fosite.ErrInactiveToken) {
			t.Fatalf("committed rotation: %v", err)
		}
		// Never committed: gone with the request.
		ctx2, _ := oauthstore.WithRequest(t.Context())
		must(t, s.CreateAccessTokenSession(ctx2, "at-lost", req))
		if _, err := s.GetAccessTokenSession(t.Context(), "at-lost", nil); !errors.Is(err, fosite.ErrNotFound) {
			t.Fatalf("uncommitted write stored: %v", err)
		}
	})
}

// TestRevokedGrantTakesNoTokens: once a grant is revoked, no write of its
// tokens lands, held in a Request or not, while other grants are untouched.
// This is what keeps a request that read a code or refresh token before
// the revocation from issuing a live token after it.
func TestRevokedGrantTakesNoTokens(t *testing.T) {
	backends(t, func(t *testing.T, s *oauthstore.Store, _ store.Store, _ string) {
		for _, revoke := range []struct {
			name string
			fn   func(context.Context, string) error
		}{
			{"RevokeRefreshToken", s.RevokeRefreshToken},
			{"RevokeAccessToken", s.RevokeAccessToken},
			{"RevokeGrant", s.RevokeGrant},
		} {
			t.Run(revoke.name, func(t *testing.T) {
				id := "grant-" + revoke.name
				req := request(id, "")
				must(t, s.CreateRefreshTokenSession(t.Context(), "rt0-"+id, "", req))
				// A request reads the token unused, then the grant is
				// revoked, then the request commits.
				ctx, held := oauthstore.WithRequest(t.Context())
				if _, err := s.GetRefreshTokenSession(ctx, "rt0-"+id, nil); err != nil {
					t.Fatal(err)
				}
				must(t, s.RotateRefreshToken(ctx, id, "rt0-"+id))
				must(t, s.CreateAccessTokenSession(ctx, "at1-"+id, req))
				must(t, s.CreateRefreshTokenSession(ctx, "rt1-"+id, "at1-"+id, req))
				must(t, revoke.fn(t.Context(), id))
				if err := s.Commit(ctx, held); !errors.Is(err, oauthstore.ErrConcurrentUse) {
					t.Fatalf("commit into a revoked grant: %v", err)
				}
				if _, err := s.GetRefreshTokenSession(t.Context(), "rt1-"+id, nil); !errors.Is(err, fosite.ErrNotFound) {
					t.Fatalf("refresh token committed into a revoked grant: %v", err)
				}
				if _, err := s.GetAccessTokenSession(t.Context(), "at1-"+id, nil); !errors.Is(err, fosite.ErrNotFound) {
					t.Fatalf("access token committed into a revoked grant: %v", err)
				}
				// Direct writes are refused as well.
				if err := s.CreateAccessTokenSession(t.Context(), "at2-"+id, req); !errors.Is(err, oauthstore.ErrGrantRevoked) || !errors.Is(err, fosite.ErrInactiveToken) {
					t.Fatalf("access token write into a revoked grant: %v", err)
				}
				if err := s.CreateRefreshTokenSession(t.Context(), "rt2-"+id, "", req); !errors.Is(err, oauthstore.ErrGrantRevoked) {
					t.Fatalf("refresh token write into a revoked grant: %v", err)
				}
			})
		}
		// Another grant is not affected.
		must(t, s.CreateAccessTokenSession(t.Context(), "at-other", request("grant-other", "")))
	})
}

// TestConsumedRecordsGoWithTheRequest: inside a Request, a code's PKCE
// challenge and ID token session are deleted with the commit (a second
// redemption running meanwhile still meets them, and the guard decides),
// or by Release when the request fails (a code shown with a wrong verifier
// stays burnt); never twice, never before.
func TestConsumedRecordsGoWithTheRequest(t *testing.T) {
	backends(t, func(t *testing.T, s *oauthstore.Store, _ store.Store, _ string) {
		setup := func(sig string) {
			must(t, s.CreatePKCERequestSession(t.Context(), sig, request("g-"+sig, "")))
			must(t, s.CreateOpenIDConnectSession(t.Context(), sig, request("g-"+sig, "")))
		}
		present := func(sig string) (pkce, oidc bool) {
			_, perr := s.GetPKCERequestSession(t.Context(), sig, nil)
			_, oerr := s.GetOpenIDConnectSession(t.Context(), sig, nil)
			return perr == nil, oerr == nil
		}
		for _, committed := range []bool{true, false} {
			sig := map[bool]string{true: "committed", false: "failed"}[committed]
			setup(sig)
			ctx, held := oauthstore.WithRequest(t.Context())
			must(t, s.DeletePKCERequestSession(ctx, sig))
			must(t, s.DeleteOpenIDConnectSession(ctx, sig))
			if p, o := present(sig); !p || !o {
				t.Fatalf("%s: consumed records deleted before the request ended (pkce %t, oidc %t)", sig, p, o)
			}
			if committed {
				must(t, s.Commit(ctx, held))
			}
			must(t, s.Release(ctx, held))
			if p, o := present(sig); p || o {
				t.Fatalf("%s: consumed records left after the request (pkce %t, oidc %t)", sig, p, o)
			}
		}
		// Outside a Request: at once.
		setup("direct")
		must(t, s.DeletePKCERequestSession(t.Context(), "direct"))
		if p, _ := present("direct"); p {
			t.Fatal("direct delete did not delete")
		}
	})
}

// TestNamedRefreshToken: a signature that names its user reads the token,
// its marker and the user in one go, and the request knows the user
// afterwards (a disabled one too: the caller refuses the grant); the
// record must be that user's grant, else it is not found, and a name no
// token of ours carries is not found without a read. Reuse detection is
// as for unnamed tokens.
func TestNamedRefreshToken(t *testing.T) {
	backends(t, func(t *testing.T, s *oauthstore.Store, be store.Store, app string) {
		u := &store.User{ID: "alice", App: app}
		must(t, be.CreateUser(t.Context(), u, &store.Identity{App: app, IDP: "dev", Subject: "alice", UserID: "alice"}))
		req := request("grant-n", "sid-n")
		named := oauthstore.NamedSignature("rt-n", "alice")
		must(t, s.CreateRefreshTokenSession(t.Context(), named, "", req))
		// The record is the token's, whether or not the signature names.
		if got, err := s.GetRefreshTokenSession(t.Context(), "rt-n", nil); err != nil || got.GetID() != "grant-n" {
			t.Fatalf("unnamed read of a named token: %v", err)
		}
		ctx, _ := oauthstore.WithRequest(t.Context())
		if _, known := oauthstore.KnownUser(ctx, "alice"); known {
			t.Fatal("user known before any read")
		}
		if got, err := s.GetRefreshTokenSession(ctx, named, nil); err != nil || got.GetID() != "grant-n" {
			t.Fatalf("named read: %v", err)
		}
		if got, known := oauthstore.KnownUser(ctx, "alice"); !known || got == nil || got.ID != "alice" {
			t.Fatalf("the user read with the token: %+v %v", got, known)
		}
		for _, bad := range []string{
			oauthstore.NamedSignature("rt-n", "bob"), // another user's name
			oauthstore.NamedSignature("rt-n", "alice2"),
			oauthstore.NamedSignature("rt-n", strings.Repeat("a", 257)),
			oauthstore.NamedSignature("", "alice"),
			"rt-n~",
			"",
		} {
			ctx, _ := oauthstore.WithRequest(t.Context())
			if got, err := s.GetRefreshTokenSession(ctx, bad, nil); !errors.Is(err, fosite.ErrNotFound) || got != nil {
				t.Errorf("%.40q: %v %v, want not found", bad, got, err)
			}
		}
		// A user who is gone is known as gone: nil.
		ctx, _ = oauthstore.WithRequest(t.Context())
		must(t, s.CreateRefreshTokenSession(t.Context(), oauthstore.NamedSignature("rt-ghost", "ghost"), "", withUser(request("grant-g", "sid-g"), "ghost")))
		if _, err := s.GetRefreshTokenSession(ctx, oauthstore.NamedSignature("rt-ghost", "ghost"), nil); err != nil {
			t.Fatal(err)
		}
		if got, known := oauthstore.KnownUser(ctx, "ghost"); !known || got != nil {
			t.Fatalf("a deleted user: %+v %v, want known and nil", got, known)
		}
		// Rotation and reuse, named.
		ctx, held := oauthstore.WithRequest(t.Context())
		if _, err := s.GetRefreshTokenSession(ctx, named, nil); err != nil {
			t.Fatal(err)
		}
		must(t, s.RotateRefreshToken(ctx, "grant-n", named))
		must(t, s.Commit(ctx, held))
		got, err := s.GetRefreshTokenSession(t.Context(), named, oauthstore.NewSession())
		if !errors.Is(err, fosite.ErrInactiveToken) || got == nil || got.GetID() != "grant-n" {
			t.Fatalf("rotated named token: %v %v; want ErrInactiveToken with the request", got, err)
		}
		must(t, s.DeleteRefreshTokenSession(t.Context(), named))
		if _, err := s.GetRefreshTokenSession(t.Context(), "rt-n", nil); !errors.Is(err, fosite.ErrNotFound) {
			t.Fatalf("deleted by its named signature: %v", err)
		}
	})
}

func withUser(r *fosite.Request, user string) *fosite.Request {
	r.Session.(*oauthstore.Session).Subject = user
	return r
}

// TestRevocationReachesEarlierIndexes: a grant indexed by an earlier
// release (one set per kind of token) is revoked whole as well.
func TestRevocationReachesEarlierIndexes(t *testing.T) {
	backends(t, func(t *testing.T, s *oauthstore.Store, be store.Store, app string) {
		ctx := t.Context()
		for _, k := range []string{"oauth:at:H1", "oauth:rt:H2", "oauth:rt-used:H2"} {
			must(t, be.Put(ctx, app, k, []byte("x"), time.Hour))
		}
		must(t, be.SetAdd(ctx, app, "oauth:grant-at:g-old", time.Hour, "H1"))
		must(t, be.SetAdd(ctx, app, "oauth:grant-rt:g-old", time.Hour, "H2"))
		must(t, s.RevokeGrant(ctx, "g-old"))
		for _, k := range []string{"oauth:at:H1", "oauth:rt:H2", "oauth:rt-used:H2"} {
			if _, err := be.Get(ctx, app, k); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s after revoking its grant: %v", k, err)
			}
		}
	})
}

// TestSessionIndexKeepsKindsApart: a browser session's one index holds
// its grants and its back-channel registrations, and neither is ever read
// as the other, whatever the client ID or subject spells (spaces, colons,
// braces, the other kind's prefix, a length that lies). Bare grant IDs an
// earlier release indexed are still revoked at logout.
func TestSessionIndexKeepsKindsApart(t *testing.T) {
	backends(t, func(t *testing.T, s *oauthstore.Store, be store.Store, app string) {
		ctx := t.Context()
		const sid = "sid-kinds"
		must(t, s.CreateAuthorizeCodeSession(ctx, "code-k", request("grant-k", sid)))
		must(t, be.SetAdd(ctx, app, "oauth:sid:"+sid, time.Hour, "grant-legacy")) // an earlier release's member
		targets := []oauthstore.LogoutTarget{
			{Client: "web", Subject: "alice"},
			{Client: "g:grant-x", Subject: "bob"},
			{Client: "a client", Subject: "sub with spaces"},
			{Client: "{x}", Subject: "}{"},
			{Client: "3:", Subject: "l:3:abc"},
			{Client: "we", Subject: "balice"}, // "web"+"alice" spelled another way
		}
		for _, tg := range targets {
			must(t, s.AddLogoutTarget(ctx, sid, tg.Client, tg.Subject, time.Hour))
		}
		// Members no release writes: neither a grant nor a registration.
		must(t, be.SetAdd(ctx, app, "oauth:sid:"+sid, time.Hour, "l:99:short", "l:03:webalice", "l:x:web", "x:grant-z"))

		got, err := s.LogoutTargets(ctx, sid)
		must(t, err)
		var names []string
		for _, tg := range got {
			names = append(names, tg.Client+"|"+tg.Subject)
		}
		var want []string
		for _, tg := range targets {
			want = append(want, tg.Client+"|"+tg.Subject)
		}
		slices.Sort(names)
		slices.Sort(want)
		if !slices.Equal(names, want) {
			t.Fatalf("registrations %q, want %q", names, want)
		}

		must(t, s.RevokeSession(ctx, sid))
		for _, g := range []string{"grant-k", "grant-legacy"} {
			if _, err := be.Get(ctx, app, "oauth:grant-revoked:"+g); err != nil {
				t.Errorf("grant %s of the session not revoked: %v", g, err)
			}
		}
		for _, g := range []string{"grant-x", "g:grant-x", "web", "grant-z", "x:grant-z", "l:99:short"} {
			if _, err := be.Get(ctx, app, "oauth:grant-revoked:"+g); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%q was taken for a grant and revoked", g)
			}
		}
		// Revoking the grants leaves the registrations for the logout.
		if got, err := s.LogoutTargets(ctx, sid); err != nil || len(got) != len(targets) {
			t.Fatalf("after revoking the session's grants: %d registrations (%v), want %d", len(got), err, len(targets))
		}
		must(t, s.DropLogoutTargets(ctx, sid, got...))
		if got, err := s.LogoutTargets(ctx, sid); err != nil || len(got) != 0 {
			t.Fatalf("after dropping them: %v %v", got, err)
		}
	})
}
