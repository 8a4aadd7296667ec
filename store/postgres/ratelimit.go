package postgres

import (
	"context"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aero2/aero2/store"
)

// RateLimit is one call of aero2_rate_limit (GCRA, the database's clock,
// one round trip). Buckets go sorted by key, so that two calls lock their
// rows in the same order and never deadlock.
func (s *Store) RateLimit(ctx context.Context, app string, buckets ...store.RateBucket) (store.RateResult, error) {
	if len(buckets) == 0 {
		return store.RateResult{Allowed: true}, nil
	}
	sorted := make([]store.RateBucket, len(buckets))
	copy(sorted, buckets)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Key < sorted[j].Key })
	keys := make([][]byte, len(sorted))
	intervals, bursts, ns := make([]int64, len(sorted)), make([]int64, len(sorted)), make([]int64, len(sorted))
	for i, b := range sorted {
		keys[i] = []byte(b.Key)
		intervals[i] = b.Rate.Interval().Microseconds()
		bursts[i] = int64(b.Rate.Burst)
		ns[i] = int64(b.N)
	}
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return store.RateResult{}, err
	}
	defer cancel()
	var allowed bool
	var remaining, retry int64
	err = s.pool.QueryRow(ctx, `SELECT allowed, remaining, retry_us FROM aero2_rate_limit(@app, @keys, @intervals, @bursts, @ns)`,
		pgx.NamedArgs{"app": app, "keys": keys, "intervals": intervals, "bursts": bursts, "ns": ns}).Scan(&allowed, &remaining, &retry)
	if err != nil {
		return store.RateResult{}, s.fail(ctx, err)
	}
	return store.RateResult{Allowed: allowed, Remaining: int(remaining), RetryAfter: time.Duration(retry) * time.Microsecond}, nil
}
