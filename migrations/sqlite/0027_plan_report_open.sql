-- An offboarding report sent while something was not verified gone (a failure, a removal that
-- could not be verified, a task waiting for IT) stays open: IT's Retry (or Done) updates it,
-- and the change that sends the final "everything is removed" report clears this flag, once.
ALTER TABLE plans ADD COLUMN report_open INTEGER NOT NULL DEFAULT 0;
