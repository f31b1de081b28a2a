//! The tables of the configuration, in the order the reference lists them.

use super::SectionSpec;

/// The tables.
pub const SECTIONS: &[SectionSpec] = &[
    SectionSpec {
        name: "organization",
        header: "[organization]",
        doc: "Required. Who the organisation is and who administers it.",
    },
    SectionSpec {
        name: "workflow",
        header: "[workflow]",
        doc: "Timers of the approval workflow. Durations are written like `30m`, `8h`, `7d`.",
    },
    SectionSpec {
        name: "database",
        header: "[database]",
        doc: "Where state and the audit trail live. `--db` overrides it.",
    },
    SectionSpec {
        name: "discord",
        header: "[discord]",
        doc: "Optional: without it Discord is off (the console and HTTP still work). \
              `check --probe` tries the token (GET the application).",
    },
    SectionSpec {
        name: "http",
        header: "[http]",
        doc: "The HTTP server of `serve` (health, metrics, the HR feed, Discord interactions).",
    },
    SectionSpec {
        name: "hr",
        header: "[hr]",
        doc: "The HR feed. Point the HR system at `POST http://LISTEN/hr/events` (LISTEN being \
              `[http] listen`, or the public URL in front of it). Each request carries \
              `X-QM-Timestamp` (unix seconds, within 5 minutes of now) and \
              `X-QM-Signature: sha256=HEX`, HEX being the lowercase hex HMAC-SHA256, keyed \
              with the secret, of `TIMESTAMP + \".\" + BODY`.",
    },
    SectionSpec {
        name: "scim_server",
        header: "[scim_server]",
        doc: "Inbound SCIM 2.0: Quartermaster as the service provider an identity provider \
              (Okta, Entra ID, Google, JumpCloud, OneLogin) pushes people to. Point its \
              provisioning at `http://LISTEN/scim/v2` (or the public URL in front of it) with the \
              bearer token; Users map to people by the keys below, Groups feed the rules.",
    },
    SectionSpec {
        name: "scim_server.rule",
        header: "[[scim_server.rule]]",
        doc: "A mapping rule: every `when_*` key given must match (none given: every user); the \
              rule then gives `role` and/or `department`.",
    },
    SectionSpec {
        name: "mfa",
        header: "[mfa]",
        doc: "Step-up verification (TOTP codes from an authenticator app) for high-risk \
              approvals and IT's confirms. Required when an app sets `step_up` or \
              `[workflow] step_up_for` lists anything.",
    },
    SectionSpec {
        name: "audit",
        header: "[audit]",
        doc: "Sealing the audit trail, and a copy of every seal outside the database.",
    },
    SectionSpec {
        name: "person",
        header: "[[person]] (and the columns of a people CSV)",
        doc: "People seed the directory; after that the database wins (HR feed, `import`, \
              /onboard). The same keys are the columns of `organization.people_file` and of \
              `quartermaster import people F.csv` (a header row names them).",
    },
    SectionSpec {
        name: "role",
        header: "[[role]]",
        doc: "Birthright access by job role: a joiner with this role is granted these apps.",
    },
    SectionSpec {
        name: "department",
        header: "[[department]]",
        doc: "Birthright access by department.",
    },
    SectionSpec {
        name: "app",
        header: "[[app]]",
        doc: "Something people request access to, provisioned by one connector.",
    },
    SectionSpec {
        name: "review",
        header: "[[review]]",
        doc: "Scheduled access reviews: each table launches a campaign every `every`, from \
              `starts` on, as IT's `/review start` would (see the README's \"Access reviews\").",
    },
    SectionSpec {
        name: "connector",
        header: "[[connector]] (every kind)",
        doc: "A system Quartermaster provisions. `kind` is one of `directory` (the built-in \
              sandbox in Quartermaster's own database), `manual` (a task posted to the IT \
              admins with a Done button), `scim`, `ldap`, `webhook`; the kinds' own keys follow.",
    },
    SectionSpec {
        name: "connector.scim",
        header: "[[connector]] kind = \"scim\"",
        doc: "A SCIM 2.0 service provider. `check --probe` reads its /ServiceProviderConfig.",
    },
    SectionSpec {
        name: "connector.ldap",
        header: "[[connector]] kind = \"ldap\"",
        doc: "An LDAP directory: OpenLDAP, 389 Directory Server, Active Directory. `check --probe` \
              binds, reads the root DSE (vendor, naming contexts), looks for both bases and reads \
              the schema (which disable methods it supports), warning where it disagrees with \
              the settings.",
    },
    SectionSpec {
        name: "connector.webhook",
        header: "[[connector]] kind = \"webhook\"",
        doc: "An HTTP endpoint of your own. Each call carries `X-QM-Timestamp` and \
              `X-QM-Signature: sha256=HEX` (HMAC-SHA256 of `TIMESTAMP + \".\" + BODY`).",
    },
];
