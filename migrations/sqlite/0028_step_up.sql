-- Step-up (TOTP) enrolments: the secret sealed with the [mfa] key (AEAD, bound to the
-- handle), the last accepted time step (a code counts once), wrong codes and the lockout.
CREATE TABLE mfa (
    person        TEXT    NOT NULL PRIMARY KEY,
    sealed        TEXT    NOT NULL,
    confirmed_at  INTEGER NULL,
    last_step     INTEGER NOT NULL DEFAULT 0,
    failures      INTEGER NOT NULL DEFAULT 0,
    locked_until  INTEGER NULL
);

-- One-time links to the enrolment page: only the token's SHA-256 is kept.
CREATE TABLE mfa_links (
    token_hash  TEXT    NOT NULL PRIMARY KEY,
    person      TEXT    NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER NULL
);
CREATE INDEX mfa_links_by_person ON mfa_links (person);

-- Break-glass grants and their ratification. `version` guards optimistic updates.
CREATE TABLE break_glass (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id   INTEGER NOT NULL UNIQUE,
    person       TEXT    NOT NULL,
    app          TEXT    NOT NULL,
    reason       TEXT    NOT NULL,
    granted_at   INTEGER NOT NULL,
    ratify_by    INTEGER NOT NULL,
    ratified_by  TEXT    NULL,
    ratified_at  INTEGER NULL,
    overdue_at   INTEGER NULL,
    revoked_by   TEXT    NULL,
    revoked_at   INTEGER NULL,
    cleared_by   TEXT    NULL,
    cleared_at   INTEGER NULL,
    version      INTEGER NOT NULL
);
CREATE INDEX break_glass_by_person ON break_glass (person, cleared_at);
CREATE INDEX break_glass_due ON break_glass (ratify_by) WHERE ratified_at IS NULL AND overdue_at IS NULL AND cleared_at IS NULL;
