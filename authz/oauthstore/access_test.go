package oauthstore_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/aero2/aero2/authz/oauthstore"
	"github.com/aero2/aero2/store"
	"github.com/aero2/aero2/store/memory"
)

// jwtFor spells an access token the way authz's strategy does (RFC 9068
// §2.2), with claims changed by edit; the signature is not the store's
// to check.
func jwtFor(t *testing.T, req *fosite.Request, edit func(map[string]any)) string {
	t.Helper()
	sess := req.Session.(*oauthstore.Session)
	aud := []string(req.GrantedAudience)
	if len(aud) == 0 {
		aud = []string{"https://issuer.example"}
	}
	claims := map[string]any{
		"iss": "https://issuer.example", "sub": sess.Subject, "aud": aud, "client_id": req.Client.GetID(),
		"jti": "j-" + req.ID, "iat": time.Now().Unix(), "exp": sess.GetExpiresAt(fosite.AccessToken).Unix(),
		"scope": strings.Join(req.GrantedScope, " "), "email": "alice@example.com",
	}
	if !sess.AuthTime.IsZero() {
		claims["auth_time"] = sess.AuthTime.Unix()
	}
	if sess.JKT != "" {
		claims["cnf"] = map[string]any{"jkt": sess.JKT}
	}
	if edit != nil {
		edit(claims)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256","typ":"at+jwt"}`)) + "." + enc(payload) + "." + enc([]byte("signature"))
}

func atKey(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "oauth:at:" + base64.RawURLEncoding.EncodeToString(sum[:])
}

func accessRequest(id string) *fosite.Request {
	req := request(id, "sid-at")
	sess := req.Session.(*oauthstore.Session)
	sess.Subject, sess.UserID, sess.Username = "pairwise-sub", "alice-id", "alice"
	sess.AuthTime = time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	sess.JKT = "thumbprint"
	sess.SetExpiresAt(fosite.AccessToken, time.Now().Add(time.Hour).Truncate(time.Second))
	req.GrantedAudience = fosite.Arguments{"https://api.example"}
	return req
}

// TestAccessTokenRecordIsSmall: an access token that carries its request
// (one of Aero2's JWTs) is stored as a small record — the grant, and what
// the token does not say — never the token, its claims or the request;
// introspection, userinfo and revocation get the same request back from
// the record and the token. Revoked, it is gone at once.
func TestAccessTokenRecordIsSmall(t *testing.T) {
	backends(t, func(t *testing.T, s *oauthstore.Store, be store.Store, app string) {
		ctx := t.Context()
		for _, tc := range []struct {
			name string
			req  *fosite.Request
		}{
			{"pairwise, DPoP, audience", accessRequest("grant-at")},
			{"no audience, no scope, no DPoP", func() *fosite.Request {
				r := request("grant-at2", "")
				r.GrantedScope = nil
				return r
			}()},
		} {
			req := tc.req
			tok := jwtFor(t, req, nil)
			must(t, s.CreateAccessTokenSession(ctx, tok, req))
			raw, err := be.Get(ctx, app, atKey(tok))
			must(t, err)
			if len(raw) > 160 || strings.Contains(string(raw), "alice@example.com") || strings.Contains(string(raw), "scope") ||
				strings.Contains(string(raw), "session") || strings.Contains(string(raw), tok[:20]) {
				t.Errorf("%s: record is %d B: %s", tc.name, len(raw), raw)
			}
			t.Logf("%s: record %d B: %s", tc.name, len(raw), raw)

			got, err := s.GetAccessTokenSession(ctx, tok, oauthstore.NewSession())
			must(t, err)
			// The expiry is the token's exp: whole seconds.
			want, gs := req.Session.(*oauthstore.Session), got.GetSession().(*oauthstore.Session)
			if got.GetID() != req.ID || got.GetClient().GetID() != req.Client.GetID() ||
				!slices.Equal(got.GetGrantedScopes(), req.GrantedScope) || !slices.Equal(got.GetGrantedAudience(), req.GrantedAudience) {
				t.Errorf("%s: request %+v, want %+v", tc.name, got, req)
			}
			if gs.Subject != want.Subject || gs.UserID != want.UserID || gs.User() != want.User() || gs.Username != want.Username || gs.SID != want.SID ||
				!gs.AuthTime.Equal(want.AuthTime) || gs.JKT != want.JKT || gs.GetExpiresAt(fosite.AccessToken).Unix() != want.GetExpiresAt(fosite.AccessToken).Unix() {
				t.Errorf("%s: session %+v, want %+v", tc.name, gs, want)
			}
			// fosite's revocation reads with no session.
			if got, err := s.GetAccessTokenSession(ctx, tok, nil); err != nil || got.GetID() != req.ID {
				t.Errorf("%s: read without a session: %v %v", tc.name, got, err)
			}
			// Another token (one bit of the payload changed) names nothing.
			if _, err := s.GetAccessTokenSession(ctx, jwtFor(t, req, func(c map[string]any) { c["sub"] = "mallory" }), nil); !errors.Is(err, fosite.ErrNotFound) {
				t.Errorf("%s: a token never issued: %v", tc.name, err)
			}
			must(t, s.RevokeGrant(ctx, req.ID))
			if _, err := s.GetAccessTokenSession(ctx, tok, nil); !errors.Is(err, fosite.ErrNotFound) {
				t.Errorf("%s: after revoking its grant: %v", tc.name, err)
			}
		}
	})
}

// TestAccessTokenRecordFallsBackWhole: a token whose payload does not say
// what its request holds is stored whole, so that the request read back
// is the one issued, never what the token claims; and a record an earlier
// release wrote (the whole request) is read as before.
func TestAccessTokenRecordFallsBackWhole(t *testing.T) {
	backends(t, func(t *testing.T, s *oauthstore.Store, be store.Store, app string) {
		ctx := t.Context()
		edits := map[string]func(map[string]any){
			"sub":        func(c map[string]any) { c["sub"] = "other" },
			"client_id":  func(c map[string]any) { c["client_id"] = "other" },
			"scope":      func(c map[string]any) { c["scope"] = "openid  email" },
			"exp":        func(c map[string]any) { c["exp"] = c["exp"].(int64) + 60 },
			"aud":        func(c map[string]any) { c["aud"] = []string{"https://evil.example"} },
			"aud string": func(c map[string]any) { c["aud"] = "https://api.example" },
			"cnf":        func(c map[string]any) { delete(c, "cnf") },
			"auth_time":  func(c map[string]any) { c["auth_time"] = 1 },
			"no iat":     func(c map[string]any) { delete(c, "iat") },
			"not json":   nil,
		}
		for name, edit := range edits {
			req := accessRequest("grant-" + strings.ReplaceAll(name, " ", "-"))
			tok := jwtFor(t, req, edit)
			if edit == nil {
				tok = "opaque-" + name
			}
			must(t, s.CreateAccessTokenSession(ctx, tok, req))
			raw, err := be.Get(ctx, app, atKey(tok))
			must(t, err)
			if !strings.Contains(string(raw), `"session"`) {
				t.Errorf("%s: stored small (%s) for a token that does not carry its request", name, raw)
			}
			got, err := s.GetAccessTokenSession(ctx, tok, nil)
			must(t, err)
			gs := got.GetSession().(*oauthstore.Session)
			if got.GetID() != req.ID || got.GetClient().GetID() != "web" || gs.Subject != "pairwise-sub" || gs.JKT != "thumbprint" ||
				!slices.Equal(got.GetGrantedAudience(), req.GrantedAudience) {
				t.Errorf("%s: read back %+v %+v", name, got, gs)
			}
		}
		// An earlier release's record, as it wrote it.
		tok := jwtFor(t, accessRequest("grant-old"), nil)
		old := `{"id":"grant-old","rat":"2026-11-30T10:00:00Z","client_id":"web","scopes":["openid","email"],"as_req":true,` +
			`"granted_aud":["https://api.example"],"form":{"grant_type":["authorization_code"]},` +
			`"session":{"sub":"pairwise-sub","uid":"alice-id","username":"alice","sid":"sid-at","jkt":"thumbprint","expires_at":{"access_token":"` +
			time.Now().Add(time.Hour).UTC().Format(time.RFC3339) + `"}}}`
		must(t, be.Put(ctx, app, atKey(tok), []byte(old), time.Hour))
		got, err := s.GetAccessTokenSession(ctx, tok, oauthstore.NewSession())
		must(t, err)
		if gs := got.GetSession().(*oauthstore.Session); got.GetID() != "grant-old" || gs.User() != "alice-id" || gs.SID != "sid-at" ||
			!slices.Equal(got.GetGrantedScopes(), fosite.Arguments{"openid", "email"}) || gs.GetExpiresAt(fosite.AccessToken).IsZero() {
			t.Fatalf("an earlier release's record: %+v %+v", got, gs)
		}
	})
}

// claimsIn are the claims a token's payload holds, as authz's strategy
// hands them to the session it signed the token for.
func claimsIn(t *testing.T, token string) *oauthstore.AccessClaims {
	t.Helper()
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[1])
	must(t, err)
	var c oauthstore.AccessClaims
	must(t, json.Unmarshal(payload, &c))
	return &c
}

