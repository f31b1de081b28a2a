-- Drift findings: what a reconcile saw that the records and the target disagree on. `fkey`
-- (connector|class|account|app) keeps a finding across runs; `runs` counts consecutive runs
-- that saw it; `version` guards optimistic updates.
CREATE TABLE drift_findings (
    id           BIGSERIAL PRIMARY KEY,
    fkey         TEXT COLLATE "C" NOT NULL UNIQUE,
    connector    TEXT    NOT NULL,
    class        TEXT    NOT NULL,
    account      TEXT    NOT NULL,
    person       TEXT    NULL,
    app          TEXT    NULL,
    detail       TEXT    NOT NULL,
    first_seen   BIGINT  NOT NULL,
    last_seen    BIGINT  NOT NULL,
    runs         BIGINT  NOT NULL,
    state        TEXT    NOT NULL,
    until        BIGINT  NULL,
    owner        TEXT    NULL,
    decided_by   TEXT    NULL,
    decided_at   BIGINT  NULL,
    reason       TEXT    NULL,
    version      BIGINT  NOT NULL
);
CREATE INDEX drift_findings_by_connector ON drift_findings (connector, state);

-- The last reconcile of each connector: when it last succeeded, and the last failure.
CREATE TABLE reconcile_runs (
    connector   TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    last_run    BIGINT  NOT NULL,
    last_ok     BIGINT  NULL,
    last_error  TEXT    NULL
);
