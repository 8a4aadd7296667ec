package redis

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/aero2/aero2/store"
)

// A session is a hash: "j" the JSON record, "seen" LastSeen in Unix
// nanoseconds (so a touch writes one small field, not the record), "u" the
// user ID. "us:<user>" is the set of the user's session IDs; it lives as
// long as the longest-lived session in it, and members whose session has
// expired are pruned when the set is read.
//
// The session's key is tagged by its ID and the set's by the user, so on
// Cluster they are in two slots: the set is written first and emptied
// last (a session is always in its user's set, for "sign out everywhere"
// and disabling the user), and a member that names no session of the user
// is dropped on reading.

// sessionOnlyScript creates the session's hash alone (ARGV as
// createSessionScript's).
var sessionOnlyScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local ms = tonumber(ARGV[4])
redis.call('HSET', KEYS[1], 'j', ARGV[1], 'u', ARGV[2], 'seen', ARGV[5])
if ms > 0 then redis.call('PEXPIRE', KEYS[1], ms) end
return 1
`)

// touchHash records ARGV[1] (Unix nanoseconds) as the session KEYS[1]'s
// last use and gives it ARGV[2] ms to live, unless its recorded use is as
// late: a touch that read the clock before a concurrent one may arrive
// after it, and LastSeen never moves back (store.Store). The two are
// compared as decimal strings, a longer one being later: Lua's numbers
// are doubles, which round nanoseconds since 1970.
const touchHash = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local cur = redis.call('HGET', KEYS[1], 'seen')
if not cur or #cur < #ARGV[1] or (#cur == #ARGV[1] and cur < ARGV[1]) then
  local ms = tonumber(ARGV[2])
  redis.call('HSET', KEYS[1], 'seen', ARGV[1])
  if ms > 0 then redis.call('PEXPIRE', KEYS[1], ms) else redis.call('PERSIST', KEYS[1]) end
end
`

// touchOnlyScript touches the session's hash alone (ARGV as
// touchSessionScript's).
var touchOnlyScript = goredis.NewScript(touchHash + `
return 1
`)

// extendScript makes the existing set KEYS[1] live at least ARGV[1] ms.
var extendScript = goredis.NewScript(extendTTL + `
if redis.call('EXISTS', KEYS[1]) == 1 then extend(KEYS[1], tonumber(ARGV[1]), true) end
return 1
`)

var createSessionScript = goredis.NewScript(extendTTL + `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local ms = tonumber(ARGV[4])
redis.call('HSET', KEYS[1], 'j', ARGV[1], 'u', ARGV[2], 'seen', ARGV[5])
if ms > 0 then redis.call('PEXPIRE', KEYS[1], ms) end
local existed = redis.call('EXISTS', KEYS[2]) == 1
redis.call('SADD', KEYS[2], ARGV[3])
extend(KEYS[2], ms, existed)
return 1
`)

// touchSessionScript is touchOnlyScript that also keeps the user's index
// KEYS[2] alive as long as the session (extend only lengthens it).
var touchSessionScript = goredis.NewScript(extendTTL + touchHash + `
extend(KEYS[2], tonumber(ARGV[2]), true)
return 1
`)

func (s *Store) sessionKey(app, id string) string   { return s.key(app, "s", id) }
func (s *Store) userSessKey(app, uid string) string { return s.key(app, "us", uid) }

func (s *Store) CreateSession(ctx context.Context, sess *store.Session, ttl time.Duration) error {
	j, err := json.Marshal(sess)
	if err != nil {
		return err
	}
	keys := []string{s.sessionKey(sess.App, sess.ID), s.userSessKey(sess.App, sess.UserID)}
	args := []any{j, sess.UserID, sess.ID, ms(ttl), sess.LastSeen.UnixNano()}
	script := createSessionScript
	if !s.sameSlot(keys...) {
		// The index first: the session never exists outside it.
		if err := wrap(setAddScript.Run(ctx, s.c, keys[1:], ms(ttl), sess.ID).Err()); err != nil {
			return err
		}
		keys, script = keys[:1], sessionOnlyScript
	}
	n, err := script.Run(ctx, s.c, keys, args...).Int()
	if err != nil {
		return wrap(err)
	}
	if n == 0 {
		return store.ErrExists
	}
	return nil
}

func decodeSession(vals []any) (*store.Session, error) {
	j, ok := vals[0].(string)
	if !ok {
		return nil, store.ErrNotFound
	}
	var sess store.Session
	if err := json.Unmarshal([]byte(j), &sess); err != nil {
		return nil, err
	}
	if seen, ok := vals[1].(string); ok {
		if ns, err := strconv.ParseInt(seen, 10, 64); err == nil {
			sess.LastSeen = time.Unix(0, ns).UTC()
		}
	}
	return &sess, nil
}

func (s *Store) GetSession(ctx context.Context, app, id string) (*store.Session, error) {
	vals, err := s.c.HMGet(ctx, s.sessionKey(app, id), "j", "seen").Result()
	if err != nil {
		return nil, wrap(err)
	}
	return decodeSession(vals)
}

func (s *Store) TouchSession(ctx context.Context, sess *store.Session, ttl time.Duration) error {
	keys := []string{s.sessionKey(sess.App, sess.ID), s.userSessKey(sess.App, sess.UserID)}
	script := touchSessionScript
	if !s.sameSlot(keys...) {
		// The index's life first, so it never ends before the session's.
		if err := wrap(extendScript.Run(ctx, s.c, keys[1:], ms(ttl)).Err()); err != nil {
			return err
		}
		keys, script = keys[:1], touchOnlyScript
	}
	n, err := script.Run(ctx, s.c, keys, sess.LastSeen.UnixNano(), ms(ttl)).Int()
	if err != nil {
		return wrap(err)
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

func (s *Store) DeleteSession(ctx context.Context, app, id string) error {
	key := s.sessionKey(app, id)
	uid, err := s.c.HGet(ctx, key, "u").Result()
	if errors.Is(err, goredis.Nil) {
		return nil
	}
	if err != nil {
		return wrap(err)
	}
	idx := s.userSessKey(app, uid)
	if !s.sameSlot(key, idx) {
		// The session, then its index entry: never the other way round.
		if err := s.c.Del(ctx, key).Err(); err != nil {
			return wrap(err)
		}
		return wrap(s.c.SRem(ctx, idx, id).Err())
	}
	_, err = s.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.Del(ctx, key)
		p.SRem(ctx, idx, id)
		return nil
	})
	return wrap(err)
}

func (s *Store) UserSessions(ctx context.Context, app, userID string) ([]*store.Session, error) {
	idx := s.userSessKey(app, userID)
	ids, err := s.c.SMembers(ctx, idx).Result()
	if err != nil || len(ids) == 0 {
		return nil, wrap(err)
	}
	cmds := make([]*goredis.SliceCmd, len(ids))
	_, err = s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HMGet(ctx, s.sessionKey(app, id), "j", "seen")
		}
		return nil
	})
	if err != nil {
		return nil, wrap(err)
	}
	var out []*store.Session
	var stale []any
	for i, c := range cmds {
		sess, err := decodeSession(c.Val())
		if err != nil || sess.UserID != userID || sess.App != app {
			// Expired, or an ID whose create failed: it is another's.
			stale = append(stale, ids[i])
			continue
		}
		out = append(out, sess)
	}
	if len(stale) > 0 {
		// Best effort: a failure leaves members that the next read prunes.
		_ = s.c.SRem(ctx, idx, stale...).Err()
	}
	return out, nil
}
