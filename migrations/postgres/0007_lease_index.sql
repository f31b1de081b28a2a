-- The claim's second look-up (a running action whose lease lapsed) walked every index entry
-- under state 'running' in id order, testing each one's lease: on PostgreSQL an update leaves
-- the old entry behind until vacuum, and every action passes through 'running', so each claim
-- cost grew with the number of actions finished since the last vacuum (profiled: the claim was
-- the server's costliest statement in the engine benchmark). Ordered by lease, the look-up
-- stops at the first lease that has not lapsed. SQLite removes old entries at once: not needed.
CREATE INDEX actions_leased ON actions (lease_until, id) WHERE state = 'running';
