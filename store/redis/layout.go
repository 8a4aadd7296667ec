package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/aero2/aero2/config"
)

// The spread layout: "<prefix>:<app>:<kind>:{<key>}". The Cluster hash
// tag is the record's key (for a user's records the user ID, for a
// session its ID, for an identity "<idp>:<subject>"), so a Cluster
// spreads one application over all its slots. The application is part of
// every name, outside the tag: two applications' records never share a
// key, whichever slot they hash to. (An application name is [a-z0-9-] and
// the prefix has no braces, config/validate.go: the first '{' of a key is
// always Aero2's.)
//
// The application layout (key_layout: application) is the one of earlier
// versions, "<prefix>:{<app>}:<kind>:<key>": one slot per application.

// keyHead is everything of a key before the caller's key.
func (s *Store) keyHead(app, kind string) string {
	if s.legacy {
		return s.prefix + ":{" + app + "}:" + kind + ":"
	}
	return s.prefix + ":" + app + ":" + kind + ":{"
}

// key is keyHead and key in one concatenation: one allocation, not two
// (every op of a batch names one).
func (s *Store) key(app, kind, key string) string {
	if s.legacy {
		return s.prefix + ":{" + app + "}:" + kind + ":" + key
	}
	return s.prefix + ":" + app + ":" + kind + ":{" + key + "}"
}

// keyPattern is a SCAN MATCH pattern for the keys of kind whose caller's
// key begins with prefix.
func (s *Store) keyPattern(app, kind, prefix string) string {
	return globEscape(s.keyHead(app, kind)+prefix) + "*"
}

// callerKey turns a full key of kind back into the caller's key.
func (s *Store) callerKey(app, kind, full string) (string, bool) {
	k, ok := strings.CutPrefix(full, s.keyHead(app, kind))
	if !ok {
		return "", false
	}
	if !s.legacy {
		k, ok = strings.CutSuffix(k, "}")
	}
	return k, ok
}

// layoutKey records, per key prefix, which layout its keys are in, so
// that servers of the two layouts never share a prefix and a server never
// takes a store of the other layout for an empty one.
func (s *Store) layoutKey() string { return s.prefix + ":layout" }

// The layout marks.
const (
	markSpread      = "spread"
	markApplication = "application"
)

// checkLayout is run by Open, with the configured layout (auto, spread or
// application). A prefix's mark decides: auto takes the marked layout; an
// explicit layout other than the mark is refused. A prefix without a mark
// is looked at once: keys of the application layout ("<prefix>:{…") mean
// a store written by an earlier version — auto keeps that layout, spread
// is refused (it would not see those users) — and the prefix is marked.
func (s *Store) checkLayout(ctx context.Context, layout string) error {
	got, err := s.c.Get(ctx, s.layoutKey()).Result()
	switch {
	case errors.Is(err, goredis.Nil):
	case err != nil:
		return fmt.Errorf("redis at %s: %w", s.addrs, err)
	case layout == config.RedisLayoutAuto || layout == got:
		s.legacy = got == markApplication
		return nil
	default:
		return fmt.Errorf("redis at %s: the keys under prefix %q are in the %q layout and store.redis.key_layout is %q: copy them into another prefix (aero2 store copy, docs/config.md) or set key_layout: %s", s.addrs, s.prefix, got, layout, got)
	}
	want := layout
	if layout != config.RedisLayoutApplication {
		old, err := s.scanAny(ctx, globEscape(s.prefix+":{")+"*")
		if err != nil {
			return fmt.Errorf("redis at %s: looking for keys of the application layout: %w", s.addrs, err)
		}
		switch {
		case old != "" && layout == config.RedisLayoutSpread:
			return fmt.Errorf("redis at %s: keys under prefix %q are in the layout of earlier versions (one hash slot per application, such as %q): set store.redis.key_layout: application (or auto) to keep using them, or copy them into another prefix with aero2 store copy (docs/config.md)", s.addrs, s.prefix, old)
		case old != "":
			want = markApplication
			slog.Default().Warn("redis: this store is in the layout of earlier versions (one hash slot per application), kept; to spread an application over a Cluster's shards, copy it into another prefix (docs/config.md)", "prefix", s.prefix)
		default:
			want = markSpread
		}
	}
	// SET NX: of replicas starting together the first decides, and the
	// others follow its mark.
	ok, err := s.c.SetNX(ctx, s.layoutKey(), want, 0).Result()
	if err != nil {
		return fmt.Errorf("redis at %s: %w", s.addrs, err)
	}
	if !ok {
		return s.checkLayout(ctx, layout)
	}
	s.legacy = want == markApplication
	return nil
}

// scanAny returns one key matching pattern, on any master, or "".
func (s *Store) scanAny(ctx context.Context, pattern string) (string, error) {
	one := func(ctx context.Context, c goredis.Cmdable) (string, error) {
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		if iter.Next(ctx) {
			return iter.Val(), nil
		}
		return "", iter.Err()
	}
	cc, ok := s.c.(*goredis.ClusterClient)
	if !ok {
		return one(ctx, s.c)
	}
	found := make(chan string, 1)
	err := cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
		k, err := one(ctx, c)
		if k != "" {
			select {
			case found <- k:
			default:
			}
		}
		return err
	})
	select {
	case k := <-found:
		return k, nil
	default:
		return "", err
	}
}

// Slots. Redis Cluster puts a key in slot CRC16(tag) mod 16384, the tag
// being what is between the first '{' and the next '}' if that is not
// empty, else the whole key (the Cluster specification, "Hash tags").

// Slot returns the Cluster hash slot of a full key.
func Slot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return int(crc16(key) & 16383)
}

// crc16 is CRC-16/XMODEM (polynomial 0x1021, initial 0), the checksum
// the Cluster specification names.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// bySlot groups the indexes of keys by slot, in the order of each slot's
// first key. Off Cluster every key is in one group: a single node runs
// any multi-key script.
func (s *Store) bySlot(keys []string) [][]int {
	if !s.cluster || len(keys) < 2 {
		all := make([]int, len(keys))
		for i := range all {
			all[i] = i
		}
		return [][]int{all}
	}
	at := map[int]int{}
	var groups [][]int
	for i, k := range keys {
		slot := Slot(k)
		g, ok := at[slot]
		if !ok {
			g = len(groups)
			at[slot] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], i)
	}
	return groups
}

// sameSlot reports whether a multi-key command on keys is valid here.
func (s *Store) sameSlot(keys ...string) bool { return len(s.bySlot(keys)) == 1 }

// pick returns xs at the indexes idx.
func pick[T any](xs []T, idx []int) []T {
	out := make([]T, len(idx))
	for i, j := range idx {
		out[i] = xs[j]
	}
	return out
}
