package main

import (
	"errors"
	"testing"
	"time"

	"github.com/aero2/aero2/authz/keys/ossl"
)

// The OpenSSL ceiling counts with -tags openssl, and is refused, not
// faked, without it (scripts/test runs this package with the tag too).
func TestOpenSSLCeilingCounts(t *testing.T) {
	c, err := NewCeiling()
	if err != nil {
		t.Fatal(err)
	}
	oc, err := c.OpenSSL()
	if !ossl.Available {
		if !errors.Is(err, ossl.ErrUnavailable) {
			t.Fatalf("without OpenSSL: %v", err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := oc.Measure(100 * time.Millisecond); n <= 0 {
		t.Fatalf("%d OpenSSL signatures", n)
	}
}
