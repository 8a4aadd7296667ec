package redis

import (
	"context"
	"errors"

	goredis "github.com/redis/go-redis/v9"

	"github.com/aero2/aero2/store"
)

// GetSessionAndRecord pipelines the session's HMGET and the record's GET:
// one round trip (per node, in parallel, when the two keys live on two
// Cluster masters).
func (s *Store) GetSessionAndRecord(ctx context.Context, app, id, key string) (*store.Session, []byte, error) {
	var hm *goredis.SliceCmd
	var get *goredis.StringCmd
	_, err := s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		hm = p.HMGet(ctx, s.sessionKey(app, id), "j", "seen")
		get = p.Get(ctx, s.key(app, "r", key))
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, nil, wrap(err)
	}
	sess, err := decodeSession(hm.Val())
	if errors.Is(err, store.ErrNotFound) {
		sess = nil
	} else if err != nil {
		return nil, nil, err
	}
	var v []byte
	if str, err := get.Result(); err == nil {
		v = []byte(str)
	} else if !errors.Is(err, goredis.Nil) {
		return nil, nil, wrap(err)
	}
	return sess, v, nil
}
