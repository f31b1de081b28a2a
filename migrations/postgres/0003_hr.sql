-- Joiners, movers and leavers: scheduled plans (offboarding on a last day) and the HR feed.

-- When a plan is to be carried out (NULL: as soon as it is confirmed), and whether it was.
ALTER TABLE plans ADD COLUMN due_at BIGINT NULL;
ALTER TABLE plans ADD COLUMN started BIGINT NOT NULL DEFAULT 0;
CREATE INDEX plans_due ON plans (state, started, due_at);

-- HR event ids already handled (a replayed event answers 200 and changes nothing).
CREATE TABLE hr_events (
    id  TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    at  BIGINT NOT NULL
);
