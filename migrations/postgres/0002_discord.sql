-- Discord adapter state.
--
-- Every Discord message sent under a key (all copies of one approval prompt: the approver's DM,
-- the approvals channel, a fallback), so that a decision edits every copy, also after a restart.
CREATE TABLE discord_messages (
    msg_key     TEXT COLLATE "C" NOT NULL,
    channel_id  TEXT COLLATE "C" NOT NULL,
    message_id  TEXT COLLATE "C" NOT NULL,
    recipient   TEXT COLLATE "C" NULL,                 -- the handle for a DM, NULL for a channel
    sent_at     BIGINT NOT NULL,
    PRIMARY KEY (channel_id, message_id)
);
CREATE INDEX discord_messages_by_key ON discord_messages (msg_key);
