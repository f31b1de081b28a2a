-- A person's own time zone (an IANA name such as America/Los_Angeles); NULL: the
-- organisation's. Dates they type or are about end at 23:59:59 there, and the times their
-- messages show are written there.
ALTER TABLE people ADD COLUMN timezone TEXT NULL;
