package store

import (
	"context"
	"slices"
	"time"
)

// OpKind is what one operation of a batch does.
type OpKind int

const (
	// OpPut stores Value under Key for TTL, like Records.Put.
	OpPut OpKind = iota + 1
	// OpDelete removes the record Key, like Records.Delete.
	OpDelete
	// OpSetAdd adds Members to the set Key for at least TTL, like
	// Sets.SetAdd.
	OpSetAdd
	// OpSetRemove removes Members from the set Key, like Sets.SetRemove.
	OpSetRemove
	// OpCreate stores Value under Key for TTL only if no live record has
	// Key, like Records.Create: a guard. If any OpCreate of a batch finds
	// its key taken, Apply returns ErrExists and writes nothing at all. Of
	// concurrent batches guarded by one key, exactly one is applied.
	OpCreate
	// OpAbsent writes nothing: it is a guard that Key has no live record.
	// If any OpAbsent of a batch finds a live record under its key, Apply
	// returns ErrExists and writes nothing at all (a revoked grant's
	// tombstone stops every later write of its tokens).
	OpAbsent
	// OpTake deletes the record Key, and is a guard that this batch is the
	// one that deletes a live record: if Key has none (absent, expired, or
	// taken by another batch), Apply returns ErrExists and writes nothing
	// else. Of concurrent batches taking one key exactly one is applied, so
	// a single-use record (an authorization code) needs no "used" marker
	// beside it. A batch refused by one of its other guards may still have
	// taken the record on Redis Cluster when its keys span slots
	// (store/redis): used up then, never won twice.
	OpTake
)

// Op is one write of a batch.
type Op struct {
	Kind    OpKind
	Key     string
	Value   []byte
	TTL     time.Duration
	Members []string
}

// Batches write and read several records of one application in one step:
// the token endpoint stores a token and indexes it, and reads a token with
// its "used" marker, on every request, and a round trip each was most of
// its storage cost on Redis.
type Batches interface {
	// Apply runs the writes in order, all or none: a reader sees either
	// none or all of them (one script on Redis; on Redis Cluster, when the
	// keys span slots, guards first and then the writes, which a reader
	// may see in part until Apply returns: store/redis). Each op means what the
	// single-record method of the same name means; OpCreate, OpAbsent and
	// OpTake guard the whole batch, and all guards are checked before the
	// first write.
	Apply(ctx context.Context, app string, ops ...Op) error
	// GetMany returns the values of keys, in order; an absent or expired
	// record is nil (not an error). It is one snapshot, except on Redis
	// Cluster when the keys span slots: each slot's keys are read apart,
	// so a batch applied meanwhile may show in some values and not in
	// others (with Apply's order: its guards before its writes).
	GetMany(ctx context.Context, app string, keys ...string) ([][]byte, error)
	// GetManyAndUser is GetMany and GetUser in one round trip: the
	// values of keys, as GetMany gives them, and the user userID, nil
	// when there is none (not an error). A refresh reads its token, the
	// token's "used" marker and the user whose grant it is (a disabled
	// user's grant dies), and a round trip each was a third of its
	// storage cost.
	GetManyAndUser(ctx context.Context, app, userID string, keys ...string) (*User, [][]byte, error)
}

// Compact returns a batch that Apply applies exactly as it applies ops,
// in fewer ops, reusing ops' backing array (the caller's to give). A
// token request gathers its batch from several writers, each guarding its
// own writes, and the token endpoint's refresh sent the grant's
// tombstone guard twice and added to the grant's index twice; on Redis
// each op is commands run in the batch's script. Two rewrites, both
// exact:
//
//   - an OpAbsent repeating an earlier OpAbsent of its key is dropped: it
//     writes nothing, and every guard is checked before the first write,
//     so the second check sees what the first saw;
//   - an OpSetAdd is merged into an earlier OpSetAdd of its key when no
//     op between them has that key: the members of both, for the longer
//     TTL (none if either has none), which is the life the two additions
//     give the set one after the other ("at least TTL", never
//     shortened). Ops on other keys do not see the set, so moving the
//     later addition up past them changes nothing they read or write.
//
// Anything else is kept as it is, in its order (a guard that writes, an
// OpCreate or OpTake, is never dropped: two of one key refuse the batch).
func Compact(ops []Op) []Op {
	out := ops[:0]
next:
	for _, op := range ops {
		switch op.Kind {
		case OpAbsent:
			for _, o := range out {
				if o.Kind == OpAbsent && o.Key == op.Key {
					continue next
				}
			}
		case OpSetAdd:
			// The latest op of this key so far, if it is an addition.
			for i := len(out) - 1; i >= 0; i-- {
				o := &out[i]
				if o.Key != op.Key {
					continue
				}
				if o.Kind != OpSetAdd {
					break
				}
				// Clip: the earlier op's Members are not appended to in place.
				o.Members = append(slices.Clip(o.Members), op.Members...)
				if o.TTL > 0 && (op.TTL <= 0 || op.TTL > o.TTL) {
					o.TTL = op.TTL
				}
				continue next
			}
		}
		out = append(out, op)
	}
	return out
}
