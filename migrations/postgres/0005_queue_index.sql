-- The engine's claim looks up the oldest due action per state in id order; this index
-- serves it directly (the old one on (state, not_before) made every claim sort all pending
-- actions, or scan all finished ones). It also covers the columns the claim filters on.
DROP INDEX actions_due;
CREATE INDEX actions_queue ON actions (state, id, not_before, lease_until, connector);
