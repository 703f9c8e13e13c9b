-- Who reads the archive (publishers/access/): the intranet's user names, not Skype handles.
-- A reader signs in with a password (its argon2 hash here), or is named by the single-sign-on
-- proxy (password_hash NULL: such a reader cannot sign in here, the row only gives groups and
-- admin), or reads feeds with a token.
CREATE TABLE readers (
    name            text PRIMARY KEY,
    password_hash   text,                      -- argon2id, PHC string; NULL: proxy-only
    admin           boolean NOT NULL DEFAULT false,
    groups          text[] NOT NULL DEFAULT '{}',
    -- Bumped by a password change; a session cookie names the epoch it was issued in, so a
    -- change ends every session opened before it. Removing the row ends them too.
    epoch           integer NOT NULL DEFAULT 0,
    created_utc     timestamptz NOT NULL DEFAULT now(),
    CHECK (name <> '')
);

-- Feed tokens: the secret is shown once, only its sha256 is kept.
CREATE TABLE reader_tokens (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reader          text NOT NULL REFERENCES readers (name) ON DELETE CASCADE,
    token_sha256    bytea NOT NULL UNIQUE,
    label           text NOT NULL DEFAULT '',
    created_utc     timestamptz NOT NULL DEFAULT now(),
    revoked_utc     timestamptz
);
CREATE INDEX reader_tokens_reader ON reader_tokens (reader);

-- Skype handle -> intranet user name: the `members` permission rule lets a chat's
-- participants (known by handle) read it. Administrators edit it (`users handles`).
CREATE TABLE reader_handles (
    handle          text PRIMARY KEY,
    reader          text NOT NULL,
    CHECK (handle <> '' AND reader <> '')
);
CREATE INDEX reader_handles_reader ON reader_handles (reader);
