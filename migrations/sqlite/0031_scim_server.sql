-- Inbound SCIM (issue 21): the resources the identity provider pushes, as it sent them. `id` is
-- ours and never changes; `name_key` is userName (Users) or displayName (Groups) lowercased,
-- unique among Users; `handle` is the person a user maps to, fixed when first mapped;
-- `version` is meta.version (the ETag), guarding conditional writes.
CREATE TABLE scim_resources (
    id          TEXT    NOT NULL PRIMARY KEY,
    kind        TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    name_key    TEXT    NOT NULL,
    external_id TEXT    NULL,
    handle      TEXT    NULL,
    active      INTEGER NOT NULL,
    version     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    body        TEXT    NOT NULL
);
CREATE UNIQUE INDEX scim_user_names ON scim_resources (name_key) WHERE kind = 'User';
CREATE UNIQUE INDEX scim_user_handles ON scim_resources (handle) WHERE kind = 'User';
CREATE INDEX scim_by_external_id ON scim_resources (kind, external_id);
CREATE INDEX scim_by_kind ON scim_resources (kind, created_at, id);

-- Group membership, kept with each group write: a user's groups without reading every group.
CREATE TABLE scim_members (
    group_id  TEXT NOT NULL,
    member_id TEXT NOT NULL,
    PRIMARY KEY (group_id, member_id)
);
CREATE INDEX scim_members_by_member ON scim_members (member_id);
