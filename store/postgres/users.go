package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/aero2/aero2/store"
)

// Users and identities are rows whose constraints hold the rules: the
// primary key (app, idp, subject) admits one user per account at a
// provider, the foreign key no identity without its user, and the partial
// index users_verified_email serves account linking. Text from identity
// providers goes through clean: PostgreSQL refuses NUL and invalid UTF-8,
// which a hostile provider account could put in a display name.

const (
	userColumns     = `id, app, name, preferred_username, email, email_verified, groups, picture, created_at, last_login, disabled`
	identityColumns = `app, idp, subject, user_id, username, email, email_verified, groups, linked_at, last_login`
)

func userArgs(u *store.User) pgx.NamedArgs {
	return pgx.NamedArgs{"id": clean(u.ID), "app": u.App, "name": clean(u.Name), "username": clean(u.PreferredUsername),
		"email": clean(u.Email), "verified": u.EmailVerified, "groups": cleanAll(u.Groups), "picture": clean(u.Picture),
		"created_at": u.CreatedAt, "last_login": u.LastLogin, "disabled": u.Disabled}
}

func identityArgs(id *store.Identity) pgx.NamedArgs {
	var groups []string
	if id.Groups != nil {
		groups = cleanAll(id.Groups)
	}
	return pgx.NamedArgs{"app": id.App, "idp": clean(id.IDP), "subject": clean(id.Subject), "user": clean(id.UserID),
		"username": clean(id.Username), "email": clean(id.Email), "verified": id.EmailVerified, "groups": groups,
		"linked_at": id.LinkedAt, "last_login": id.LastLogin}
}

func cleanAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = clean(s)
	}
	return out
}

const (
	insertUser = `INSERT INTO users (` + userColumns + `)
		VALUES (@id, @app, @name, @username, @email, @verified, @groups, @picture, @created_at, @last_login, @disabled)`
	insertIdentity = `INSERT INTO identities (` + identityColumns + `)
		VALUES (@app, @idp, @subject, @user, @username, @email, @verified, @groups, @linked_at, @last_login)`
)

func scanUser(row pgx.Row) (*store.User, error) {
	var u store.User
	if err := row.Scan(&u.ID, &u.App, &u.Name, &u.PreferredUsername, &u.Email, &u.EmailVerified, &u.Groups, &u.Picture, &u.CreatedAt, &u.LastLogin, &u.Disabled); err != nil {
		return nil, err
	}
	u.CreatedAt, u.LastLogin = u.CreatedAt.UTC(), u.LastLogin.UTC()
	if len(u.Groups) == 0 {
		u.Groups = nil
	}
	return &u, nil
}

func identityDest(id *store.Identity) []any {
	return []any{&id.App, &id.IDP, &id.Subject, &id.UserID, &id.Username, &id.Email, &id.EmailVerified, &id.Groups, &id.LinkedAt, &id.LastLogin}
}

func fixIdentity(id *store.Identity) {
	id.LinkedAt, id.LastLogin = id.LinkedAt.UTC(), id.LastLogin.UTC()
}

// CreateUser writes the user and its first identity in one transaction: a
// taken identity or user ID violates a primary key, and nothing is kept.
func (s *Store) CreateUser(ctx context.Context, u *store.User, first *store.Identity) error {
	b := &pgx.Batch{}
	b.Queue(insertUser, userArgs(u))
	b.Queue(insertIdentity, identityArgs(first))
	err := s.batch(ctx, b)
	if c := pgCode(err); c == codeUnique {
		return store.ErrExists
	}
	return err
}

