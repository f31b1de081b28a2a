-- Access reviews: a campaign (`reviews`), one item per access reviewed (`review_items`,
-- shared by overlapping reviews through `review_links`). `version` guards optimistic updates.
CREATE TABLE reviews (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    scope         TEXT    NOT NULL,
    reviewer      TEXT    NOT NULL,
    due_span      INTEGER NOT NULL,
    escalate_span INTEGER NOT NULL,
    dflt          TEXT    NOT NULL,
    state         TEXT    NOT NULL,
    launched_by   TEXT    NOT NULL,
    launched_at   INTEGER NOT NULL,
    due_at        INTEGER NOT NULL,
    campaign      TEXT    NULL,
    snapshot      TEXT    NULL,
    closed_at     INTEGER NULL,
    version       INTEGER NOT NULL
);
CREATE INDEX reviews_by_state ON reviews (state);
CREATE INDEX reviews_by_campaign ON reviews (campaign, launched_at);

CREATE TABLE review_items (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    review_id    INTEGER NOT NULL,
    person       TEXT    NOT NULL,
    app          TEXT    NOT NULL,
    grant_id     INTEGER NULL,
    account      TEXT    NULL,
    expires_at   INTEGER NULL,
    seen         TEXT    NOT NULL,
    reviewers    TEXT    NOT NULL,
    of_record    TEXT    NOT NULL,
    page         INTEGER NOT NULL,
    state        TEXT    NOT NULL,
    decided_by   TEXT    NULL,
    decided_at   INTEGER NULL,
    reason       TEXT    NULL,
    action_id    INTEGER NULL,
    proof        TEXT    NULL,
    escalated    INTEGER NOT NULL,
    reminded_at  INTEGER NULL,
    version      INTEGER NOT NULL
);
CREATE INDEX review_items_by_grant ON review_items (grant_id, state);
CREATE INDEX review_items_by_state ON review_items (state);
CREATE INDEX review_items_by_page ON review_items (page);

CREATE TABLE review_links (
    review_id  INTEGER NOT NULL,
    item_id    INTEGER NOT NULL,
    PRIMARY KEY (review_id, item_id)
);
CREATE INDEX review_links_by_item ON review_links (item_id);
