package memory

import (
	"context"
	"math"
	"time"

	"github.com/aero2/aero2/store"
)

// RateLimit is GCRA, the same algorithm as store/redis's script: a
// bucket is the time at which it is full again ("theoretical arrival
// time"); spending a request moves that time one interval later, and a
// spend is refused when it would move it more than Burst intervals ahead
// of now.
func (s *Store) RateLimit(_ context.Context, app string, buckets ...store.RateBucket) (store.RateResult, error) {
	s.rateMu.Lock()
	defer s.rateMu.Unlock()
	now := s.now()
	res := store.RateResult{Allowed: true, Remaining: math.MaxInt}
	next := make([]time.Time, len(buckets))
	for i, b := range buckets {
		interval := b.Rate.Interval()
		limit := interval * time.Duration(b.Rate.Burst)
		tat, ok := find(s.rates, app, b.Key)
		if !ok || tat.Before(now) {
			tat = now
		}
		want := tat.Add(interval * time.Duration(max(b.N, 1)))
		if over := want.Sub(now) - limit; over > 0 {
			res.Allowed = false
			res.RetryAfter = max(res.RetryAfter, over)
		} else if b.N > 0 {
			tat = want
		}
		next[i] = tat
		res.Remaining = min(res.Remaining, int((limit-tat.Sub(now))/interval))
	}
	if res.Allowed {
		for i, b := range buckets {
			if b.N > 0 {
				s.rates[k(app, b.Key)] = next[i]
			}
		}
	}
	return res, nil
}

// sweepRates drops full buckets: they mean what an absent one means.
func (s *Store) sweepRates() {
	s.rateMu.Lock()
	defer s.rateMu.Unlock()
	now := s.now()
	for id, tat := range s.rates {
		if !tat.After(now) {
			delete(s.rates, id)
		}
	}
}
