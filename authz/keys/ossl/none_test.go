//go:build !(openssl && cgo)

package ossl_test

import (
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"testing"

	"github.com/aero2/aero2/authz/keys/ossl"
)

// Without the tag there is no OpenSSL, and New says so: callers fall back
// to crypto/rsa.
func TestUnavailableWithoutTag(t *testing.T) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ossl.New(k); ossl.Available || !errors.Is(err, ossl.ErrUnavailable) {
		t.Fatalf("Available %v, New: %v", ossl.Available, err)
	}
}
