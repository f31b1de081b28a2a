-- Step-up (TOTP) enrolments: the secret sealed with the [mfa] key (AEAD, bound to the
-- handle), the last accepted time step (a code counts once), wrong codes and the lockout.
CREATE TABLE mfa (
    person        TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    sealed        TEXT    NOT NULL,
    confirmed_at  BIGINT  NULL,
    last_step     BIGINT  NOT NULL DEFAULT 0,
    failures      BIGINT  NOT NULL DEFAULT 0,
    locked_until  BIGINT  NULL
);

-- One-time links to the enrolment page: only the token's SHA-256 is kept.
CREATE TABLE mfa_links (
    token_hash  TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    person      TEXT    NOT NULL,
    expires_at  BIGINT  NOT NULL,
    used_at     BIGINT  NULL
);
CREATE INDEX mfa_links_by_person ON mfa_links (person);

-- Break-glass grants and their ratification. `version` guards optimistic updates.
CREATE TABLE break_glass (
    id           BIGSERIAL PRIMARY KEY,
    request_id   BIGINT  NOT NULL UNIQUE,
    person       TEXT    NOT NULL,
    app          TEXT    NOT NULL,
    reason       TEXT    NOT NULL,
    granted_at   BIGINT  NOT NULL,
    ratify_by    BIGINT  NOT NULL,
    ratified_by  TEXT    NULL,
    ratified_at  BIGINT  NULL,
    overdue_at   BIGINT  NULL,
    revoked_by   TEXT    NULL,
    revoked_at   BIGINT  NULL,
    cleared_by   TEXT    NULL,
    cleared_at   BIGINT  NULL,
    version      BIGINT  NOT NULL
);
CREATE INDEX break_glass_by_person ON break_glass (person, cleared_at);
CREATE INDEX break_glass_due ON break_glass (ratify_by) WHERE ratified_at IS NULL AND overdue_at IS NULL AND cleared_at IS NULL;
