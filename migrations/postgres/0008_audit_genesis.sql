-- The audit chain's genesis, written once when the database is created (or, for a database
-- created before this migration, when it is upgraded). `first_hash` is the hash of row 1 once
-- the chain has one, so an audit table emptied later does not verify as a fresh start.
CREATE TABLE audit_genesis (
    id          BIGINT NOT NULL PRIMARY KEY CHECK (id = 1),
    created_at  BIGINT NOT NULL,
    first_hash  TEXT
);
INSERT INTO audit_genesis (id, created_at, first_hash)
VALUES (1,
        (extract(epoch FROM clock_timestamp()) * 1000000)::bigint,
        (SELECT hash FROM audit WHERE seq = 1));
