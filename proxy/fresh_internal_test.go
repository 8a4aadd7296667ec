package proxy

import (
	"testing"
	"time"
)

// TestFreshRenewsShortTokensHalfway: an access token is renewed
// refreshMargin before it expires, or half-way through its lifetime when
// it lives less than twice refreshMargin; never only once expired.
func TestFreshRenewsShortTokensHalfway(t *testing.T) {
	issued := time.Unix(1_000_000, 0)
	for _, c := range []struct {
		name     string
		lifetime time.Duration // as the provider said; 0: not said
		expiry   time.Duration // after issued
		at       time.Duration // after issued
		fresh    bool
	}{
		{"long token, early", time.Hour, time.Hour, time.Minute, true},
		{"long token, within the margin", time.Hour, time.Hour, time.Hour - refreshMargin + time.Second, false},
		{"unknown lifetime, within the margin", 0, time.Hour, time.Hour - refreshMargin + time.Second, false},
		{"unknown short lifetime: due at once", 0, 20 * time.Second, 0, false},
		{"20s token, first half", 20 * time.Second, 20 * time.Second, 9 * time.Second, true},
		{"20s token, second half", 20 * time.Second, 20 * time.Second, 11 * time.Second, false},
		{"8s token, just issued", 8 * time.Second, 8 * time.Second, 0, true},
		{"8s token, expired", 8 * time.Second, 8 * time.Second, 9 * time.Second, false},
	} {
		now := issued.Add(c.at)
		s := &sessions{now: func() time.Time { return now }}
		rec := &record{AccessExpiry: issued.Add(c.expiry), AccessLifetime: c.lifetime}
		if got := s.fresh(rec); got != c.fresh {
			t.Errorf("%s: fresh = %v, want %v", c.name, got, c.fresh)
		}
	}
	if s := (&sessions{now: time.Now}); !s.fresh(&record{}) {
		t.Error("a token without an expiry is never due")
	}
}
