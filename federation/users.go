package federation

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/aero2/aero2/audit"
	"github.com/aero2/aero2/email"
	"github.com/aero2/aero2/store"
)

// Bounds on what a provider may make us store for one sign-in: an IdP
// answer is untrusted input like any other.
const (
	maxProfileField = 512
	maxGroups       = 256
	maxGroupName    = 256
)

// newUserID returns a random, opaque user ID (128 bits, base32). It becomes
// the `sub` of the application's tokens, so it must reveal nothing.
func newUserID() string { return strings.ToLower(rand.Text()) }

// cleanIdentity bounds what a provider said and parses its email strictly.
// An address that is not one plain addr-spec ("a@evil.com@corp.com",
// "Eve <e@corp.com>") is dropped, verified or not: every later decision
// (linking, allowed_domains) may then trust Email to be one mailbox.
func (h *Handler) cleanIdentity(idp string, id Identity) Identity {
	id.PreferredUsername = truncate(id.PreferredUsername, maxProfileField)
	id.Name = truncate(id.Name, maxProfileField)
	// A picture is shown on pages (and passed on in tokens): only an https
	// URL, never javascript:, data: or a tracking pixel over plain http.
	if u, err := url.Parse(id.Picture); err != nil || u.Scheme != "https" || u.Host == "" || len(id.Picture) > 2048 {
		id.Picture = ""
	}
	if id.Email != "" {
		a, err := email.Parse(id.Email)
		if err != nil {
			h.log.Warn("identity provider sent an email that is not a plain address; ignoring it", "idp", idp, "len", len(id.Email))
			id.Email, id.EmailVerified = "", false
		} else {
			id.Email = a.String() // the domain lower-cased
		}
	} else {
		id.EmailVerified = false
	}
	groups := make([]string, 0, min(len(id.Groups), maxGroups))
	for _, g := range id.Groups {
		if g != "" && len(g) <= maxGroupName && !slices.Contains(groups, g) && len(groups) < maxGroups {
			groups = append(groups, g)
		}
	}
	id.Groups = groups
	return id
}

// ErrUserDisabled: the user signing in was disabled by an administrator
// (`aero2 users disable`).
var ErrUserDisabled = errors.New("federation: user disabled")

// upsertUser finds the user linked to (idp, subject) and refreshes their
// profile from the identity, or links the identity to an existing user
// (see linkTarget), or creates a new user. Users are found by the
// provider's subject, never by email alone. It also says how many
// sessions the user has at most, for the session cap: -1 when it did not
// count them.
func (h *Handler) upsertUser(r *http.Request, p Provider, id Identity) (*store.User, int, error) {
	ctx := r.Context()
	now := h.now().UTC()
	for attempt := 0; attempt < 3; attempt++ {
		// A returning user: one read of the user, its identities (for
		// the groups) and its sessions' count (for the session cap).
		found, err := h.opts.Store.SignInUser(ctx, p.ID, id.Subject)
		switch {
		case err == nil && found.User.Disabled:
			return nil, 0, ErrUserDisabled
		case err == nil:
			u, link := found.User, found.Identity
			link.Username, link.Email, link.EmailVerified, link.LastLogin = id.PreferredUsername, id.Email, id.EmailVerified, now
			link.Groups = slices.Clone(id.Groups)
			if err := h.opts.Store.UpdateIdentity(ctx, link); err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, 0, err
			}
			applyProfile(u, id)
			// The identities were read before this one's update: its
			// stored copy among them is skipped for link itself.
			u.Groups = h.groupsOf(link, found.Identities)
			u.LastLogin = now
			if err := h.opts.Store.UpdateUser(ctx, u); err != nil {
				return nil, 0, err
			}
			return u, found.Sessions, nil
		case !errors.Is(err, store.ErrNotFound):
			return nil, 0, err
		}
		link := &store.Identity{
			App: h.app, IDP: p.ID, Subject: id.Subject,
			Username: id.PreferredUsername, Email: id.Email, EmailVerified: id.EmailVerified,
			Groups: slices.Clone(id.Groups), LinkedAt: now, LastLogin: now,
		}

		target, err := h.linkTarget(ctx, p, id)
		if err != nil {
			return nil, 0, err
		}
		if target != nil {
			if target.Disabled {
				// A new identity must not be a way back in.
				return nil, 0, ErrUserDisabled
			}
			link.UserID = target.ID
			err := h.opts.Store.LinkIdentity(ctx, link)
			if errors.Is(err, store.ErrExists) || errors.Is(err, store.ErrNotFound) {
				continue // a concurrent sign-in linked it, or the user went
			}
			if err != nil {
				return nil, 0, err
			}
			applyProfile(target, id)
			if target.Groups, err = h.userGroups(ctx, link); err != nil {
				return nil, 0, err
			}
			target.LastLogin = now
			if err := h.opts.Store.UpdateUser(ctx, target); err != nil {
				return nil, 0, err
			}
			h.log.Info("identity linked to an existing user by verified email", "idp", p.ID, "user", target.ID)
			audit.Log(ctx, h.opts.Audit, audit.Event{Type: audit.AccountLinked, App: h.app, IDP: p.ID, User: target.ID, Reason: "verified_email"})
			return target, -1, nil // sessions elsewhere, uncounted
		}

		u := &store.User{ID: newUserID(), App: h.app, CreatedAt: now, LastLogin: now}
		applyProfile(u, id)
		link.UserID = u.ID
		u.Groups = h.groupsOf(link, nil)
		err = h.opts.Store.CreateUser(ctx, u, link)
		if errors.Is(err, store.ErrExists) {
			continue // a concurrent first sign-in of the same account won
		}
		if err != nil {
			return nil, 0, err
		}
		h.log.Info("user created", "idp", p.ID, "user", u.ID)
		return u, 0, nil // new: no sessions yet
	}
	return nil, 0, errors.New("could not create or find the user after concurrent sign-ins")
}

