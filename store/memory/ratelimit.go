package memory

import (
	"context"
	"time"

	"github.com/aero2/aero2/store"
)

// RateLimit is GCRA, the same algorithm as store/redis's script: a
// bucket is the time at which it is full again ("theoretical arrival
// time"); spending a request moves that time one interval later, and a
// spend is refused when it would move it more than Burst intervals ahead
// of now.
func (s *Store) RateLimit(_ context.Context, app, key string, rate store.Rate, n int) (store.RateResult, error) {
	interval := rate.Interval()
	limit := interval * time.Duration(rate.Burst)
	id := k(app, key)
	s.rateMu.Lock()
	defer s.rateMu.Unlock()
	now := s.now()
	tat, ok := s.rates[id]
	if !ok || tat.Before(now) {
		tat = now
	}
	want := tat.Add(interval * time.Duration(max(n, 1)))
	if over := want.Sub(now) - limit; over > 0 {
		return store.RateResult{Remaining: remaining(limit, tat.Sub(now), interval), RetryAfter: over}, nil
	}
	if n > 0 {
		tat = want
		s.rates[id] = tat
	}
	return store.RateResult{Allowed: true, Remaining: remaining(limit, tat.Sub(now), interval)}, nil
}

// remaining is how many intervals fit between the bucket's fill level and
// its limit.
func remaining(limit, used, interval time.Duration) int {
	return int((limit - used) / interval)
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
