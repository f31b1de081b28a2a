//! The commented starter config that `quartermaster init` writes.

/// The starter config `quartermaster init` writes: it passes `check` as it is.
pub const STARTER: &str = r#"# Quartermaster configuration (written by `quartermaster init`).
#
# Every key is described in docs/CONFIG.md (or: quartermaster config reference).
# Check this file after each edit:  quartermaster check --config THIS_FILE [--probe]
# Secrets never live here: keys ending in _env name the environment variable holding them.

[organization]
name = "Example Co"
it_admins = ["admin"]            # handles of the IT admins
# people_file = "people.csv"     # more people: a CSV whose header names the [[person]] keys
# timezone = "Europe/Berlin"

[workflow]
remind_after = "24h"             # remind an approver who has not decided
escalate_after = "72h"           # escalate a step, counted from the step's start
expire_after = "7d"              # expire an undecided request
max_duration = "365d"            # ceiling for any duration anyone types
# step_up_for = ["offboard", "role"]   # IT confirms that need a code (needs [mfa])

[database]
url = "sqlite://quartermaster.db"   # relative to this file; or postgres://user@host/db

# [discord]
# application_id = "123456789012345678"
# token_env = "QM_DISCORD_TOKEN"
# mode = "gateway"               # or "interactions" (then also public_key = "<64 hex>")
# approvals_channel = "234567890123456789"

[http]
listen = "127.0.0.1:8080"
# public_url = "https://qm.example.com"   # links the bot sends (the MFA enrolment page)

# [mfa]                          # step-up: TOTP codes for high-risk approvals
# key_env = "QM_MFA_KEY"         # 64 hex characters: openssl rand -hex 32

# [hr]                           # POST /hr/events, signed: see docs/CONFIG.md
# secret_env = "QM_HR_SECRET"

# [scim_server]                  # inbound SCIM 2.0 at /scim/v2 (Okta, Entra ID…): see README
# token_env = "QM_SCIM_TOKEN"    # the bearer token the identity provider sends
# joiner = "plan"                # or "auto": onboard new users at once
# leaver = "plan"                # or "immediate": offboard deactivated users at once
# handle_from = "userName"       # the handle is its local part
# default_role = "it"            # a user no rule gives a role to
# [[scim_server.rule]]
# when_group = "IT"              # or when_title, when_department
# role = "it"
# department = "IT"

# [audit]
# key_env = "QM_AUDIT_KEY"
# anchor_file = "/var/lib/quartermaster/anchors.log"

[[person]]
handle = "admin"
name = "Ada Admin"
email = "admin@example.com"
department = "IT"
role = "it"

[[role]]
name = "it"
apps = []

[[app]]
name = "wiki"
display = "Wiki"
connector = "it-desk"
approvals = ["manager", "it-admin"]
default_duration = "90d"
# step_up = "totp"               # its approvers type a code to Approve (needs [mfa])
# break_glass = { max = "2h", who = ["role:it"], reason_pattern = "^INC-" }
# privileged = true              # access reviews ask why on Keep too

# [[review]]                     # an access review campaign every 90 days
# scope = "app:wiki"             # or role:NAME, department:NAME, connector:NAME, all
# reviewer = "manager"           # or "owner", or a handle
# due = "14d"
# default = "escalate"           # what nobody decided by then: keep, revoke, escalate (IT)
# every = "90d"
# starts = "2027-01-05"

[[connector]]
name = "it-desk"
kind = "manual"                  # a task for the IT admins, closed with a Done button

# [[connector]]
# name = "okta"
# kind = "scim"
# base_url = "https://example.okta.com/scim/v2"
# token_env = "QM_SCIM_TOKEN"
# reconcile_every = "6h"         # drift: compare what it holds with the records
# on_drift = "report"            # or "revoke" (what two runs in a row saw unrecorded)

# [[connector]]
# name = "ldap"
# kind = "ldap"
# preset = "openldap"             # or "389ds", "active-directory"
# url = "ldaps://ldap.example.com"
# bind_dn = "cn=quartermaster,dc=example,dc=com"
# password_env = "QM_LDAP_PASSWORD"
# user_base = "ou=people,dc=example,dc=com"
# group_base = "ou=groups,dc=example,dc=com"
"#;
