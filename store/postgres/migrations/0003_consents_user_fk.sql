-- Version 3: a consent cannot outlive its user, as an identity cannot
-- (issue 11). Version 1 gave consents no foreign key to users, so a user
-- deleted by hand in psql, or a delete racing a consent page, could leave
-- rows that grant a client scopes for a user ID that no longer exists —
-- and that a later user given the same ID (IDs are random, but restored
-- backups and store copies reuse them) would inherit.
--
-- First the orphans go (their consent_scopes with them, by the existing
-- cascade), or the constraint could not be added; then the constraint:
-- deleting a user deletes their consents, and a consent for an absent
-- user is refused. The primary key (app, user_id, client_id) is the index
-- the cascade uses.
--
-- sessions also name a user but get no foreign key: they are short-lived
-- state that the memory and Redis stores (and the combined mode, which
-- keeps them in Redis) hold without one, the shared conformance suite
-- creates them for users that were never stored, and deleting a user
-- ends their sessions through the session manager first (which also
-- revokes what was issued in them, which a cascade could not do).
DELETE FROM consents c
    WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.app = c.app AND u.id = c.user_id);
ALTER TABLE consents ADD CONSTRAINT consents_app_user_id_fkey
    FOREIGN KEY (app, user_id) REFERENCES users (app, id) ON DELETE CASCADE;
