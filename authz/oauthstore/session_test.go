package oauthstore_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/token/jwt"

	"github.com/aero2/aero2/authz/oauthstore"
)

// TestSessionRecordIsCompactAndWhole: a stored session leaves out the
// claims that are not set, reads back equal to what was stored, and
// records written in fosite's full form (an earlier release's) read the
// same.
func TestSessionRecordIsCompactAndWhole(t *testing.T) {
	at := time.Date(2026, 12, 1, 19, 36, 32, 469371056, time.UTC)
	s := oauthstore.NewSession()
	s.Subject, s.Username, s.SID, s.AuthTime, s.JKT, s.UserID = "sub", "alice", "sid", at, "jkt", "uid"
	s.SetExpiresAt(fosite.RefreshToken, at.Add(time.Hour))
	s.Claims = &jwt.IDTokenClaims{Issuer: "https://issuer", Subject: "sub", RequestedAt: at, AuthTime: at,
		AuthenticationMethodsReferences: []string{"pwd"}, Extra: map[string]any{"email": "a@example.com", "sid": "sid"}}
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
