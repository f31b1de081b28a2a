-- An offboarding's re-reads (Verify actions) are enqueued once: the change that enqueues them
-- also sets this flag, and fails if it was already set (two last actions finishing at once
-- both found "everything settled, no re-read yet" and each enqueued a set).
ALTER TABLE plans ADD COLUMN verifying INTEGER NOT NULL DEFAULT 0;