// TestHandedOverClaimsAreCheckedLikeTheToken: the claims the strategy hands
// over with the token it signed (Session.Issued) are held to the request
// as the token's own payload is: the same record when they say what it
// holds, the whole request when they do not; and claims handed over for
// another token are not this one's.
func TestHandedOverClaimsAreCheckedLikeTheToken(t *testing.T) {
	backends(t, func(t *testing.T, s *oauthstore.Store, be store.Store, app string) {
		ctx := t.Context()
		record := func(name string, req *fosite.Request, tok string) string {
			must(t, s.CreateAccessTokenSession(ctx, tok, req))
			raw, err := be.Get(ctx, app, atKey(tok))
			must(t, err)
			return string(raw)
		}
		// Handed over or decoded, the same small record.
		req := accessRequest("grant-handed")
		tok := jwtFor(t, req, nil)
		decoded := record("decoded", req, tok)
		req.Session.(*oauthstore.Session).Issued(tok, claimsIn(t, tok))
		if handed := record("handed", req, tok); handed != decoded || strings.Contains(handed, `"session"`) {
			t.Errorf("handed-over claims give %s, the token's payload %s", handed, decoded)
		}
		// Claims that do not say what the request holds: stored whole.
		for name, edit := range map[string]func(map[string]any){
			"sub":       func(c map[string]any) { c["sub"] = "other" },
			"cnf":       func(c map[string]any) { delete(c, "cnf") },
			"exp":       func(c map[string]any) { c["exp"] = c["exp"].(int64) + 60 },
			"auth_time": func(c map[string]any) { c["auth_time"] = 1 },
		} {
			req := accessRequest("grant-handed-" + name)
			tok := jwtFor(t, req, nil)
			req.Session.(*oauthstore.Session).Issued(tok, claimsIn(t, jwtFor(t, req, edit)))
			if raw := record(name, req, tok); !strings.Contains(raw, `"session"`) {
				t.Errorf("%s: handed-over claims unlike the request stored small: %s", name, raw)
			}
		}
		// Claims handed over for another token: this token's payload,
		// which does not say what the request holds, decides.
		req = accessRequest("grant-handed-other")
		other := jwtFor(t, req, nil)
		tok = jwtFor(t, req, func(c map[string]any) { c["sub"] = "other" })
		req.Session.(*oauthstore.Session).Issued(other, claimsIn(t, other))
		if raw := record("other", req, tok); !strings.Contains(raw, `"session"`) {
			t.Errorf("claims handed over for another token were taken for this one: %s", raw)
		}
	})
}

