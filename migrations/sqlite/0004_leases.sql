-- Named leases between instances sharing one database: the holder of "scheduler" runs the
-- scheduled work (expiries, reminders, scheduled offboardings), so it runs once, and another
-- instance takes over when the holder stops renewing.
CREATE TABLE leases (
    name    TEXT NOT NULL PRIMARY KEY,
    holder  TEXT NOT NULL,
    until   INTEGER NOT NULL
);
