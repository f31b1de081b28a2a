-- The audit chain's genesis, written once when the database is created (or, for a database
-- created before this migration, when it is upgraded). `first_hash` is the hash of row 1 once
-- the chain has one, so an audit table emptied later does not verify as a fresh start.
CREATE TABLE audit_genesis (
    id          INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    created_at  INTEGER NOT NULL,
    first_hash  TEXT
);
INSERT INTO audit_genesis (id, created_at, first_hash)
VALUES (1,
        CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER),
        (SELECT hash FROM audit WHERE seq = 1));
