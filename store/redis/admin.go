package redis

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"

	goredis "github.com/redis/go-redis/v9"

	"github.com/aero2/aero2/store"
)

var _ store.Admin = (*Store)(nil)

// The admin listings SCAN: they are for an operator's command, never for
// a request, and SCAN walks the keyspace in small steps without blocking
// Redis the way KEYS would.

// scanBatch is SCAN's COUNT hint.
const scanBatch = 500

// globEscape quotes the characters SCAN's MATCH treats as a pattern, so a
// key prefix or application name is matched literally.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// scan returns the keys that match pattern (keyPattern). On Cluster it
// asks every master: an application's keys are on all of them.
func (s *Store) scan(ctx context.Context, pattern string) ([]string, error) {
	var (
		mu   sync.Mutex // ForEachMaster calls in parallel
		keys []string
	)
	one := func(ctx context.Context, c goredis.Cmdable) error {
		iter := c.Scan(ctx, 0, pattern, scanBatch).Iterator()
		for iter.Next(ctx) {
			mu.Lock()
			keys = append(keys, iter.Val())
			mu.Unlock()
		}
		return iter.Err()
	}
	var err error
	if cc, ok := s.c.(*goredis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error { return one(ctx, c) })
	} else {
		err = one(ctx, s.c)
	}
	return keys, wrap(err)
}

func (s *Store) ListUsers(ctx context.Context, app string) ([]*store.User, error) {
	keys, err := s.scan(ctx, s.keyPattern(app, "u", ""))
	if err != nil || len(keys) == 0 {
		return nil, err
	}
	var out []*store.User
	for len(keys) > 0 {
		n := min(len(keys), scanBatch)
		us, err := mgetJSON[store.User](ctx, s, keys[:n])
		if err != nil {
			return nil, err
		}
		out = append(out, us...)
		keys = keys[n:]
	}
	return out, nil
}

func (s *Store) SetUserDisabled(ctx context.Context, app, id string, disabled bool) error {
	key := s.userKey(app, id)
	return s.watchUser(ctx, key, func(tx *goredis.Tx, u *store.User) error {
		u.Disabled = disabled
		uj, err := json.Marshal(u)
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			p.Set(ctx, key, uj, 0)
			return nil
		})
		return err
	})
}

// watchUser runs fn on the stored user under WATCH of key (and of extra),
// retrying when another write got in between.
func (s *Store) watchUser(ctx context.Context, key string, fn func(tx *goredis.Tx, u *store.User) error, extra ...string) error {
	var err error
	for attempt := 0; attempt < maxWatchAttempts; attempt++ {
		err = s.watch(ctx, func(tx *goredis.Tx) error {
			b, err := tx.Get(ctx, key).Bytes()
			if err != nil {
				return err
			}
			var u store.User
			if err := json.Unmarshal(b, &u); err != nil {
				return err
			}
			return fn(tx, &u)
		}, append([]string{key}, extra...)...)
		if !errors.Is(err, goredis.TxFailedErr) || !contended(ctx, attempt) {
			return wrap(err)
		}
	}
	return wrap(errors.New("too much contention updating the user"))
}

// DeleteUser watches the user and its identity set, so that an identity
// linked meanwhile (LinkIdentity adds to the set) makes the transaction
// start again and is deleted with the rest.
func (s *Store) DeleteUser(ctx context.Context, app, id string) error {
	key, idents := s.userKey(app, id), s.userIdentsKey(app, id)
	if s.cluster && !s.legacy {
		return s.deleteUserAcross(ctx, app, id)
	}
	return s.watchUser(ctx, key, func(tx *goredis.Tx, u *store.User) error {
		members, err := tx.SMembers(ctx, idents).Result()
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			for _, m := range members {
				p.Del(ctx, s.key(app, "i", m))
			}
			p.Del(ctx, key, idents)
			if u.Email != "" {
				p.SRem(ctx, s.emailKey(app, u.Email), id)
			}
			return nil
		})
		return err
	}, idents)
}

func (s *Store) ListSessions(ctx context.Context, app string) ([]*store.Session, error) {
	keys, err := s.scan(ctx, s.keyPattern(app, "s", ""))
	if err != nil || len(keys) == 0 {
		return nil, err
	}
	cmds := make([]*goredis.SliceCmd, len(keys))
	_, err = s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.HMGet(ctx, k, "j", "seen")
		}
		return nil
	})
	if err != nil {
		return nil, wrap(err)
	}
	var out []*store.Session
	for _, c := range cmds {
		if sess, err := decodeSession(c.Val()); err == nil {
			out = append(out, sess) // an error: it expired since the SCAN
		}
	}
	return out, nil
}

func (s *Store) SetKeys(ctx context.Context, app, prefix string) ([]string, error) {
	full, err := s.scan(ctx, s.keyPattern(app, "x", prefix))
	if err != nil {
		return nil, err
	}
	keys := full[:0]
	for _, k := range full {
		if k, ok := s.callerKey(app, "x", k); ok {
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// deleteUserAcross is DeleteUser on Cluster, where the user's identities
// and email entry are in other slots: the user first (so that a link
// running meanwhile sees it gone and takes its claim back, linkAcross),
// then each identity that still names it, then its identity set and its
// email entry.
func (s *Store) deleteUserAcross(ctx context.Context, app, id string) error {
	key, idents := s.userKey(app, id), s.userIdentsKey(app, id)
	b, err := s.c.GetDel(ctx, key).Bytes()
	if err != nil {
		return wrap(err)
	}
	var u store.User
	if err := json.Unmarshal(b, &u); err != nil {
		return err
	}
	members, err := s.c.SMembers(ctx, idents).Result()
	if err != nil {
		return wrap(err)
	}
	for _, m := range members {
		if err := deleteIdentityOfScript.Run(ctx, s.c, []string{s.key(app, "i", m)}, id).Err(); err != nil {
			return wrap(err)
		}
	}
	if err := s.c.Del(ctx, idents).Err(); err != nil {
		return wrap(err)
	}
	if u.Email != "" {
		return wrap(s.c.SRem(ctx, s.emailKey(app, u.Email), id).Err())
	}
	return nil
}

// deleteIdentityOfScript deletes the identity KEYS[1] if it names the
// user ARGV[1].
var deleteIdentityOfScript = goredis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and cjson.decode(v)['user_id'] == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)
