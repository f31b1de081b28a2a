-- Quartermaster schema, SQLite dialect.
--
-- Kept portable on purpose: plain INTEGER / TEXT columns, no SQLite-only functions, so a
-- PostgreSQL dialect needs only its own migration folder (BIGSERIAL for the AUTOINCREMENT ids).
-- Timestamps are INTEGER unix microseconds (UTC): portable, exact and orderable.
-- Booleans are INTEGER 0/1.

-- The directory of people. The config seeds it; afterwards the database wins.
CREATE TABLE people (
    handle      TEXT    NOT NULL PRIMARY KEY,
    name        TEXT    NOT NULL,
    email       TEXT    NOT NULL UNIQUE,
    department  TEXT    NOT NULL,
    role        TEXT    NOT NULL,
    manager     TEXT    NULL,
    discord_id  TEXT    NULL UNIQUE,
    status      TEXT    NOT NULL
);

-- Access requests. `version` guards optimistic updates.
CREATE TABLE requests (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    requester      TEXT    NOT NULL,
    app            TEXT    NOT NULL,
    reason         TEXT    NULL,
    duration_secs  INTEGER NULL,
    kind           TEXT    NOT NULL,          -- 'new' | 'extend'
    extends_grant  INTEGER NULL,              -- the grant an 'extend' request extends
    state          TEXT    NOT NULL,          -- RequestState::name()
    current_step   INTEGER NULL,              -- step index for awaiting / no_approver
    grant_id       INTEGER NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    version        INTEGER NOT NULL
);
CREATE INDEX requests_by_requester ON requests (requester, app);
CREATE INDEX requests_by_state ON requests (state);

-- Approval steps of a request; replaced as a whole on every request update.
CREATE TABLE steps (
    request_id  INTEGER NOT NULL REFERENCES requests (id) ON DELETE CASCADE,
    idx         INTEGER NOT NULL,
    rule        TEXT    NOT NULL,             -- 'manager' | 'owner' | 'it-admin' | a handle
    approvers   TEXT    NOT NULL,             -- JSON array of handles
    started_at  INTEGER NULL,
    decided     INTEGER NOT NULL,
    approved    INTEGER NULL,
    decided_by  TEXT    NULL,
    decided_at  INTEGER NULL,
    reason      TEXT    NULL,
    reminded    INTEGER NOT NULL,
    escalated   INTEGER NOT NULL,
    PRIMARY KEY (request_id, idx)
);

-- Access held (or being given / taken away).
CREATE TABLE grants (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    person      TEXT    NOT NULL,
    app         TEXT    NOT NULL,
    source      TEXT    NOT NULL,             -- 'birthright' | 'request'
    request_id  INTEGER NULL REFERENCES requests (id),
    state       TEXT    NOT NULL,             -- GrantState::as_str()
    granted_at  INTEGER NULL,
    expires_at  INTEGER NULL,
    warned      INTEGER NOT NULL
);
-- One person holds at most one live grant per app.
CREATE UNIQUE INDEX grants_one_live_per_app ON grants (person, app)
    WHERE state IN ('pending', 'active', 'revoking');
CREATE INDEX grants_by_expiry ON grants (state, expires_at);

-- The durable queue of connector actions.
CREATE TABLE actions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    connector    TEXT    NOT NULL,
    op           TEXT    NOT NULL,            -- ActionOp::as_str()
    person       TEXT    NOT NULL,
    app          TEXT    NULL,
    entitlement  TEXT    NULL,
    grant_id     INTEGER NULL REFERENCES grants (id),
    request_id   INTEGER NULL REFERENCES requests (id),
    state        TEXT    NOT NULL,            -- ActionState::as_str()
    attempts     INTEGER NOT NULL,
    last_error   TEXT    NULL,
    not_before   INTEGER NOT NULL,
    lease_until  INTEGER NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX actions_due ON actions (state, not_before);
CREATE INDEX actions_by_grant ON actions (grant_id);

-- The append-only, hash-chained audit trail. `seq` is assigned by the writer (last + 1),
-- so a gap means a deleted row.
CREATE TABLE audit (
    seq               INTEGER NOT NULL PRIMARY KEY,
    at                INTEGER NOT NULL,
    actor             TEXT    NOT NULL,
    actor_chat_id     TEXT    NULL,
    action            TEXT    NOT NULL,
    subject           TEXT    NULL,
    app               TEXT    NULL,
    request_id        INTEGER NULL,
    connector_action  INTEGER NULL,
    outcome           TEXT    NOT NULL,
    detail            TEXT    NOT NULL,
    prev_hash         TEXT    NOT NULL,
    hash              TEXT    NOT NULL
);
CREATE INDEX audit_by_time ON audit (at);

-- The HMAC seal over the chain's head (only written when an audit key is configured).
CREATE TABLE audit_seal (
    id    INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    seq   INTEGER NOT NULL,
    hash  TEXT    NOT NULL,
    mac   TEXT    NOT NULL
);

-- The built-in `directory` connector's target: accounts and group memberships.
CREATE TABLE directory_accounts (
    connector  TEXT    NOT NULL,
    handle     TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    email      TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    active     INTEGER NOT NULL,
    PRIMARY KEY (connector, handle)
);

CREATE TABLE directory_memberships (
    connector    TEXT NOT NULL,
    handle       TEXT NOT NULL,
    entitlement  TEXT NOT NULL,
    PRIMARY KEY (connector, handle, entitlement)
);

-- Interaction ids already handled (replay protection for the interactions endpoint).
CREATE TABLE interactions_seen (
    id  TEXT    NOT NULL PRIMARY KEY,
    at  INTEGER NOT NULL
);
CREATE INDEX interactions_seen_by_time ON interactions_seen (at);

-- Plans (offboarding, role change) waiting for Confirm or Cancel, and their outcome.
CREATE TABLE plans (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT    NOT NULL,             -- 'offboard' | 'role'
    subject     TEXT    NOT NULL,
    created_by  TEXT    NOT NULL,
    confirmers  TEXT    NOT NULL,             -- JSON array of handles
    detail      TEXT    NOT NULL,             -- kind-specific JSON
    state       TEXT    NOT NULL,             -- 'open' | 'confirmed' | 'cancelled'
    decided_by  TEXT    NULL,
    decided_at  INTEGER NULL,
    reported    INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    first_action INTEGER NULL             -- the first action it enqueued when carried out
);
CREATE INDEX plans_by_subject ON plans (subject);
CREATE INDEX actions_by_person ON actions (person);
