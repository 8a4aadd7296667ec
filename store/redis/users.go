package redis

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/aero2/aero2/store"
)

// Users are JSON at "u:<id>". An identity is JSON at "i:<idp>:<subject>";
// "ui:<user>" is the set of "<idp>:<subject>" linked to a user (identity
// provider IDs contain no ':'); "e:<email>" is the set of user IDs whose
// verified email is <email>, lower-cased.

var createUserScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 1 or redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[3])
if ARGV[5] == '1' then redis.call('SADD', KEYS[4], ARGV[4]) end
return 1
`)

var linkIdentityScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[2])
return 1
`)

// updateIdentityScript replaces an identity only if it is linked to the
// same user: an update must not move an identity between users.
var updateIdentityScript = goredis.NewScript(`
local old = redis.call('GET', KEYS[1])
if not old then return 0 end
if cjson.decode(old)['user_id'] ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
`)

func (s *Store) userKey(app, id string) string { return s.key(app, "u", id) }
func (s *Store) identityKey(app, idp, subject string) string {
	return s.key(app, "i", idp+":"+subject)
}
func (s *Store) userIdentsKey(app, uid string) string { return s.key(app, "ui", uid) }
func (s *Store) emailKey(app, email string) string {
	return s.key(app, "e", strings.ToLower(email))
}

func indexed(u *store.User) bool { return u.EmailVerified && u.Email != "" }

func (s *Store) CreateUser(ctx context.Context, u *store.User, first *store.Identity) error {
	uj, err := json.Marshal(u)
	if err != nil {
		return err
	}
	ij, err := json.Marshal(first)
	if err != nil {
		return err
	}
	flag := "0"
	if indexed(u) {
		flag = "1"
	}
	n, err := createUserScript.Run(ctx, s.c, []string{
		s.userKey(u.App, u.ID),
		s.identityKey(first.App, first.IDP, first.Subject),
		s.userIdentsKey(u.App, u.ID),
		s.emailKey(u.App, u.Email),
	}, uj, ij, first.IDP+":"+first.Subject, u.ID, flag).Int()
	if err != nil {
		return wrap(err)
	}
	if n == 0 {
		return store.ErrExists
	}
	return nil
}

func (s *Store) GetUser(ctx context.Context, app, id string) (*store.User, error) {
	b, err := s.c.Get(ctx, s.userKey(app, id)).Bytes()
	if err != nil {
		return nil, wrap(err)
	}
	var u store.User
	if err := json.Unmarshal(b, &u); err != nil {
		return nil, err
	}
	return &u, nil
}

// UpdateUser moves the email index entry in the same transaction as the
// write, under WATCH of the user, so the index never names a stale email.
// The stored Disabled flag is kept (store.Admin.SetUserDisabled's alone).
func (s *Store) UpdateUser(ctx context.Context, u *store.User) error {
	key := s.userKey(u.App, u.ID)
	var err error
	for attempt := 0; attempt < 10; attempt++ {
		err = s.c.Watch(ctx, func(tx *goredis.Tx) error {
			b, err := tx.Get(ctx, key).Bytes()
			if err != nil {
				return err
			}
			var old store.User
			if err := json.Unmarshal(b, &old); err != nil {
				return err
			}
			nu := *u
			nu.Disabled = old.Disabled
			uj, err := json.Marshal(&nu)
			if err != nil {
				return err
			}
			_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
				if indexed(&old) {
					p.SRem(ctx, s.emailKey(u.App, old.Email), u.ID)
				}
				p.Set(ctx, key, uj, 0)
				if indexed(u) {
					p.SAdd(ctx, s.emailKey(u.App, u.Email), u.ID)
				}
				return nil
			})
			return err
		}, key)
		if !errors.Is(err, goredis.TxFailedErr) {
			return wrap(err)
		}
	}
	return wrap(errors.New("too much contention updating the user"))
}

func (s *Store) UserByIdentity(ctx context.Context, app, idp, subject string) (*store.User, *store.Identity, error) {
	b, err := s.c.Get(ctx, s.identityKey(app, idp, subject)).Bytes()
	if err != nil {
		return nil, nil, wrap(err)
	}
	var id store.Identity
	if err := json.Unmarshal(b, &id); err != nil {
		return nil, nil, err
	}
	u, err := s.GetUser(ctx, app, id.UserID)
	if err != nil {
		return nil, nil, err
	}
	return u, &id, nil
}

func (s *Store) UsersByVerifiedEmail(ctx context.Context, app, email string) ([]*store.User, error) {
	ids, err := s.c.SMembers(ctx, s.emailKey(app, email)).Result()
	if err != nil || len(ids) == 0 {
		return nil, wrap(err)
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = s.userKey(app, id)
	}
	return mgetJSON[store.User](ctx, s, keys)
}

func (s *Store) LinkIdentity(ctx context.Context, id *store.Identity) error {
	ij, err := json.Marshal(id)
	if err != nil {
		return err
	}
	n, err := linkIdentityScript.Run(ctx, s.c, []string{
		s.identityKey(id.App, id.IDP, id.Subject),
		s.userKey(id.App, id.UserID),
		s.userIdentsKey(id.App, id.UserID),
	}, ij, id.IDP+":"+id.Subject).Int()
	switch {
	case err != nil:
		return wrap(err)
	case n < 0:
		return store.ErrExists
	case n == 0:
		return store.ErrNotFound
	}
	return nil
}

func (s *Store) UpdateIdentity(ctx context.Context, id *store.Identity) error {
	ij, err := json.Marshal(id)
	if err != nil {
		return err
	}
	n, err := updateIdentityScript.Run(ctx, s.c,
		[]string{s.identityKey(id.App, id.IDP, id.Subject)}, ij, id.UserID).Int()
	if err != nil {
		return wrap(err)
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

func (s *Store) Identities(ctx context.Context, app, userID string) ([]*store.Identity, error) {
	members, err := s.c.SMembers(ctx, s.userIdentsKey(app, userID)).Result()
	if err != nil || len(members) == 0 {
		return nil, wrap(err)
	}
	keys := make([]string, len(members))
	for i, m := range members {
		keys[i] = s.key(app, "i", m)
	}
	return mgetJSON[store.Identity](ctx, s, keys)
}

// mgetJSON reads JSON records with one MGET; absent keys are skipped.
func mgetJSON[T any](ctx context.Context, s *Store, keys []string) ([]*T, error) {
	vals, err := s.c.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, wrap(err)
	}
	var out []*T
	for _, v := range vals {
		if str, ok := v.(string); ok {
			var rec T
			if err := json.Unmarshal([]byte(str), &rec); err != nil {
				return nil, err
			}
			out = append(out, &rec)
		}
	}
	return out, nil
}
