package federation

import (
	"crypto/rand"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/aero2/aero2/store"
)

// newUserID returns a random, opaque user ID (128 bits, base32). It becomes
// the `sub` of the application's tokens, so it must reveal nothing.
func newUserID() string { return strings.ToLower(rand.Text()) }

// upsertUser finds the user linked to (idp, subject) and refreshes their
// profile from the identity, or creates a new user. Users are found by the
// provider's subject, never by email.
func (h *Handler) upsertUser(r *http.Request, idp string, id Identity) (*store.User, error) {
	ctx := r.Context()
	now := h.now().UTC()
	for attempt := 0; attempt < 3; attempt++ {
		u, link, err := h.opts.Store.UserByIdentity(ctx, h.opts.App, idp, id.Subject)
		switch {
		case err == nil:
			applyProfile(u, id)
			u.LastLogin = now
			if err := h.opts.Store.UpdateUser(ctx, u); err != nil {
				return nil, err
			}
			link.Username, link.Email, link.EmailVerified, link.LastLogin = id.PreferredUsername, id.Email, id.EmailVerified, now
			if err := h.opts.Store.UpdateIdentity(ctx, link); err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
			return u, nil
		case !errors.Is(err, store.ErrNotFound):
			return nil, err
		}
		u = &store.User{ID: newUserID(), App: h.opts.App, CreatedAt: now, LastLogin: now}
		applyProfile(u, id)
		link = &store.Identity{
			App: h.opts.App, IDP: idp, Subject: id.Subject, UserID: u.ID,
			Username: id.PreferredUsername, Email: id.Email, EmailVerified: id.EmailVerified,
			LinkedAt: now, LastLogin: now,
		}
		err = h.opts.Store.CreateUser(ctx, u, link)
		if errors.Is(err, store.ErrExists) {
			continue // a concurrent first sign-in of the same account won
		}
		if err != nil {
			return nil, err
		}
		h.log.Info("user created", "idp", idp, "user", u.ID)
		return u, nil
	}
	return nil, errors.New("could not create or find the user after concurrent sign-ins")
}

// applyProfile copies what the provider says now onto the user.
func applyProfile(u *store.User, id Identity) {
	u.Name = id.Name
	u.PreferredUsername = id.PreferredUsername
	u.Email = id.Email
	u.EmailVerified = id.EmailVerified && id.Email != ""
	u.Groups = slices.Clone(id.Groups)
	u.Picture = id.Picture
}
