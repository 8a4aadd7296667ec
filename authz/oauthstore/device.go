package oauthstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aero2/aero2/store"
)

// ErrDeviceCodeUsed is what a second redemption of one device code fails
// with (wrapped in ErrConcurrentUse): like a reused authorization code, it
// revokes what the first redemption issued.
var ErrDeviceCodeUsed = errors.New("oauthstore: device code already used")

// DeviceUsedKey is the record, in the Store's Backend, whose presence
// says that the device code named h was redeemed. The token endpoint
// reads it with the device code's own records, in one round trip
// (GetMany), rather than asking for it alone after them.
func DeviceUsedKey(h string) string { return "oauth:device-used:" + h }

// RedeemDeviceCode marks the device code named h (the hash of the code)
// used, for ttl. Inside a Request the marker is a create-if-absent in the
// commit's batch: of two redemptions at once exactly one commits, the
// other gets ErrConcurrentUse.
func (s *Store) RedeemDeviceCode(ctx context.Context, h string, ttl time.Duration) error {
	return s.guard(ctx, DeviceUsedKey(h), ttl, fmt.Errorf("%w: %w", ErrConcurrentUse, ErrDeviceCodeUsed))
}

// IndexGrant files the grant under the browser session sid and under its
// user and client, as an authorization code's grant is, so that logout
// and removing the client's access revoke it. Inside a Request, with the
// commit.
func (s *Store) IndexGrant(ctx context.Context, sid, userID, clientID, grantID string) error {
	return s.apply(ctx,
		store.Op{Kind: store.OpSetAdd, Key: sidGrants(sid), TTL: s.opts.GrantTTL, Members: []string{sidGrantMember + grantID}},
		store.Op{Kind: store.OpSetAdd, Key: userClientGrants(userID, clientID), TTL: s.opts.GrantTTL, Members: []string{grantID}})
}
