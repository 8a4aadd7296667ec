package memory

import (
	"context"
	"maps"
	"slices"
	"strings"

	"github.com/aero2/aero2/store"
)

var _ store.ConsentLister = (*Store)(nil)

// ListConsents returns every live consent of app.
func (s *Store) ListConsents(_ context.Context, app string) ([]store.Consent, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	prefix := k(app, "")
	var out []store.Consent
	for key, st := range s.sets {
		rest, ok := strings.CutPrefix(key, prefix)
		if !ok || !s.live(st.exp) || len(st.members) == 0 {
			continue
		}
		user, client, ok := store.ParseConsentKey(rest)
		if !ok {
			continue
		}
		c := store.Consent{UserID: user, ClientID: client, Scopes: slices.Sorted(maps.Keys(st.members))}
		if !st.exp.IsZero() {
			c.TTL = st.exp.Sub(s.now())
		}
		out = append(out, c)
	}
	return out, nil
}
