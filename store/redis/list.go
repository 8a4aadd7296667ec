package redis

import (
	"context"
	"time"

	"github.com/aero2/aero2/store"
)

var _ store.ConsentLister = (*Store)(nil)

// ListConsents returns every live consent of app.
func (s *Store) ListConsents(ctx context.Context, app string) ([]store.Consent, error) {
	keys, err := s.scan(ctx, s.keyPattern(app, "x", store.ConsentKey("", "")[:len("authz:consent:")]))
	if err != nil {
		return nil, err
	}
	var out []store.Consent
	for _, k := range keys {
		ck, ok := s.callerKey(app, "x", k)
		if !ok {
			continue
		}
		user, client, ok := store.ParseConsentKey(ck)
		if !ok {
			continue
		}
		scopes, err := s.c.SMembers(ctx, k).Result()
		if err != nil {
			return nil, wrap(err)
		}
		ttl, err := s.c.PTTL(ctx, k).Result()
		if err != nil {
			return nil, wrap(err)
		}
		if len(scopes) == 0 || ttl == -2*time.Nanosecond || ttl == -2*time.Millisecond {
			continue // gone since the scan
		}
		if ttl < 0 {
			ttl = 0 // no expiry
		}
		out = append(out, store.Consent{UserID: user, ClientID: client, Scopes: scopes, TTL: ttl})
	}
	return out, nil
}
