package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/aero2/aero2/store"
)

// Users are JSON at "u:<id>". An identity is JSON at "i:<idp>:<subject>";
// "ui:<user>" is the set of "<idp>:<subject>" linked to a user (identity
// provider IDs contain no ':'); "e:<email>" is the set of user IDs whose
// verified email is <email>, lower-cased.
//
// A user and its identity set are tagged by the user ID (one slot); an
// identity by "<idp>:<subject>" and an email's set by the email. On
// Cluster the multi-key writes become steps, each on one slot, ordered so
// that an identity only ever names a user that exists: the user first,
// then its identity, whose SET NX decides between concurrent sign-ups.
// The email index and the identity set are hints that reads check
// against the records they name.

// createUserOnlyScript stores the user and its identity set alone (on
// Cluster, before the identity is claimed).
var createUserOnlyScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
return 1
`)

// dropUserScript undoes createUserOnlyScript when the identity was taken:
// only the user this call wrote.
var dropUserScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
return 1
`)

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
	keys := []string{
		s.userKey(u.App, u.ID),
		s.identityKey(first.App, first.IDP, first.Subject),
		s.userIdentsKey(u.App, u.ID),
		s.emailKey(u.App, u.Email),
	}
	member := first.IDP + ":" + first.Subject
	if !s.sameSlot(keys...) {
		return s.createUserAcross(ctx, u, keys, uj, ij, member)
	}
	n, err := createUserScript.Run(ctx, s.c, keys, uj, ij, member, u.ID, flag).Int()
	if err != nil {
		return wrap(err)
	}
	if n == 0 {
		return store.ErrExists
	}
	return nil
}

