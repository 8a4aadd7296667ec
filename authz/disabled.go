package authz

import (
	"context"
	"errors"

	"github.com/aero2/aero2/authz/oauthstore"
	"github.com/aero2/aero2/store"
)

// A user whom an administrator disabled or deleted (`aero2 users disable`,
// `aero2 users delete`) loses every session at once, and with them the
// tokens issued in them (session.Manager's hooks). A grant can outlive its
// session, though: a session that timed out leaves its refresh token
// working. So every use of a user's grant asks the store once more —
// redeeming a code or device code, refreshing, userinfo, introspection —
// and a disabled user's grant is refused there. Access tokens are JWTs; a
// resource server that checks them only by signature accepts one until it
// expires (tokens.access_token), as for any revocation.

// errUserGone: the grant's user was disabled or deleted.
var errUserGone = errors.New("authz: the user was disabled or deleted")

// grantUser checks that the user behind a grant may still use it. A
// grant without a browser session (client credentials) has no user.
func (p *Provider) grantUser(ctx context.Context, sess *oauthstore.Session) error {
	if sess == nil || sess.SID == "" {
		return nil
	}
	// A refresh token that names its user was read with the user: the
	// token request asks the store nothing more.
	u, known := oauthstore.KnownUser(ctx, sess.User())
	var err error
	if !known {
		u, err = p.st.GetUser(ctx, sess.User())
	} else if u == nil {
		err = store.ErrNotFound
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return errUserGone
	case err != nil:
		return err
	case u.Disabled:
		return errUserGone
	}
	return nil
}
