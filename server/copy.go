package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/store"
)

// CopyStore copies every application's data of record — users with their
// identities, consents and signing keys — from the store that from names
// to the one to names (`aero2 store copy`), such as from Redis to
// PostgreSQL. It is idempotent: what the destination has already (the
// same user, identity or consent) is left as it is and counted, so a copy
// that was interrupted can be run again. Short-lived state (sessions,
// tokens, login state) is not copied: users sign in again.
func CopyStore(ctx context.Context, from, to *config.Config, out io.Writer) error {
	for _, c := range []*config.Config{from, to} {
		if c.Store.Type == "memory" {
			return fmt.Errorf("%s: store.type is memory, which lives inside one server process: nothing can be copied from or into it", c.File)
		}
	}
	if from.Secrets.StorageKey != to.Secrets.StorageKey {
		// The signing keys are sealed with a key derived from it.
		return errors.New("the two configurations must have the same secrets.storage_key: the signing keys are sealed with it")
	}
	src, err := OpenStore(ctx, from)
	if err != nil {
		return fmt.Errorf("%s: %w", from.File, err)
	}
	defer src.Close()
	lister, ok := src.(lister)
	if !ok {
		return fmt.Errorf("%s: store type %s cannot list what it holds", from.File, from.Store.Type)
	}
	dst, err := OpenStore(ctx, to)
	if err != nil {
		return fmt.Errorf("%s: %w", to.File, err)
	}
	defer dst.Close()
	for _, a := range from.Apps() {
		if err := copyApp(ctx, a.Name, lister, src, dst, out); err != nil {
			return fmt.Errorf("application %s: %w", a.Name, err)
		}
	}
	return nil
}

// lister is what CopyStore reads a source with.
type lister interface {
	store.Admin
	store.ConsentLister
}

type copyCount struct{ copied, there, conflict int }

func (c copyCount) String() string {
	s := fmt.Sprintf("%d copied, %d already there", c.copied, c.there)
	if c.conflict > 0 {
		s += fmt.Sprintf(", %d in conflict (kept the destination's)", c.conflict)
	}
	return s
}

func copyApp(ctx context.Context, app string, lister lister, src, dst store.Store, out io.Writer) error {
	var users, idents, consents copyCount
	list, err := lister.ListUsers(ctx, app)
	if err != nil {
		return err
	}
	skipped, orphans := 0, 0
	for _, u := range list {
		ids, err := src.Identities(ctx, app, u.ID)
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			skipped++ // no account to sign in with: nothing to keep
			continue
		}
		switch err := dst.CreateUser(ctx, u, ids[0]); {
		case err == nil:
			users.copied++
			idents.copied++
		case errors.Is(err, store.ErrExists):
			if _, err := dst.GetUser(ctx, app, u.ID); err == nil {
				users.there++
			} else {
				users.conflict++ // the identity belongs to another user there
				continue
			}
			if err := linkOne(ctx, dst, ids[0], &idents); err != nil {
				return err
			}
		default:
			return err
		}
		for _, id := range ids[1:] {
			if err := linkOne(ctx, dst, id, &idents); err != nil {
				return err
			}
		}
	}
	cs, err := lister.ListConsents(ctx, app)
	if err != nil {
		return err
	}
	for _, c := range cs {
		key := store.ConsentKey(c.UserID, c.ClientID)
		have, err := dst.SetMembers(ctx, app, key)
		if err != nil {
			return err
		}
		if len(have) >= len(c.Scopes) && containsAll(have, c.Scopes) {
			consents.there++
			continue
		}
		switch err := dst.SetAdd(ctx, app, key, c.TTL, c.Scopes...); {
		case errors.Is(err, store.ErrNotFound):
			// The destination refuses a consent of a user it does not
			// have (PostgreSQL's foreign key): one skipped above, or one
			// the source kept after deleting its user.
			orphans++
			continue
		case err != nil:
			return err
		}
		consents.copied++
	}
	keys := "none in the source"
	sealed, err := src.Get(ctx, app, store.SigningKeysKey)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return err
	default:
		switch err := dst.Create(ctx, app, store.SigningKeysKey, sealed, 0); {
		case err == nil:
			keys = "copied"
		case errors.Is(err, store.ErrExists):
			if have, err := dst.Get(ctx, app, store.SigningKeysKey); err == nil && bytes.Equal(have, sealed) {
				keys = "already there"
			} else {
				keys = "the destination has other keys: kept them"
			}
		default:
			return err
		}
	}
	fmt.Fprintf(out, "%s: users %s; identities %s; consents %s; signing keys %s", app, users, idents, consents, keys)
	if skipped > 0 {
		fmt.Fprintf(out, "; %d users without an identity skipped", skipped)
	}
	if orphans > 0 {
		fmt.Fprintf(out, "; %d consents of users not in the destination skipped", orphans)
	}
	fmt.Fprintln(out)
	return nil
}

func linkOne(ctx context.Context, dst store.Store, id *store.Identity, n *copyCount) error {
	switch err := dst.LinkIdentity(ctx, id); {
	case err == nil:
		n.copied++
	case errors.Is(err, store.ErrExists):
		if u, have, err := dst.UserByIdentity(ctx, id.App, id.IDP, id.Subject); err == nil && u.ID == id.UserID && have.UserID == id.UserID {
			n.there++
		} else {
			n.conflict++
		}
	default:
		return err
	}
	return nil
}

func containsAll(have, want []string) bool {
	set := map[string]bool{}
	for _, h := range have {
		set[h] = true
	}
	for _, w := range want {
		if !set[w] {
			return false
		}
	}
	return true
}
