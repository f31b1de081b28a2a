//! The key table: every key, in the order the reference lists them.

use super::{KeySpec, REQ, k};

/// The keys.
pub const KEYS: &[KeySpec] = &[
    // [organization]
    k(
        "organization",
        "name",
        "string",
        REQ,
        "\"Acme\"",
        "The organisation's name.",
    ),
    k(
        "organization",
        "it_admins",
        "array of handles",
        Some("[]"),
        "[\"dana\", \"mia\"]",
        "People who are IT admins; being one comes from this list alone.",
    ),
    k(
        "organization",
        "people_file",
        "string (path)",
        REQ,
        "\"people.csv\"",
        "A CSV of more people (columns: the [[person]] keys), relative to the config file.",
    ),
    k(
        "organization",
        "timezone",
        "string (IANA name)",
        Some("\"UTC\""),
        "\"Europe/Berlin\"",
        "The organisation's time zone, from the IANA database (a typo gets a \"did you \
         mean\"). A date someone types (`/offboard when:2026-12-31`, HR's `last_day`) ends at \
         23:59:59 in the zone of the person it is about (their own `timezone`, else this); \
         times in messages are written in the reader's zone, with its abbreviation \
         (`2026-12-31 23:59 PST`).",
    ),
    // [workflow]
    k(
        "workflow",
        "remind_after",
        "duration",
        Some("\"24h\""),
        "\"24h\"",
        "Remind an approver who has not decided.",
    ),
    k(
        "workflow",
        "escalate_after",
        "duration",
        Some("\"72h\""),
        "\"72h\"",
        "Escalate a step, counted from the step's start.",
    ),
    k(
        "workflow",
        "expire_after",
        "duration",
        Some("\"7d\""),
        "\"7d\"",
        "Expire an undecided request, counted from submission.",
    ),
    k(
        "workflow",
        "max_duration",
        "duration",
        Some("\"365d\""),
        "\"365d\"",
        "Ceiling for any duration anyone types.",
    ),
    k(
        "workflow",
        "step_up_for",
        "array of strings",
        Some("[]"),
        "[\"offboard\", \"role\"]",
        "IT's confirms that need a step-up code: offboard, role, onboard (plan Confirm), \
         retry, done, review, drift.",
    ),
    // [database]
    k(
        "database",
        "url",
        "string (URL)",
        Some("\"sqlite://quartermaster.db\""),
        "\"postgres://qm@db.internal/quartermaster\"",
        "`sqlite://FILE` (relative to the config file) or `postgres://…`.",
    ),
    // [discord]
    k(
        "discord",
        "mode",
        "string",
        Some("\"gateway\""),
        "\"interactions\"",
        "`gateway` (a websocket) or `interactions` (Discord POSTs to /discord/interactions).",
    ),
    k(
        "discord",
        "application_id",
        "string (digits)",
        REQ,
        "\"123456789012345678\"",
        "Required. The application's id.",
    ),
    k(
        "discord",
        "public_key",
        "string (64 hex digits)",
        REQ,
        "\"<64 hex digits>\"",
        "The application's Ed25519 public key; required with mode = \"interactions\".",
    ),
    k(
        "discord",
        "token_env",
        "string (variable name)",
        REQ,
        "\"QM_DISCORD_TOKEN\"",
        "Required. The environment variable holding the bot token (or NAME_FILE: a file).",
    ),
    k(
        "discord",
        "api_base",
        "string (URL)",
        Some("\"https://discord.com/api\""),
        "\"http://127.0.0.1:9000/api\"",
        "Where REST calls go (a test double, a proxy).",
    ),
    k(
        "discord",
        "approvals_channel",
        "string (channel id)",
        REQ,
        "\"234567890123456789\"",
        "A channel where approval requests are also posted.",
    ),
    k(
        "discord",
        "guilds",
        "array of strings (guild ids)",
        Some("[] (every guild)"),
        "[\"345678901234567890\"]",
        "Optional allowlist: commands and clicks from other servers are refused and audited.",
    ),
    // [http]
    k(
        "http",
        "listen",
        "string (address)",
        Some("\"127.0.0.1:8080\""),
        "\"0.0.0.0:8080\"",
        "Required in the table. Address to listen on.",
    ),
    k(
        "http",
        "public_url",
        "string (URL)",
        REQ,
        "\"https://qm.example.com\"",
        "Where people reach this server; the bot's links (the one-time MFA enrolment page, \
         `GET /mfa/enroll/TOKEN`) use it. Without it, `/mfa enroll` answers with the secret \
         itself, shown only to that person.",
    ),
    // [mfa]
    k(
        "mfa",
        "key_env",
        "string (variable name)",
        REQ,
        "\"QM_MFA_KEY\"",
        "The environment variable holding the key (64 hex characters, e.g. `openssl rand -hex \
         32`) that seals TOTP secrets at rest (XChaCha20-Poly1305).",
    ),
    // [hr]
    k(
        "hr",
        "secret_env",
        "string (variable name)",
        REQ,
        "\"QM_HR_SECRET\"",
        "Required. The environment variable holding the HMAC secret the HR system signs with.",
    ),
    // [audit]
    k(
        "audit",
        "key_env",
        "string (variable name)",
        REQ,
        "\"QM_AUDIT_KEY\"",
        "The environment variable holding the key that seals the audit chain.",
    ),
    k(
        "audit",
        "anchor_file",
        "string (path)",
        REQ,
        "\"/var/lib/quartermaster/anchors.log\"",
        "Append-only copy of every seal, outside the database.",
    ),
    k(
        "audit",
        "anchor_channel",
        "string (channel id)",
        REQ,
        "\"234567890123456789\"",
        "Not available yet (refused); use anchor_file.",
    ),
    // [[person]]
    k(
        "person",
        "handle",
        "string",
        REQ,
        "\"alice\"",
        "Required. The person's handle (lowercase letters, digits, `-`, `_`, `.`).",
    ),
    k(
        "person",
        "name",
        "string",
        REQ,
        "\"Alice Ng\"",
        "Required. Full name.",
    ),
    k(
        "person",
        "email",
        "string",
        REQ,
        "\"alice@acme.test\"",
        "Required. Email address.",
    ),
    k(
        "person",
        "department",
        "string",
        REQ,
        "\"Engineering\"",
        "Department (birthright apps).",
    ),
    k(
        "person",
        "role",
        "string (role name)",
        REQ,
        "\"engineer\"",
        "Required. Job role, a [[role]] name (birthright apps).",
    ),
    k(
        "person",
        "manager",
        "string (handle)",
        REQ,
        "\"bob\"",
        "The manager's handle (approvals that say `manager`).",
    ),
    k(
        "person",
        "discord_id",
        "string (digits)",
        REQ,
        "\"100000000000000002\"",
        "The person's Discord user id.",
    ),
    k(
        "person",
        "timezone",
        "string (IANA name)",
        Some("organization.timezone"),
        "\"America/Los_Angeles\"",
        "The person's own time zone: dates about them (`/offboard when:`, HR's `last_day`) end \
         at 23:59:59 there, and the times in messages to them are written there. The HR \
         feed's `person.timezone` and `/onboard timezone:` set it too; a record without one \
         keeps the stored zone.",
    ),
    // [[role]]
    k(
        "role",
        "name",
        "string",
        REQ,
        "\"engineer\"",
        "Required. The role's name.",
    ),
    k(
        "role",
        "apps",
        "array of app names",
        Some("[]"),
        "[\"github\", \"figma\"]",
        "Apps granted to people with this role.",
    ),
    // [[department]]
    k(
        "department",
        "name",
        "string",
        REQ,
        "\"Engineering\"",
        "Required. The department.",
    ),
    k(
        "department",
        "apps",
        "array of app names",
        Some("[]"),
        "[\"github\"]",
        "Apps granted to people in this department.",
    ),
    // [[app]]
    k(
        "app",
        "name",
        "string",
        REQ,
        "\"figma\"",
        "Required. What people type in /request.",
    ),
    k(
        "app",
        "display",
        "string",
        Some("the name"),
        "\"Figma\"",
        "The name shown in messages.",
    ),
    k(
        "app",
        "connector",
        "string (connector name)",
        REQ,
        "\"sandbox\"",
        "Required. The [[connector]] that provisions it.",
    ),
    k(
        "app",
        "entitlement",
        "string",
        Some("the name"),
        "\"figma-editors\"",
        "What the connector grants (a group; on LDAP a group name or a full DN).",
    ),
    k(
        "app",
        "owners",
        "array of handles",
        Some("[]"),
        "[\"carol\"]",
        "The app's owners (approvals that say `owner`).",
    ),
    k(
        "app",
        "approvals",
        "array",
        REQ,
        "[\"manager\", \"owner\"]",
        "Required when requestable: the approval steps in order, each `manager`, `owner`, \
       `it-admin` or a handle.",
    ),
    k(
        "app",
        "max_duration",
        "duration",
        Some("[workflow] max_duration"),
        "\"90d\"",
        "The longest grant anyone may ask for.",
    ),
    k(
        "app",
        "default_duration",
        "duration",
        Some("permanent"),
        "\"30d\"",
        "The grant's length when the request names none.",
    ),
    k(
        "app",
        "requestable",
        "boolean",
        Some("true"),
        "false",
        "false: birthright only, never requested.",
    ),
    k(
        "app",
        "reason_pattern",
        "string (regex)",
        REQ,
        "\"^JIRA-[0-9]+\"",
        "A request's reason must match it.",
    ),
    k(
        "app",
        "reason_hint",
        "string",
        REQ,
        "\"a JIRA ticket, e.g. JIRA-123\"",
        "Shown when the reason does not match.",
    ),
    k(
        "app",
        "step_up",
        "string",
        Some("\"none\""),
        "\"totp\"",
        "\"totp\": approvers must enter a code from their authenticator app to Approve.",
    ),
    k(
        "app",
        "break_glass",
        "inline table",
        REQ,
        "{ max = \"2h\", who = [\"role:sre\"], reason_pattern = \"^INC-\", review_within = \"24h\", auto_revoke = false }",
        "Emergency access: `/request app:NAME emergency:true` (or Escalate on a pending request) \
         grants at once for at most `max` (not extendable) to the people `who` names \
         (`role:NAME`, `department:NAME` or a handle), with a reason matching `reason_pattern`; \
         the skipped approvers and the approvals channel get Ratify / Revoke now; without a \
         ratification by someone else within `review_within` (default 24h) IT is told, and \
         with `auto_revoke = true` the access is revoked.",
    ),
    // [[connector]]
    k(
        "connector",
        "name",
        "string",
        REQ,
        "\"okta\"",
        "Required. The connector's name.",
    ),
    k(
        "connector",
        "kind",
        "string",
        REQ,
        "\"scim\"",
        "Required. `directory`, `manual`, `scim`, `ldap` or `webhook`.",
    ),
    k(
        "connector",
        "max_concurrency",
        "positive integer",
        Some("4"),
        "8",
        "Actions run at once against this target.",
    ),
    k(
        "connector",
        "rate_per_second",
        "number",
        REQ,
        "5.0",
        "At most this many actions start per second (default: no limit).",
    ),
    k(
        "connector",
        "timeout",
        "duration",
        Some("\"30s\""),
        "\"10s\"",
        "How long one call may take.",
    ),
    k(
        "connector",
        "lease",
        "duration",
        Some("\"5s\""),
        "\"30s\"",
        "How long a worker holds an action before another may take it over (after a crash); renewed every third of it while the action runs.",
    ),
    // scim
    k(
        "connector.scim",
        "base_url",
        "string (URL)",
        REQ,
        "\"https://scim.example.com/v2\"",
        "Required. The service provider's base URL.",
    ),
    k(
        "connector.scim",
        "token_env",
        "string (variable name)",
        REQ,
        "\"QM_SCIM_TOKEN\"",
        "Required. The environment variable holding the bearer token.",
    ),
    k(
        "connector.scim",
        "page_size",
        "positive integer",
        Some("100"),
        "200",
        "The `count` asked for per page when listing: users and groups are found by paged \
         listings where the provider has no filters, and an empty filter answer is confirmed by \
         one before anything is reported gone. Keep it at or below the provider's \
         `filter.maxResults` (`check --probe` warns).",
    ),
    // ldap
    k(
        "connector.ldap",
        "preset",
        "string",
        Some("\"openldap\""),
        "\"389ds\"",
        "The directory product whose usual layout fills every default below: `openldap` \
         (inetOrgPerson people, groupOfNames groups, ppolicy lock), `389ds` (the same, locked \
         by `nsAccountLock`; also Red Hat IdM), `active-directory` (people found by \
         sAMAccountName or mail, never created; `group` groups; `userAccountControl`). Each \
         key below overrides its part.",
    ),
    k(
        "connector.ldap",
        "url",
        "string (URL)",
        REQ,
        "\"ldaps://ldap.acme.test\"",
        "Required. `ldaps://host[:port]` (TLS), or `ldap://host[:port]` (with `starttls`, on \
         loopback, or with `allow_plaintext`).",
    ),
    k(
        "connector.ldap",
        "starttls",
        "boolean",
        Some("false"),
        "true",
        "Upgrade an `ldap://` connection with StartTLS before binding.",
    ),
    k(
        "connector.ldap",
        "ca_file",
        "string (path)",
        Some("the system's CA certificates"),
        "\"/etc/ssl/acme-ca.pem\"",
        "PEM file of the CA certificates that sign the server's certificate (relative to the \
         config file). Certificates are always verified.",
    ),
    k(
        "connector.ldap",
        "allow_plaintext",
        "boolean",
        Some("false"),
        "true",
        "Allow plain `ldap://` without StartTLS to a host other than loopback (the bind \
         password then crosses the network in clear text). `check` refuses it otherwise.",
    ),
    k(
        "connector.ldap",
        "bind_dn",
        "string (DN)",
        REQ,
        "\"cn=quartermaster,dc=acme,dc=test\"",
        "Required. The DN to bind as.",
    ),
    k(
        "connector.ldap",
        "password_env",
        "string (variable name)",
        REQ,
        "\"QM_LDAP_PASSWORD\"",
        "Required. The environment variable holding the bind password.",
    ),
    k(
        "connector.ldap",
        "user_base",
        "string (DN)",
        REQ,
        "\"ou=people,dc=acme,dc=test\"",
        "Required (or its older name `people_dn`). Where people are searched.",
    ),
    k(
        "connector.ldap",
        "people_dn",
        "string (DN)",
        None,
        "\"ou=people,dc=acme,dc=test\"",
        "The older name of `user_base` (still accepted).",
    ),
    k(
        "connector.ldap",
        "user_scope",
        "string",
        Some("\"sub\""),
        "\"one\"",
        "`sub`: people anywhere under `user_base`; `one`: directly under it.",
    ),
    k(
        "connector.ldap",
        "user_filter",
        "string (LDAP filter template)",
        Some(
            "openldap, 389ds: `(|(uid={handle})(mail={email}))`; active-directory: `(|(sAMAccountName={handle})(mail={email})(userPrincipalName={email}))`",
        ),
        "\"(&(objectClass=inetOrgPerson)(mail={email}))\"",
        "The filter that finds one person. `{handle}`, `{email}` and `{name}` are replaced by \
         the person's values, escaped per RFC 4515. Two matching entries is an error naming \
         both, never a guess.",
    ),
    k(
        "connector.ldap",
        "create_users",
        "boolean",
        Some("true (active-directory: false)"),
        "false",
        "Whether a person the filter does not find is created at `RDN,user_base`. Off for a \
         directory fed by HR: then a missing person is a clear error.",
    ),
    k(
        "connector.ldap",
        "rdn",
        "string (RDN template)",
        Some("`uid={handle}` (active-directory: `cn={name}`)"),
        "\"cn={name}\"",
        "The RDN of a created person (values DN-escaped).",
    ),
    k(
        "connector.ldap",
        "user_object_classes",
        "array of strings",
        Some(
            "`[\"top\", \"person\", \"organizationalPerson\", \"inetOrgPerson\"]` (active-directory: `user` instead of `inetOrgPerson`)",
        ),
        "[\"top\", \"person\", \"organizationalPerson\", \"inetOrgPerson\", \"posixAccount\"]",
        "The object classes of a created person.",
    ),
    k(
        "connector.ldap",
        "group_base",
        "string (DN)",
        REQ,
        "\"ou=groups,dc=acme,dc=test\"",
        "Required (or its older name `groups_dn`). Where groups are searched, subtree-wide. An \
         app's `entitlement` is a group's `cn` (found anywhere under here) or its full DN.",
    ),
    k(
        "connector.ldap",
        "groups_dn",
        "string (DN)",
        None,
        "\"ou=groups,dc=acme,dc=test\"",
        "The older name of `group_base` (still accepted).",
    ),
    k(
        "connector.ldap",
        "group_object_class",
        "string",
        Some("`groupOfNames` (active-directory: `group`)"),
        "\"groupOfUniqueNames\"",
        "The object class of the groups entitlements name.",
    ),
    k(
        "connector.ldap",
        "member_attribute",
        "string",
        Some("\"member\""),
        "\"memberUid\"",
        "How a group lists members: `member` or `uniqueMember` (by DN), `memberUid` (by uid, \
         for `posixGroup`). The offboarding re-read looks through all three.",
    ),
    k(
        "connector.ldap",
        "create_groups",
        "boolean",
        Some("false"),
        "true",
        "Whether a missing group is created as `cn=ENTITLEMENT,group_base`. Off: a missing \
         group is a clear error, raised before any account is created.",
    ),
    k(
        "connector.ldap",
        "placeholder_member",
        "string",
        None,
        "\"cn=nobody,dc=acme,dc=test\"",
        "A member kept in groups this connector creates or empties, for schemas that demand \
         one member (`groupOfNames` on OpenLDAP). Without it, removing a group's last member \
         there fails with a clear error.",
    ),
    k(
        "connector.ldap",
        "disable",
        "string",
        Some("openldap: `ppolicy`; 389ds: `nsaccountlock`; active-directory: `active-directory`"),
        "\"nsaccountlock\"",
        "How accounts are disabled, and read back by the offboarding re-read: `ppolicy` \
         (`pwdAccountLockedTime: 000001010000Z`), `nsaccountlock` (`nsAccountLock: TRUE`), \
         `active-directory` (bit 2 of `userAccountControl`, read-modify-write), `none` \
         (memberships only; disabling then fails, saying so).",
    ),
    // webhook
    k(
        "connector.webhook",
        "url",
        "string (URL)",
        REQ,
        "\"https://hooks.acme.test/qm\"",
        "Required. Where actions are sent.",
    ),
    k(
        "connector.webhook",
        "secret_env",
        "string (variable name)",
        REQ,
        "\"QM_HOOK_SECRET\"",
        "Required. The environment variable holding the signing secret.",
    ),
    k(
        "connector.webhook",
        "method",
        "string",
        Some("\"POST\""),
        "\"PUT\"",
        "POST, PUT, PATCH, GET or DELETE.",
    ),
    k(
        "connector.webhook",
        "body",
        "string (template)",
        Some("every field as JSON"),
        "'{\"user\": \"{handle}\", \"group\": \"{entitlement}\"}'",
        "JSON body template with the placeholders `{op}` (grant, revoke or disable), `{handle}`, `{email}`, `{name}`, `{entitlement}` (`url` may use them too); any other `{word}` is refused.",
    ),
    k(
        "connector.webhook",
        "success",
        "array of integers",
        Some("any 2xx"),
        "[200, 202]",
        "The HTTP statuses that mean done.",
    ),
];
