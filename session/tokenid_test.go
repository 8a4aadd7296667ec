package session_test

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/aero2/aero2/session"
)

// TestTokenID: a cookie token's store ID is the base64url SHA-256 of the
// token; anything that is not 32 bytes of unpadded base64url is refused
// before a store is asked. The cookie is the client's input.
func TestTokenID(t *testing.T) {
	good := base64.RawURLEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	sum := sha256.Sum256([]byte(good))
	want := base64.RawURLEncoding.EncodeToString(sum[:])
	if id, ok := session.TokenID(good); !ok || id != want {
		t.Fatalf("TokenID(%q) = %q, %v; want %q", good, id, ok, want)
	}
	for _, bad := range []string{
		"",
		good[:42],
		good + "A",
		good[:42] + "=",                 // padding
		good[:41] + "==",                // padding
		good[:42] + "+",                 // standard alphabet
		good[:42] + "/",                 // standard alphabet
		good[:20] + "." + good[21:],     // a separator
		good[:20] + "\x00" + good[21:],  // NUL
		good[:20] + "é"[:1] + good[21:], // half a rune
		strings.Repeat("A", 44),         // 33 bytes
		strings.Repeat("A", 8<<10),      // oversized
		good[:42] + "\n",                // a line break
		" " + good[1:],                  // a space
	} {
		if id, ok := session.TokenID(bad); ok || id != "" {
			t.Errorf("TokenID(%q) = %q, %v; want refused", bad, id, ok)
		}
		if _, ok := session.TokenKey(bad); ok {
			t.Errorf("TokenKey(%q) accepted", bad)
		}
	}
	if key, ok := session.TokenKey(good); !ok || string(key[:]) != want {
		t.Fatalf("TokenKey(%q) = %q, %v; want %q", good, key[:], ok, want)
	}
	// The proxy looks its cache up with it on every proxied request.
	if n := testing.AllocsPerRun(100, func() { session.TokenKey(good) }); n != 0 {
		t.Errorf("TokenKey allocates %v times, want none", n)
	}
	// It runs on every request with a cookie: one allocation, the ID.
	if n := testing.AllocsPerRun(100, func() { session.TokenID(good) }); n > 1 {
		t.Errorf("TokenID allocates %v times, want at most 1", n)
	}
}
