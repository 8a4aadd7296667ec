package oauthstore

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
)

// TestHashNamesAsBefore: a record's name is the unpadded base64url of the
// SHA-256 of the signature, byte for byte what records already stored
// under are named by, for an empty signature, a short one (a refresh
// token's) and one of a JWT's length.
func TestHashNamesAsBefore(t *testing.T) {
	for _, s := range []string{"", "abc", strings.Repeat("eyJhbGciOiJSUzI1NiJ9.", 60)} {
		sum := sha256.Sum256([]byte(s))
		want := base64.RawURLEncoding.EncodeToString(sum[:])
		if got := hash(s); got != want {
			t.Errorf("hash(%d bytes) = %q, want %q", len(s), got, want)
		}
	}
	if got, want := len(hash("x")), base64.RawURLEncoding.EncodedLen(sha256.Size); got != want || got != hashLen {
		t.Errorf("a name is %d bytes, want %d (hashLen %d)", got, want, hashLen)
	}
}

// TestHashAllocatesOnlyTheName: naming a JWT access token (over a
// kilobyte) copies none of it to the heap; the name is the one allocation.
func TestHashAllocatesOnlyTheName(t *testing.T) {
	jwt := strings.Repeat("eyJhbGciOiJSUzI1NiJ9.", 60)
	var name string
	if n := testing.AllocsPerRun(100, func() { name = hash(jwt) }); n != 1 {
		t.Errorf("hash of %d bytes: %v allocations, want 1", len(jwt), n)
	}
	_ = name
}
