-- Quartermaster schema, PostgreSQL dialect (the SQLite schema with BIGINT / BIGSERIAL;
-- text columns use the "C" collation so ORDER BY sorts bytewise, as SQLite does).
--
-- Same tables, columns and meanings as migrations/sqlite: BIGSERIAL for the AUTOINCREMENT
-- ids, BIGINT for every integer. Timestamps are BIGINT unix microseconds (UTC); booleans are
-- BIGINT 0/1, exactly as in SQLite, so the row mapping is shared.

-- The directory of people. The config seeds it; afterwards the database wins.
CREATE TABLE people (
    handle      TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    name        TEXT COLLATE "C" NOT NULL,
    email       TEXT COLLATE "C" NOT NULL UNIQUE,
    department  TEXT COLLATE "C" NOT NULL,
    role        TEXT COLLATE "C" NOT NULL,
    manager     TEXT COLLATE "C" NULL,
    discord_id  TEXT COLLATE "C" NULL UNIQUE,
    status      TEXT COLLATE "C" NOT NULL
);

-- Access requests. `version` guards optimistic updates.
CREATE TABLE requests (
    id             BIGSERIAL PRIMARY KEY,
    requester      TEXT COLLATE "C" NOT NULL,
    app            TEXT COLLATE "C" NOT NULL,
    reason         TEXT COLLATE "C" NULL,
    duration_secs  BIGINT NULL,
    kind           TEXT COLLATE "C" NOT NULL,          -- 'new' | 'extend'
    extends_grant  BIGINT NULL,              -- the grant an 'extend' request extends
    state          TEXT COLLATE "C" NOT NULL,          -- RequestState::name()
    current_step   BIGINT NULL,              -- step index for awaiting / no_approver
    grant_id       BIGINT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    version        BIGINT NOT NULL
);
CREATE INDEX requests_by_requester ON requests (requester, app);
CREATE INDEX requests_by_state ON requests (state);

-- Approval steps of a request; replaced as a whole on every request update.
CREATE TABLE steps (
    request_id  BIGINT NOT NULL REFERENCES requests (id) ON DELETE CASCADE,
    idx         BIGINT NOT NULL,
    rule        TEXT COLLATE "C" NOT NULL,             -- 'manager' | 'owner' | 'it-admin' | a handle
    approvers   TEXT COLLATE "C" NOT NULL,             -- JSON array of handles
    started_at  BIGINT NULL,
    decided     BIGINT NOT NULL,
    approved    BIGINT NULL,
    decided_by  TEXT COLLATE "C" NULL,
    decided_at  BIGINT NULL,
    reason      TEXT COLLATE "C" NULL,
    reminded    BIGINT NOT NULL,
    escalated   BIGINT NOT NULL,
    PRIMARY KEY (request_id, idx)
);

-- Access held (or being given / taken away).
CREATE TABLE grants (
    id          BIGSERIAL PRIMARY KEY,
    person      TEXT COLLATE "C" NOT NULL,
    app         TEXT COLLATE "C" NOT NULL,
    source      TEXT COLLATE "C" NOT NULL,             -- 'birthright' | 'request'
    request_id  BIGINT NULL REFERENCES requests (id),
    state       TEXT COLLATE "C" NOT NULL,             -- GrantState::as_str()
    granted_at  BIGINT NULL,
    expires_at  BIGINT NULL,
    warned      BIGINT NOT NULL
);
-- One person holds at most one live grant per app.
CREATE UNIQUE INDEX grants_one_live_per_app ON grants (person, app)
    WHERE state IN ('pending', 'active', 'revoking');
CREATE INDEX grants_by_expiry ON grants (state, expires_at);