// linkTarget returns the existing user a new identity joins, or nil for a
// new user. Linking by email happens only when
//   - this provider has link_by_email,
//   - its email is verified (an unverified one never links: anyone can
//     type any address at a provider that does not check it), and
//   - exactly one user has an identity, from a provider that also has
//     link_by_email, whose verified email is the same mailbox.
//
// The last condition stops pre-account-takeover: an attacker who signs up
// first through a provider that is not trusted for linking, claiming the
// victim's address, must not receive the victim's later sign-ins.
// Ambiguity (two such users) links nothing rather than guessing.
func (h *Handler) linkTarget(ctx context.Context, p Provider, id Identity) (*store.User, error) {
	if !p.LinkByEmail || !id.EmailVerified || id.Email == "" {
		return nil, nil
	}
	candidates, err := h.opts.Store.UsersByVerifiedEmail(ctx, id.Email)
	if err != nil {
		return nil, err
	}
	var found *store.User
	for _, u := range candidates {
		idents, err := h.opts.Store.Identities(ctx, u.ID)
		if err != nil {
			return nil, err
		}
		vouched := slices.ContainsFunc(idents, func(x *store.Identity) bool {
			other, ok := h.providers[x.IDP]
			return ok && other.LinkByEmail && x.EmailVerified && email.Equal(x.Email, id.Email)
		})
		if !vouched {
			continue
		}
		if found != nil {
			h.log.Warn("several users share a verified email; not linking", "idp", p.ID)
			return nil, nil
		}
		found = u
	}
	return found, nil
}

// applyProfile copies what the provider says now onto the user. Groups
// are not a profile field: see userGroups.
func applyProfile(u *store.User, id Identity) {
	u.Name = id.Name
	u.PreferredUsername = id.PreferredUsername
	u.Email = id.Email
	u.EmailVerified = id.EmailVerified && id.Email != ""
	u.Picture = id.Picture
}

// userGroups are the user's groups once current, the identity signing in,
// has been stored: every linked identity keeps the groups its own
// provider last reported, and the user's are theirs together (see
// groupsOf). Signing in through one provider neither drops nor replaces
// the groups another provider vouched for.
func (h *Handler) userGroups(ctx context.Context, current *store.Identity) ([]string, error) {
	idents, err := h.opts.Store.Identities(ctx, current.UserID)
	if err != nil {
		return nil, err
	}
	return h.groupsOf(current, idents), nil
}

// groupsOf joins the groups of current and of the other identities in
// idents: current's first, then the others by provider, each as its
// provider names them ("<id>:<group>" with prefix_groups, so that a
// provider where users create their own groups cannot produce another
// provider's). Another identity counts only while its provider is
// configured and its last sign-in is at most GroupsMaxAge old: groups
// are not believed longer than a session started there could rely on
// them, so a membership the provider withdrew does not live on through
// sign-ins elsewhere. Records that predate per-identity groups have none.
func (h *Handler) groupsOf(current *store.Identity, idents []*store.Identity) []string {
	others := make([]*store.Identity, 0, len(idents))
	for _, x := range idents {
		if x.IDP == current.IDP && x.Subject == current.Subject {
			continue // the stored copy of current
		}
		if h.opts.Now().Sub(x.LastLogin) > h.opts.GroupsMaxAge {
			continue
		}
		others = append(others, x)
	}
	slices.SortFunc(others, func(a, b *store.Identity) int { return strings.Compare(a.IDP+"\x00"+a.Subject, b.IDP+"\x00"+b.Subject) })
	out := []string{}
	for _, x := range append([]*store.Identity{current}, others...) {
		p, ok := h.providers[x.IDP]
		if !ok {
			continue // no longer configured: nothing it said counts
		}
		for _, g := range x.Groups {
			if p.PrefixGroups {
				g = p.ID + ":" + g
			}
			if len(out) < maxGroups && !slices.Contains(out, g) {
				out = append(out, g)
			}
		}
	}
	return out
}
