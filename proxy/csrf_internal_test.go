package proxy

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/aero2/aero2/config"
)

// TestCSRFKeyWithoutConfiguredKeyIsRandom: without a configured key, the
// sign-out form's key comes from crypto/rand, never from the clock (which
// an attacker can guess to within the start-up time and forge forms with).
func TestCSRFKeyWithoutConfiguredKeyIsRandom(t *testing.T) {
	build := func() (*Handler, time.Time, time.Time) {
		before := time.Now()
		h, err := New(Options{Config: &config.Config{}})
		after := time.Now()
		if err != nil {
			t.Fatal(err)
		}
		return h, before, after
	}
	// Pick a build whose clock window is short enough to search whole.
	var h *Handler
	var before, after time.Time
	for range 200 {
		if h, before, after = build(); after.Sub(before) < 50*time.Microsecond {
			break
		}
		h = nil
	}
	if h == nil {
		t.Fatal("no proxy.New call finished within 50µs in 200 tries; cannot search its clock window")
	}
	if len(h.csrfKey) != 32 {
		t.Fatalf("CSRF key has %d bytes, want 32", len(h.csrfKey))
	}
	for ns := before.UnixNano(); ns <= after.UnixNano(); ns++ {
		k, _ := hkdf.Key(sha256.New, []byte(fmt.Sprint(ns)), nil, "aero2 proxy csrf", 32)
		if bytes.Equal(k, h.csrfKey) {
			t.Fatalf("CSRF key derives from the clock (%d)", ns)
		}
	}
	if h2, _, _ := build(); bytes.Equal(h2.csrfKey, h.csrfKey) {
		t.Fatal("two proxies without a configured key share a CSRF key")
	}

	// A configured key is used as given (replicas must agree on it).
	key := bytes.Repeat([]byte{9}, 32)
	hc, err := New(Options{Config: &config.Config{}, CSRFKey: key})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(hc.csrfKey, key) {
		t.Fatal("configured CSRF key not used")
	}
}