func (s *Store) GetUser(ctx context.Context, app, id string) (*store.User, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE app = @app AND id = @id`,
		pgx.NamedArgs{"app": app, "id": clean(id)}))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return u, nil
}

// UpdateUser writes the profile; the disabled flag is SetUserDisabled's
// alone, so a sign-in racing an administrator's disable cannot enable the
// user again by writing back what it read.
func (s *Store) UpdateUser(ctx context.Context, u *store.User) error {
	n, err := s.exec(ctx, `UPDATE users SET name = @name, preferred_username = @username, email = @email,
		email_verified = @verified, groups = @groups, picture = @picture, created_at = @created_at, last_login = @last_login
		WHERE app = @app AND id = @id`, userArgs(u))
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// SignInUser is UserByIdentity and Identities: two queries, and the
// session cap's read of the user's sessions is left to the caller.
func (s *Store) SignInUser(ctx context.Context, app, idp, subject string) (*store.SignIn, error) {
	return store.ReadSignIn(ctx, s, app, idp, subject)
}

func (s *Store) UserByIdentity(ctx context.Context, app, idp, subject string) (*store.User, *store.Identity, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer cancel()
	var u store.User
	var id store.Identity
	dest := append([]any{&u.ID, &u.App, &u.Name, &u.PreferredUsername, &u.Email, &u.EmailVerified, &u.Groups, &u.Picture, &u.CreatedAt, &u.LastLogin, &u.Disabled}, identityDest(&id)...)
	err = s.pool.QueryRow(ctx, `SELECT u.id, u.app, u.name, u.preferred_username, u.email, u.email_verified, u.groups, u.picture,
		u.created_at, u.last_login, u.disabled, i.app, i.idp, i.subject, i.user_id, i.username, i.email, i.email_verified, i.groups, i.linked_at, i.last_login
		FROM identities i JOIN users u ON u.app = i.app AND u.id = i.user_id
		WHERE i.app = @app AND i.idp = @idp AND i.subject = @subject`,
		pgx.NamedArgs{"app": app, "idp": clean(idp), "subject": clean(subject)}).Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, store.ErrNotFound
	}
	if err != nil {
		return nil, nil, s.fail(ctx, err)
	}
	u.CreatedAt, u.LastLogin = u.CreatedAt.UTC(), u.LastLogin.UTC()
	if len(u.Groups) == 0 {
		u.Groups = nil
	}
	fixIdentity(&id)
	return &u, &id, nil
}

func (s *Store) UsersByVerifiedEmail(ctx context.Context, app, email string) ([]*store.User, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	// The condition repeats the partial index's, so the planner uses it.
	rows, err := s.pool.Query(ctx, `SELECT `+userColumns+` FROM users
		WHERE app = @app AND email_verified AND email <> '' AND lower(email) = lower(@email)`,
		pgx.NamedArgs{"app": app, "email": clean(email)})
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*store.User, error) { return scanUser(r) })
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return out, nil
}

// LinkIdentity inserts the identity: the primary key refuses one linked
// already (checked first, as the row is inserted), the foreign key one
// whose user is absent.
func (s *Store) LinkIdentity(ctx context.Context, id *store.Identity) error {
	_, err := s.exec(ctx, insertIdentity, identityArgs(id))
	switch pgCode(err) {
	case codeUnique:
		return store.ErrExists
	case codeForeignKey:
		return store.ErrNotFound
	}
	return err
}

// UpdateIdentity updates the identity only where it is linked to
// id.UserID: an update never moves an identity to another user.
func (s *Store) UpdateIdentity(ctx context.Context, id *store.Identity) error {
	n, err := s.exec(ctx, `UPDATE identities SET username = @username, email = @email, email_verified = @verified,
		groups = @groups, linked_at = @linked_at, last_login = @last_login
		WHERE app = @app AND idp = @idp AND subject = @subject AND user_id = @user`, identityArgs(id))
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

func (s *Store) Identities(ctx context.Context, app, userID string) ([]*store.Identity, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT `+identityColumns+` FROM identities WHERE app = @app AND user_id = @user`,
		pgx.NamedArgs{"app": app, "user": clean(userID)})
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*store.Identity, error) {
		var id store.Identity
		if err := r.Scan(identityDest(&id)...); err != nil {
			return nil, err
		}
		fixIdentity(&id)
		return &id, nil
	})
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return out, nil
}