// TestMemoryStoreHoldsLittlePerAccessToken: under client-credentials load
// the memory store keeps every access token until it expires; what it
// keeps per token is measured, small record against the whole request an
// earlier release stored (issue 13: a hash and an expiry are enough).
func TestMemoryStoreHoldsLittlePerAccessToken(t *testing.T) {
	const n = 20000
	perToken := func(small bool) float64 {
		st := memory.New()
		defer st.Close()
		s := newStore("a", st)
		req := request("", "")
		req.Form.Set("grant_type", "client_credentials")
		sess := req.Session.(*oauthstore.Session)
		sess.Subject, sess.Claims = "web", nil
		sess.SetExpiresAt(fosite.AccessToken, time.Now().Add(time.Hour).Truncate(time.Second))
		toks := make([]string, n)
		for i := range toks {
			req.ID = fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i) // fosite's UUIDs
			toks[i] = jwtFor(t, req, nil)
			if !small {
				toks[i] = fmt.Sprintf("opaque-%d", i) // not a JWT: stored whole
			}
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i, tok := range toks {
			req.ID = fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)
			must(t, s.CreateAccessTokenSession(t.Context(), tok, req))
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(toks)
		return float64(after.HeapAlloc-before.HeapAlloc) / n
	}
	small, whole := perToken(true), perToken(false)
	t.Logf("memory store per client-credentials access token: %.0f B (whole request: %.0f B, %.2fx)", small, whole, small/whole)
	if small > 400 || small > whole/2 {
		t.Errorf("%.0f B per access token (whole request %.0f B)", small, whole)
	}
}
