package authz

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/token/hmac"

	"github.com/aero2/aero2/authz/oauthstore"
)

func nameStrategy(t *testing.T, secret byte) *tokenStrategy {
	t.Helper()
	cfg := &fosite.Config{GlobalSecret: bytes.Repeat([]byte{secret}, 32), RefreshTokenLifespan: time.Hour, AuthorizeCodeLifespan: 5 * time.Minute}
	names, err := newNameCipher(cfg.GlobalSecret)
	if err != nil {
		t.Fatal(err)
	}
	codeNames, err := newCodeNameCipher(cfg.GlobalSecret)
	if err != nil {
		t.Fatal(err)
	}
	return &tokenStrategy{opaque: oauth2.NewHMACSHAStrategyUnPrefixed(&hmac.HMACStrategy{Config: cfg}, cfg), names: names, codeNames: codeNames, now: time.Now}
}

func userGrant(user, sid string) *fosite.Request {
	req := fosite.NewRequest()
	sess := oauthstore.NewSession()
	sess.Subject, sess.SID = user, sid
	sess.SetExpiresAt(fosite.RefreshToken, time.Now().Add(time.Hour))
	req.Session = sess
	return req
}

// TestRefreshTokenNamesItsUser: a refresh token of a user's grant names
// the user, sealed (the ID is not readable in the token, which a pairwise
// client must not learn) and bound to the token; its signature carries the
// name for the store. The name is the client's input: every altered,
// moved, oversized or malformed name names nothing, and a token without
// one (an earlier release's, or a grant without a user) keeps working.
func TestRefreshTokenNamesItsUser(t *testing.T) {
	s := nameStrategy(t, 7)
	ctx := t.Context()
	const user = "otvtq5hfaz63jrgp3jzxjajk3i"
	tok, sig, err := s.GenerateRefreshToken(ctx, userGrant(user, "sid-1"))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || strings.Contains(tok, user) {
		t.Fatalf("token %q: want three parts and no readable user ID", tok)
	}
	if got := s.RefreshTokenSignature(ctx, tok); got != sig || got != oauthstore.NamedSignature(parts[1], user) {
		t.Fatalf("signature of the token %q, issued as %q; want %q", got, sig, oauthstore.NamedSignature(parts[1], user))
	}
	if err := s.ValidateRefreshToken(ctx, userGrant(user, "sid-1"), tok); err != nil {
		t.Fatalf("validate: %v", err)
	}

	other, _, err := s.GenerateRefreshToken(ctx, userGrant("mallory", "sid-2"))
	if err != nil {
		t.Fatal(err)
	}
	otherParts := strings.Split(other, ".")
	flip := func(s string) string {
		b := []byte(s)
		b[len(b)/2] ^= 1
		if b[len(b)/2] == '.' {
			b[len(b)/2] = 'A'
		}
		return string(b)
	}
	hostile := map[string]string{
		"another token's name": parts[0] + "." + parts[1] + "." + otherParts[2],
		"name altered":         parts[0] + "." + parts[1] + "." + flip(parts[2]),
		"name of another key":  parts[0] + "." + parts[1] + "." + strings.Split(mustToken(t, nameStrategy(t, 8), user), ".")[2],
		"name not base64":      parts[0] + "." + parts[1] + ".%%%%",
		"name empty":           parts[0] + "." + parts[1] + ".",
		"name too short":       parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString([]byte("short")),
		"name oversized":       parts[0] + "." + parts[1] + "." + strings.Repeat("A", 1<<20),
		"a fourth part":        tok + ".x",
		"plain user name":      parts[0] + "." + parts[1] + "." + user,
		"name spliced in sig":  parts[0] + "." + parts[1] + "~" + user,
		"no key":               "." + parts[1],
		"no dot":               parts[0],
		"empty":                "",
	}
	for name, bad := range hostile {
		if got := s.RefreshTokenSignature(ctx, bad); got != "" {
			t.Errorf("%s: signature %.60q, want none", name, got)
		}
	}

	// Without a user (no browser session), and as issued before names:
	// fosite's two parts, read without a user.
	plain, plainSig, err := s.GenerateRefreshToken(ctx, userGrant("svc", ""))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(plain, ".") != 1 || s.RefreshTokenSignature(ctx, plain) != plainSig || strings.Contains(plainSig, "~") {
		t.Fatalf("token without a user: %q %q", plain, plainSig)
	}
	legacy := parts[0] + "." + parts[1]
	if got := s.RefreshTokenSignature(ctx, legacy); got != parts[1] {
		t.Fatalf("unnamed token: signature %q, want %q", got, parts[1])
	}
	if err := s.ValidateRefreshToken(ctx, userGrant(user, "sid-1"), legacy); err != nil {
		t.Fatalf("validate the unnamed token: %v", err)
	}
}

func mustToken(t *testing.T, s *tokenStrategy, user string) string {
	t.Helper()
	tok, _, err := s.GenerateRefreshToken(t.Context(), userGrant(user, "sid"))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
