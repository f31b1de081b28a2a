-- The step whose approvers were last prompted. A request awaiting a step it has not
-- prompted for (a crash between a decision's commit and its prompts) has its prompts sent
-- again by the next tick or click; requests stored before this column count as prompted.
ALTER TABLE requests ADD COLUMN prompted_step INTEGER NULL;
UPDATE requests SET prompted_step = current_step;
