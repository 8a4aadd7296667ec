-- Aero2's schema, version 1. Every row belongs to one application (app):
-- the same key in two applications names two rows, and every primary key
-- starts with app, so no query of one application reads another's.

-- Ephemeral records (login state, codes, pending authorize requests,
-- tokens): one table with an expiry column. A row whose expires_at has
-- passed is absent to every read; the sweeper deletes it later. Keys and
-- set members are bytea, not text: they are opaque bytes that may come
-- from a client (a state parameter with a NUL byte is a key that simply
-- does not exist, not an error).
CREATE TABLE records (
    app        text        NOT NULL,
    key        bytea       NOT NULL,
    value      bytea       NOT NULL,
    expires_at timestamptz,
    PRIMARY KEY (app, key)
);
CREATE INDEX records_expires_at ON records (expires_at) WHERE expires_at IS NOT NULL;

-- Small expiring sets of strings (indexes such as a grant's tokens). The
-- set's row carries its expiry and is the lock that writers of one set
-- take; its members go with it.
CREATE TABLE sets (
    app        text  NOT NULL,
    key        bytea NOT NULL,
    expires_at timestamptz,
    PRIMARY KEY (app, key)
);
CREATE INDEX sets_expires_at ON sets (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE set_members (
    app    text  NOT NULL,
    key    bytea NOT NULL,
    member bytea NOT NULL,
    PRIMARY KEY (app, key, member),
    FOREIGN KEY (app, key) REFERENCES sets (app, key) ON DELETE CASCADE
);

-- Browser sessions. expires_at is the row's life (idle timeout, moved by
-- every touch); ends_at is the session's absolute end.
CREATE TABLE sessions (
    app        text        NOT NULL,
    id         text        NOT NULL,
    user_id    text        NOT NULL,
    idp        text        NOT NULL DEFAULT '',
    auth_time  timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    last_seen  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL,
    ip         text        NOT NULL DEFAULT '',
    user_agent text        NOT NULL DEFAULT '',
    data       jsonb       NOT NULL DEFAULT '{}',
    expires_at timestamptz,
    PRIMARY KEY (app, id)
);
CREATE INDEX sessions_user ON sessions (app, user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at) WHERE expires_at IS NOT NULL;

-- Rate-limit buckets (GCRA): tat is when the bucket is full again, in
-- microseconds since the epoch on the database's clock.
CREATE TABLE rate_limits (
    app text   NOT NULL,
    key bytea  NOT NULL,
    tat bigint NOT NULL,
    PRIMARY KEY (app, key)
);
CREATE INDEX rate_limits_tat ON rate_limits (tat);

-- Local users: the system of record.
CREATE TABLE users (
    app                text        NOT NULL,
    id                 text        NOT NULL CHECK (id <> ''),
    name               text        NOT NULL DEFAULT '',
    preferred_username text        NOT NULL DEFAULT '',
    email              text        NOT NULL DEFAULT '',
    email_verified     boolean     NOT NULL DEFAULT false,
    groups             text[]      NOT NULL DEFAULT '{}',
    picture            text        NOT NULL DEFAULT '',
    created_at         timestamptz NOT NULL,
    last_login         timestamptz NOT NULL,
    PRIMARY KEY (app, id)
);
-- Account linking looks users up by verified email, compared without case.
-- Unverified emails are not indexed: they must never link accounts.
CREATE INDEX users_verified_email ON users (app, lower(email)) WHERE email_verified AND email <> '';

-- Identities link a user to an account at an identity provider. The
-- primary key is the rule that one account at one provider belongs to at
-- most one user; the foreign key, that no identity outlives its user.
CREATE TABLE identities (
    app            text        NOT NULL,
    idp            text        NOT NULL CHECK (idp <> ''),
    subject        text        NOT NULL CHECK (subject <> ''),
    user_id        text        NOT NULL,
    username       text        NOT NULL DEFAULT '',
    email          text        NOT NULL DEFAULT '',
    email_verified boolean     NOT NULL DEFAULT false,
    groups         text[],
    linked_at      timestamptz NOT NULL,
    last_login     timestamptz NOT NULL,
    PRIMARY KEY (app, idp, subject),
    FOREIGN KEY (app, user_id) REFERENCES users (app, id) ON DELETE CASCADE
);
CREATE INDEX identities_user ON identities (app, user_id);

-- Consents: the scopes a user granted a client, for a year. (The provider
-- keeps them as a set; this store maps that set here.)
CREATE TABLE consents (
    app        text        NOT NULL,
    user_id    text        NOT NULL,
    client_id  text        NOT NULL,
    granted_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    PRIMARY KEY (app, user_id, client_id)
);
CREATE INDEX consents_expires_at ON consents (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE consent_scopes (
    app       text NOT NULL,
    user_id   text NOT NULL,
    client_id text NOT NULL,
    scope     text NOT NULL,
    PRIMARY KEY (app, user_id, client_id, scope),
    FOREIGN KEY (app, user_id, client_id) REFERENCES consents (app, user_id, client_id) ON DELETE CASCADE
);

-- Token signing keys: one row per application holding its key set, sealed
-- (AES-GCM) with secrets.storage_key before it reaches the store, so the
-- database never holds a private key in the clear.
CREATE TABLE signing_keys (
    app        text        PRIMARY KEY,
    sealed     bytea       NOT NULL,
    expires_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- aero2_guard is a batch's guard (OpCreate, OpAbsent): it fails the whole
-- batch (SQLSTATE A2XST) when key has a live record, and otherwise holds
-- the key's row lock until the batch commits, inserting a placeholder
-- (expires_at -infinity, never live) when there is no row, so that a
-- concurrent write of the key waits for the batch: a revoker's tombstone
-- is either seen by the batch or written after it, never in between.
CREATE FUNCTION aero2_guard(p_app text, p_key bytea) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO records AS r (app, key, value, expires_at)
    VALUES (p_app, p_key, '', '-infinity')
    ON CONFLICT (app, key) DO UPDATE SET app = r.app
    WHERE r.expires_at IS NOT NULL AND r.expires_at <= now();
    IF NOT FOUND THEN
        RAISE EXCEPTION 'aero2: live record' USING ERRCODE = 'A2XST';
    END IF;
END $$;

-- aero2_refuse fails a batch (SQLSTATE A2XST) from a query: the guard on
-- a typed record selects it for each live row it locks.
CREATE FUNCTION aero2_refuse() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'aero2: live record' USING ERRCODE = 'A2XST';
END $$;

-- aero2_rate_limit is GCRA, as store/memory and store/redis compute it,
-- over buckets the caller sorts by key: each bucket's row is created if
-- absent and locked in key order (so two calls never deadlock), all are
-- checked, and only if all have room are the spends written.
CREATE FUNCTION aero2_rate_limit(p_app text, p_keys bytea[], p_intervals bigint[], p_bursts bigint[], p_ns bigint[],
    OUT allowed boolean, OUT remaining bigint, OUT retry_us bigint)
LANGUAGE plpgsql AS $$
DECLARE
    now_us bigint := (extract(epoch FROM clock_timestamp()) * 1000000)::bigint;
    tats   bigint[] := '{}';
    t      bigint;
    lim    bigint;
    want   bigint;
    rem    bigint;
BEGIN
    allowed := true;
    retry_us := 0;
    FOR i IN 1 .. coalesce(array_length(p_keys, 1), 0) LOOP
        INSERT INTO rate_limits (app, key, tat) VALUES (p_app, p_keys[i], 0) ON CONFLICT DO NOTHING;
        SELECT r.tat INTO t FROM rate_limits r WHERE r.app = p_app AND r.key = p_keys[i] FOR UPDATE;
        lim := p_intervals[i] * p_bursts[i];
        IF t < now_us THEN t := now_us; END IF;
        want := t + p_intervals[i] * greatest(p_ns[i], 1);
        IF want - now_us > lim THEN
            allowed := false;
            retry_us := greatest(retry_us, want - now_us - lim);
        ELSIF p_ns[i] > 0 THEN
            t := want;
        END IF;
        tats[i] := t;
        rem := (lim - (t - now_us)) / p_intervals[i];
        IF remaining IS NULL OR rem < remaining THEN remaining := rem; END IF;
    END LOOP;
    IF allowed THEN
        FOR i IN 1 .. coalesce(array_length(p_keys, 1), 0) LOOP
            IF p_ns[i] > 0 THEN
                UPDATE rate_limits SET tat = tats[i] WHERE app = p_app AND key = p_keys[i];
            END IF;
        END LOOP;
    END IF;
END $$;
