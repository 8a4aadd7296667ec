package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/aero2/aero2/authz"
	"github.com/aero2/aero2/config"
)

// RotateKeys rotates the signing keys of the named application (every
// application when app is ""), in this server's store.
func (s *Server) RotateKeys(ctx context.Context, app string) error {
	found := false
	for _, a := range s.apps {
		if app == "" || a.name == app {
			found = true
			if _, err := a.keys.Rotate(ctx); err != nil {
				return fmt.Errorf("application %s: %w", a.name, err)
			}
		}
	}
	if !found {
		return fmt.Errorf("%w %q", ErrNoSuchApplication, app)
	}
	return nil
}

// RotateKeys is `aero2 keys rotate`: it rotates the signing keys of the
// named application (every one when app is "") in the configured store and
// reports the new key IDs to out. Running replicas pick the change up
// within a minute; the key that becomes current was already published as
// "next", and the retired one stays published until its tokens expire.
// rotated, when set, is told each application's outcome as it happens:
// the key ID that became current, or the error (the audit log's
// admin.action events).
func RotateKeys(ctx context.Context, cfg *config.Config, app string, out io.Writer, rotated func(app, kid string, err error)) error {
	if rotated == nil {
		rotated = func(string, string, error) {}
	}
	if cfg.Store.Type == "memory" {
		return fmt.Errorf("keys rotate needs the store the servers share (store.type: redis, postgres or combined): the memory store lives inside one server process, whose keys are new at every start")
	}
	st, err := OpenStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	found := false
	for _, a := range cfg.Apps() {
		if app != "" && a.Name != app {
			continue
		}
		found = true
		km, err := authz.NewKeys(&a, st, appKey(cfg, "aero2 signing keys", a.Name), slog.New(slog.DiscardHandler), nil)
		if err != nil {
			return err
		}
		set, err := km.Rotate(ctx)
		if err != nil {
			rotated(a.Name, "", err)
			return fmt.Errorf("application %s: %w", a.Name, err)
		}
		rotated(a.Name, set.Current.ID, nil)
		fmt.Fprintf(out, "%s: rotated; current kid %s, next kid %s, %d previous key(s) still published\n", a.Name, set.Current.ID, set.Next.ID, len(set.Previous))
	}
	if !found {
		return fmt.Errorf("%w %q", ErrNoSuchApplication, app)
	}
	return nil
}

// Provider returns the named application's OpenID Connect provider (nil
// for an unknown name): what the proxy's assertion signer and in-process
// calls need.
func (s *Server) Provider(app string) *authz.Provider {
	for _, a := range s.apps {
		if a.name == app {
			return a.provider
		}
	}
	return nil
}
