-- The durable chat outbox: every message (or edit) the core sends is a row written in the
-- transaction of the decision that causes it, and a worker delivers it (claim with a lease,
-- send, mark sent; retry with backoff; fall back; audit a final failure). Times are real
-- time in microseconds (delivery runs on the wall clock, not the business clock).
CREATE TABLE outbox (
    id           BIGSERIAL PRIMARY KEY,
    kind         TEXT COLLATE "C" NOT NULL,  -- 'send' or 'edit'
    recipient    TEXT COLLATE "C" NULL,      -- 'person:HANDLE' or 'channel:ID' (sends)
    text         TEXT NOT NULL,
    buttons      TEXT NOT NULL,              -- JSON [[label, custom_id], ...]
    msg_key      TEXT COLLATE "C" NULL,      -- MessageKey: edits follow the sends under it
    dedupe       TEXT COLLATE "C" NULL UNIQUE, -- one row per logical message, ever
    attempts     BIGINT NOT NULL DEFAULT 0,
    next_try     BIGINT NOT NULL,
    lease_until  BIGINT NULL,
    state        TEXT COLLATE "C" NOT NULL,  -- pending, sending, sent, failed
    last_error   TEXT NULL,
    created_at   BIGINT NOT NULL,
    done_at      BIGINT NULL
);
CREATE INDEX outbox_due ON outbox (state, next_try);
CREATE INDEX outbox_by_key ON outbox (msg_key);
