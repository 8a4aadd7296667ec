package postgres

import (
	"context"
	"time"
)

// sweepBatch bounds one DELETE of the sweeper: a backlog of expired rows
// is removed a few thousand at a time, each batch a short transaction, so
// that no sweep holds locks or bloats WAL for long.
const sweepBatch = 2000

// sweeps delete expired rows. Every replica sweeps; SKIP LOCKED lets two
// sweeps (or a sweep and a request writing a row) pass each other.
var sweeps = []string{
	`DELETE FROM records WHERE (app, key) IN (SELECT app, key FROM records WHERE expires_at <= now() LIMIT $1 FOR UPDATE SKIP LOCKED)`,
	`DELETE FROM sets WHERE (app, key) IN (SELECT app, key FROM sets WHERE expires_at <= now() LIMIT $1 FOR UPDATE SKIP LOCKED)`,
	`DELETE FROM sessions WHERE (app, id) IN (SELECT app, id FROM sessions WHERE expires_at <= now() LIMIT $1 FOR UPDATE SKIP LOCKED)`,
	`DELETE FROM consents WHERE (app, user_id, client_id) IN (SELECT app, user_id, client_id FROM consents WHERE expires_at <= now() LIMIT $1 FOR UPDATE SKIP LOCKED)`,
	`DELETE FROM signing_keys WHERE app IN (SELECT app FROM signing_keys WHERE expires_at <= now() LIMIT $1 FOR UPDATE SKIP LOCKED)`,
	// A bucket that is full again means what an absent one means.
	`DELETE FROM rate_limits WHERE (app, key) IN (SELECT app, key FROM rate_limits
		WHERE tat <= (extract(epoch FROM now()) * 1000000)::bigint LIMIT $1 FOR UPDATE SKIP LOCKED)`,
}

func (s *Store) sweeper() {
	defer close(s.done)
	t := time.NewTicker(s.sweep)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if _, err := s.Sweep(context.Background()); err != nil {
				s.log.Warn("sweeping expired rows", "err", err)
			}
		}
	}
}

// Sweep deletes every expired row, sweepBatch at a time, and reports how
// many it deleted.
func (s *Store) Sweep(ctx context.Context) (int64, error) {
	var total int64
	for _, q := range sweeps {
		for {
			select {
			case <-s.stop:
				return total, nil
			default:
			}
			qctx, cancel := context.WithTimeout(ctx, s.timeout)
			tag, err := s.pool.Exec(qctx, q, sweepBatch)
			cancel()
			if err != nil {
				return total, err
			}
			total += tag.RowsAffected()
			if tag.RowsAffected() < sweepBatch {
				break
			}
		}
	}
	return total, nil
}