// createUserAcross is CreateUser on Cluster: the user (with its identity
// set), then the identity with SET NX — of concurrent sign-ups of one
// identity exactly one claims it, and the others delete the user they
// wrote — then the email index. A failure half-way leaves at most a user
// that no identity names: nobody can sign in as it.
func (s *Store) createUserAcross(ctx context.Context, u *store.User, keys []string, uj, ij []byte, member string) error {
	user := []string{keys[0], keys[2]}
	n, err := createUserOnlyScript.Run(ctx, s.c, user, uj, member).Int()
	if err != nil {
		return wrap(err)
	}
	if n == 0 {
		return store.ErrExists
	}
	ok, err := s.c.SetNX(ctx, keys[1], ij, 0).Result()
	if err != nil {
		return wrap(err)
	}
	if !ok {
		if err := dropUserScript.Run(ctx, s.c, user, uj).Err(); err != nil {
			return wrap(err)
		}
		return store.ErrExists
	}
	if indexed(u) {
		return wrap(s.c.SAdd(ctx, keys[3], u.ID).Err())
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

// updateUserScript is UpdateUser in one step, without WATCH: it keeps the
// stored Disabled flag (ARGV[1] is the record with it unset, ARGV[2] with
// it set) and, where the email index is in the user's slot (ARGV[3] '1'),
// adds the user to the index of its new address (KEYS[2], when ARGV[5]
// is '1'). An index entry that must go — the old address was verified
// and is not the new one — is named by Go's lower-casing of the old
// address, which Lua's string.lower does not match beyond ASCII: the
// script then writes nothing and answers 0, and UpdateUser moves it under
// WATCH. Its answers: nil, no such user; 0, that; 1, written; the old
// record, written (index elsewhere: ARGV[3] '0'), for UpdateUser to take
// the old address out of the index.
var updateUserScript = goredis.NewScript(`
local old = redis.call('GET', KEYS[1])
if not old then return false end
local o = cjson.decode(old)
local oldIndexed = o['email_verified'] == true and type(o['email']) == 'string' and o['email'] ~= ''
if ARGV[3] == '1' and oldIndexed and (ARGV[5] ~= '1' or o['email'] ~= ARGV[4]) then return 0 end
if o['disabled'] == true then
  redis.call('SET', KEYS[1], ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
if ARGV[3] ~= '1' then return old end
if ARGV[5] == '1' then redis.call('SADD', KEYS[2], ARGV[6]) end
return 1
`)

// withDisabled is the JSON of a user (uj, Disabled unset) with Disabled
// set: "disabled" is the record's last field and omitted when false, so
// it goes in before the closing brace, without encoding the user twice
// (TestWithDisabledIsTheEncoding).
func withDisabled(uj []byte) []byte {
	out := make([]byte, 0, len(uj)+len(`,"disabled":true`))
	out = append(out, uj[:len(uj)-1]...)
	return append(out, `,"disabled":true}`...)
}

// UpdateUser writes the user in one script (updateUserScript) — the
// stored Disabled flag is kept, store.Admin.SetUserDisabled's alone —
// and, where the email index is in the user's slot, moves the index
// entry in the same step. Only when a verified address is replaced there
// does it fall back to a WATCH transaction that reads the old record
// first (updateUserWatched). The script is atomic, so concurrent sign-ins
// of one user never retry: under WATCH, 16 of them lost their race again
// and again. On Cluster the index is in other slots: the new address is
// added before the write and the old one removed after it, so the index
// names the user under every address it has had meanwhile;
// UsersByVerifiedEmail checks each user it names.
func (s *Store) UpdateUser(ctx context.Context, u *store.User) error {
	key := s.userKey(u.App, u.ID)
	// One slot for everything (a single node, or the application layout):
	// the index moves in the write's own step, one round trip less.
	oneSlot := !s.cluster || s.legacy
	if indexed(u) && !oneSlot {
		// Into the index first, whether or not the user exists: a stray
		// entry is checked and skipped on reading.
		if err := s.c.SAdd(ctx, s.emailKey(u.App, u.Email), u.ID).Err(); err != nil {
			return wrap(err)
		}
	}
	nu := *u
	nu.Disabled = false
	uj, err := json.Marshal(&nu)
	if err != nil {
		return err
	}
	keys, here, newIndexed := []string{key}, "0", "0"
	if oneSlot {
		keys, here = append(keys, s.emailKey(u.App, u.Email)), "1"
	}
	if indexed(u) {
		newIndexed = "1"
	}
	res, err := updateUserScript.Run(ctx, s.c, keys, uj, withDisabled(uj), here, u.Email, newIndexed, u.ID).Result()
	if err != nil {
		return wrap(err)
	}
	switch res := res.(type) {
	case int64:
		if res == 0 {
			return s.updateUserWatched(ctx, u, key)
		}
		return nil
	case string:
		var old store.User
		if err := json.Unmarshal([]byte(res), &old); err != nil {
			return err
		}
		if indexed(&old) && !(indexed(u) && strings.EqualFold(old.Email, u.Email)) {
			return wrap(s.c.SRem(ctx, s.emailKey(u.App, old.Email), u.ID).Err())
		}
		return nil
	}
	return fmt.Errorf("redis: unexpected answer %T from the user update", res)
}

// updateUserWatched is UpdateUser on one slot when the email index entry
// moves away from a verified address: under WATCH, the old record read
// (its address names the entry to remove), then the write and the index
// move in one transaction.
func (s *Store) updateUserWatched(ctx context.Context, u *store.User, key string) error {
	var err error
	for attempt := 0; attempt < maxWatchAttempts; attempt++ {
		err = s.watch(ctx, func(tx *goredis.Tx) error {
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
		if !errors.Is(err, goredis.TxFailedErr) || !contended(ctx, attempt) {
			break
		}
	}
	if errors.Is(err, goredis.TxFailedErr) {
		return wrap(errors.New("too much contention updating the user"))
	}
	return wrap(err)
}

// SignInUser: the identity (which names the user), then in one pipeline
// the user, its identity set and the size of its session index — keys of
// one hash tag, the user's, so of one node on Cluster too — and, only
// when the set names identities besides this one, their MGET. The index's
// size counts members whose session has expired until a read prunes
// them: at least the live sessions, as store.SignIn.Sessions may be.
func (s *Store) SignInUser(ctx context.Context, app, idp, subject string) (*store.SignIn, error) {
	b, err := s.c.Get(ctx, s.identityKey(app, idp, subject)).Bytes()
	if err != nil {
		return nil, wrap(err)
	}
	var id store.Identity
	if err := json.Unmarshal(b, &id); err != nil {
		return nil, err
	}
	var get *goredis.StringCmd
	var members *goredis.StringSliceCmd
	var sessions *goredis.IntCmd
	_, err = s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		get = p.Get(ctx, s.userKey(app, id.UserID))
		members = p.SMembers(ctx, s.userIdentsKey(app, id.UserID))
		sessions = p.SCard(ctx, s.userSessKey(app, id.UserID))
		return nil
	})
	if err != nil {
		return nil, wrap(err) // goredis.Nil: the user is gone
	}
	var u store.User
	if err := json.Unmarshal([]byte(get.Val()), &u); err != nil {
		return nil, err
	}
	// As Identities: the members, those whose identity still names the
	// user; this identity's stored copy is the one just read.
	self := idp + ":" + subject
	var idents []*store.Identity
	var others []string
	for _, m := range members.Val() {
		if m == self {
			if id.UserID == u.ID {
				cp := id
				idents = append(idents, &cp)
			}
			continue
		}
		others = append(others, s.key(app, "i", m))
	}
	if len(others) > 0 {
		xs, err := mgetJSON[store.Identity](ctx, s, others)
		if err != nil {
			return nil, err
		}
		for _, x := range xs {
			if x.UserID == u.ID {
				idents = append(idents, x)
			}
		}
	}
	return &store.SignIn{User: &u, Identity: &id, Identities: idents, Sessions: int(sessions.Val())}, nil
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
	us, err := mgetJSON[store.User](ctx, s, keys)
	if err != nil {
		return nil, err
	}
	// The index is a hint (UpdateUser): the user's record decides.
	out := us[:0]
	for _, u := range us {
		if indexed(u) && strings.EqualFold(u.Email, email) {
			out = append(out, u)
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func (s *Store) LinkIdentity(ctx context.Context, id *store.Identity) error {
	ij, err := json.Marshal(id)
	if err != nil {
		return err
	}
	keys := []string{
		s.identityKey(id.App, id.IDP, id.Subject),
		s.userKey(id.App, id.UserID),
		s.userIdentsKey(id.App, id.UserID),
	}
	if !s.sameSlot(keys...) {
		return s.linkAcross(ctx, keys, ij, id.IDP+":"+id.Subject)
	}
	n, err := linkIdentityScript.Run(ctx, s.c, keys, ij, id.IDP+":"+id.Subject).Int()
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

// linkAcross is LinkIdentity on Cluster: the identity is claimed with
// SET NX (exactly one of concurrent links wins), added to the user's set,
// and then the user must still exist: a user deleted meanwhile
// (DeleteUser deletes the user before it reads the set) takes the claim
// back, so no identity is left naming a user that is gone.
func (s *Store) linkAcross(ctx context.Context, keys []string, ij []byte, member string) error {
	// As the script: a linked identity is ErrExists before an absent user
	// is ErrNotFound.
	n, err := s.c.Exists(ctx, keys[0]).Result()
	if err != nil {
		return wrap(err)
	}
	if n > 0 {
		return store.ErrExists
	}
	n, err = s.c.Exists(ctx, keys[1]).Result()
	if err != nil {
		return wrap(err)
	}
	if n == 0 {
		return store.ErrNotFound
	}
	ok, err := s.c.SetNX(ctx, keys[0], ij, 0).Result()
	if err != nil {
		return wrap(err)
	}
	if !ok {
		return store.ErrExists
	}
	if err := s.c.SAdd(ctx, keys[2], member).Err(); err != nil {
		return wrap(err)
	}
	if n, err = s.c.Exists(ctx, keys[1]).Result(); err != nil {
		return wrap(err)
	}
	if n == 0 {
		if err := s.deleteIf(ctx, keys[0], ij); err != nil {
			return wrap(err)
		}
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
	ids, err := mgetJSON[store.Identity](ctx, s, keys)
	if err != nil {
		return nil, err
	}
	// A member whose link was taken back names no identity of the user.
	out := ids[:0]
	for _, id := range ids {
		if id.UserID == userID {
			out = append(out, id)
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// mgetJSON reads JSON records with one MGET; absent keys are skipped.
func mgetJSON[T any](ctx context.Context, s *Store, keys []string) ([]*T, error) {
	vals, err := s.mget(ctx, keys)
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

// maxWatchAttempts bounds the attempts of a WATCH transaction on a user
// that other writers keep changing. With contended's pauses, 16
// concurrent sign-ins of one user still ran out of 10 once in 3,500.
const maxWatchAttempts = 25

// contended waits before another attempt of a WATCH transaction that
// another writer beat (attempt counts from 0): a random pause up to 1 ms,
// doubling each attempt up to 32 ms, so that writers racing on one user
// (a person's sign-ins in several tabs at once, a script's in parallel)
// spread out instead of colliding again at once; without it 16 concurrent
// sign-ins of one user ran out of attempts and answered 503. False when
// ctx ends first.
func contended(ctx context.Context, attempt int) bool {
	d := time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 5)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
