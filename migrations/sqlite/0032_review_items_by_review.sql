-- The timers read one review's open items, and count what a review has not settled.
CREATE INDEX review_items_by_review ON review_items (review_id, state);
