package oauthstore_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/token/jwt"

	"github.com/aero2/aero2/authz/oauthstore"
	"github.com/aero2/aero2/store"
)

// TestSessionRecordIsCompactAndWhole: a stored session leaves out the
// claims that are not set, reads back equal to what was stored, and
// records written in fosite's full form (an earlier release's) read the
// same.
func TestSessionRecordIsCompactAndWhole(t *testing.T) {
	at := time.Date(2026, 12, 1, 19, 36, 32, 469371056, time.UTC)
	s := goldenSessionValue()
	s.Headers = &jwt.Headers{}
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, unset := range []string{`"jti"`, `"nonce"`, `"exp"`, `"iat"`, `"at_hash"`, `"c_hash"`, `"acr"`, `"id_token_headers"`, `0001-01-01`} {
		if strings.Contains(string(data), unset) {
			t.Errorf("stored session has %s: %s", unset, data)
		}
	}
	got := oauthstore.NewSession()
	if err := json.Unmarshal(data, got); err != nil {
		t.Fatal(err)
	}
	got.Headers = s.Headers // empty either way
	if !reflect.DeepEqual(got, s) {
		t.Fatalf("read back\n%+v %+v\nwant\n%+v %+v", got, got.Claims, s, s.Claims)
	}

	// fosite's own form, as records were written before.
	full, err := json.Marshal(struct {
		Subject string             `json:"sub"`
		Claims  *jwt.IDTokenClaims `json:"id_token_claims"`
		Headers *jwt.Headers       `json:"id_token_headers"`
	}{"sub", s.Claims, &jwt.Headers{Extra: map[string]any{"kid": "k1"}}})
	if err != nil {
		t.Fatal(err)
	}
	old := oauthstore.NewSession()
	if err := json.Unmarshal(full, old); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(old.Claims, s.Claims) || old.Headers.Extra["kid"] != "k1" || old.Subject != "sub" {
		t.Fatalf("earlier record: %+v %+v", old.Claims, old.Headers)
	}

	// Laid over a session, a record keeps what it does not hold.
	into := oauthstore.NewSession()
	into.SetExpiresAt(fosite.AccessToken, at)
	into.Claims.Nonce = "kept"
	if err := json.Unmarshal(data, into); err != nil {
		t.Fatal(err)
	}
	if into.GetExpiresAt(fosite.AccessToken) != at || into.Claims.Nonce != "kept" || into.Claims.Subject != "sub" {
		t.Fatalf("overlay lost the session's own fields: %+v %+v", into, into.Claims)
	}
}

// goldenSession is a session as the release before storedSession wrote it
// (through Session.MarshalJSON, inside and outside a record).
const goldenSession = `{"sub":"sub","uid":"uid","username":"alice","sid":"sid","auth_time":"2026-12-01T19:36:32.469371056Z",` +
	`"jkt":"jkt","expires_at":{"refresh_token":"2026-12-01T20:36:32.469371056Z"},"id_token_claims":{"iss":"https://issuer",` +
	`"sub":"sub","rat":"2026-12-01T19:36:32.469371056Z","auth_time":"2026-12-01T19:36:32.469371056Z","amr":["pwd"],` +
	`"ext":{"email":"a@example.com","sid":"sid"}},"id_token_headers":{"extra":{"alg":"RS256"}}}`

func goldenSessionValue() *oauthstore.Session {
	at := time.Date(2026, 12, 1, 19, 36, 32, 469371056, time.UTC)
	s := oauthstore.NewSession()
	s.Subject, s.Username, s.SID, s.AuthTime, s.JKT, s.UserID = "sub", "alice", "sid", at, "jkt", "uid"
	s.SetExpiresAt(fosite.RefreshToken, at.Add(time.Hour))
	s.Claims = &jwt.IDTokenClaims{Issuer: "https://issuer", Subject: "sub", RequestedAt: at, AuthTime: at,
		AuthenticationMethodsReferences: []string{"pwd"}, Extra: map[string]any{"email": "a@example.com", "sid": "sid"}}
	s.Headers = &jwt.Headers{Extra: map[string]any{"alg": "RS256"}}
	return s
}

// TestRecordsHoldSessionsAsBefore: a refresh token's record holds its
// session byte for byte as the earlier release wrote it, and a record of
// that release reads back the session it held.
func TestRecordsHoldSessionsAsBefore(t *testing.T) {
	if data, err := json.Marshal(goldenSessionValue()); err != nil || string(data) != goldenSession {
		t.Fatalf("session JSON %s (%v),\nwant %s", data, err, goldenSession)
	}
	backends(t, func(t *testing.T, s *oauthstore.Store, be store.Store, app string) {
		req := request("grant-golden", "sid")
		req.Session = goldenSessionValue()
		must(t, s.CreateRefreshTokenSession(t.Context(), "rt-golden", "", req))
		sum := sha256.Sum256([]byte("rt-golden"))
		raw, err := be.Get(t.Context(), app, "oauth:rt:"+base64.RawURLEncoding.EncodeToString(sum[:]))
		must(t, err)
		var rec struct {
			Session json.RawMessage `json:"session"`
		}
		must(t, json.Unmarshal(raw, &rec))
		if string(rec.Session) != goldenSession {
			t.Errorf("record's session\n%s\nwant\n%s", rec.Session, goldenSession)
		}
		got, err := s.GetRefreshTokenSession(t.Context(), "rt-golden", oauthstore.NewSession())
		must(t, err)
		if gs := got.GetSession().(*oauthstore.Session); !reflect.DeepEqual(gs, goldenSessionValue()) {
			t.Errorf("read back %+v %+v %+v", gs, gs.Claims, gs.Headers)
		}
	})
}