-- The durable queue of connector actions.
CREATE TABLE actions (
    id           BIGSERIAL PRIMARY KEY,
    connector    TEXT COLLATE "C" NOT NULL,
    op           TEXT COLLATE "C" NOT NULL,            -- ActionOp::as_str()
    person       TEXT COLLATE "C" NOT NULL,
    app          TEXT COLLATE "C" NULL,
    entitlement  TEXT COLLATE "C" NULL,
    grant_id     BIGINT NULL REFERENCES grants (id),
    request_id   BIGINT NULL REFERENCES requests (id),
    state        TEXT COLLATE "C" NOT NULL,            -- ActionState::as_str()
    attempts     BIGINT NOT NULL,
    last_error   TEXT COLLATE "C" NULL,
    not_before   BIGINT NOT NULL,
    lease_until  BIGINT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX actions_due ON actions (state, not_before);
CREATE INDEX actions_by_grant ON actions (grant_id);

-- The append-only, hash-chained audit trail. `seq` is assigned by the writer (last + 1),
-- so a gap means a deleted row.
CREATE TABLE audit (
    seq               BIGINT NOT NULL PRIMARY KEY,
    at                BIGINT NOT NULL,
    actor             TEXT COLLATE "C" NOT NULL,
    actor_chat_id     TEXT COLLATE "C" NULL,
    action            TEXT COLLATE "C" NOT NULL,
    subject           TEXT COLLATE "C" NULL,
    app               TEXT COLLATE "C" NULL,
    request_id        BIGINT NULL,
    connector_action  BIGINT NULL,
    outcome           TEXT COLLATE "C" NOT NULL,
    detail            TEXT COLLATE "C" NOT NULL,
    prev_hash         TEXT COLLATE "C" NOT NULL,
    hash              TEXT COLLATE "C" NOT NULL
);
CREATE INDEX audit_by_time ON audit (at);

-- The HMAC seal over the chain's head (only written when an audit key is configured).
CREATE TABLE audit_seal (
    id    BIGINT NOT NULL PRIMARY KEY CHECK (id = 1),
    seq   BIGINT NOT NULL,
    hash  TEXT COLLATE "C" NOT NULL,
    mac   TEXT COLLATE "C" NOT NULL
);

-- The built-in `directory` connector's target: accounts and group memberships.
CREATE TABLE directory_accounts (
    connector  TEXT COLLATE "C" NOT NULL,
    handle     TEXT COLLATE "C" NOT NULL,
    id         TEXT COLLATE "C" NOT NULL,
    email      TEXT COLLATE "C" NOT NULL,
    name       TEXT COLLATE "C" NOT NULL,
    active     BIGINT NOT NULL,
    PRIMARY KEY (connector, handle)
);

CREATE TABLE directory_memberships (
    connector    TEXT COLLATE "C" NOT NULL,
    handle       TEXT COLLATE "C" NOT NULL,
    entitlement  TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (connector, handle, entitlement)
);

-- Interaction ids already handled (replay protection for the interactions endpoint).
CREATE TABLE interactions_seen (
    id  TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    at  BIGINT NOT NULL
);
CREATE INDEX interactions_seen_by_time ON interactions_seen (at);

-- Plans (offboarding, role change) waiting for Confirm or Cancel, and their outcome.
CREATE TABLE plans (
    id          BIGSERIAL PRIMARY KEY,
    kind        TEXT COLLATE "C" NOT NULL,             -- 'offboard' | 'role'
    subject     TEXT COLLATE "C" NOT NULL,
    created_by  TEXT COLLATE "C" NOT NULL,
    confirmers  TEXT COLLATE "C" NOT NULL,             -- JSON array of handles
    detail      TEXT COLLATE "C" NOT NULL,             -- kind-specific JSON
    state       TEXT COLLATE "C" NOT NULL,             -- 'open' | 'confirmed' | 'cancelled'
    decided_by  TEXT COLLATE "C" NULL,
    decided_at  BIGINT NULL,
    reported    BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    first_action BIGINT NULL             -- the first action it enqueued when carried out
);
CREATE INDEX plans_by_subject ON plans (subject);
CREATE INDEX actions_by_person ON actions (person);
