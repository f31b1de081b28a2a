//! LDAP result codes and how they map to the port's error kinds.

use ldap3::{LdapError, LdapResult};

use crate::core::ports::ConnectorError;

// LDAP result codes (RFC 4511, appendix A).
pub(super) const RC_SUCCESS: u32 = 0;
pub(super) const RC_TIME_LIMIT: u32 = 3;
pub(super) const RC_ADMIN_LIMIT: u32 = 11;
pub(super) const RC_NO_SUCH_ATTRIBUTE: u32 = 16;
pub(super) const RC_VALUE_EXISTS: u32 = 20;
pub(super) const RC_NO_SUCH_OBJECT: u32 = 32;
pub(super) const RC_INVALID_CREDENTIALS: u32 = 49;
pub(super) const RC_INSUFFICIENT_ACCESS: u32 = 50;
pub(super) const RC_BUSY: u32 = 51;
pub(super) const RC_UNAVAILABLE: u32 = 52;
pub(super) const RC_UNWILLING: u32 = 53;
pub(super) const RC_OBJECT_CLASS_VIOLATION: u32 = 65;
pub(super) const RC_ALREADY_EXISTS: u32 = 68;

/// A read whose failure means "we do not know", not "it is not there".
pub(super) fn unverifiable(e: ConnectorError) -> ConnectorError {
    match e {
        ConnectorError::Permanent(m)
        | ConnectorError::NotFound(m)
        | ConnectorError::Conflict(m)
        | ConnectorError::Unauthorized(m) => ConnectorError::Unverifiable(m),
        other => other,
    }
}

/// A human name for the result codes people meet.
fn rc_name(rc: u32) -> &'static str {
    match rc {
        1 => "operationsError",
        2 => "protocolError",
        RC_TIME_LIMIT => "timeLimitExceeded",
        RC_ADMIN_LIMIT => "adminLimitExceeded",
        RC_NO_SUCH_ATTRIBUTE => "noSuchAttribute",
        17 => "undefinedAttributeType",
        19 => "constraintViolation",
        RC_VALUE_EXISTS => "attributeOrValueExists",
        21 => "invalidAttributeSyntax",
        RC_NO_SUCH_OBJECT => "noSuchObject",
        34 => "invalidDNSyntax",
        RC_INVALID_CREDENTIALS => "invalidCredentials",
        RC_INSUFFICIENT_ACCESS => "insufficientAccessRights",
        RC_BUSY => "busy",
        RC_UNAVAILABLE => "unavailable",
        53 => "unwillingToPerform",
        64 => "namingViolation",
        RC_OBJECT_CLASS_VIOLATION => "objectClassViolation",
        66 => "notAllowedOnNonLeaf",
        RC_ALREADY_EXISTS => "entryAlreadyExists",
        _ => "other",
    }
}

/// Maps an LDAP result code to the port's error kinds.
pub(super) fn rc_error(what: &str, r: &LdapResult) -> ConnectorError {
    let mut msg = format!("{what}: LDAP result {} {}", r.rc, rc_name(r.rc));
    if !r.text.is_empty() {
        msg.push_str(&format!(" ({})", r.text));
    }
    match r.rc {
        RC_INVALID_CREDENTIALS | RC_INSUFFICIENT_ACCESS => ConnectorError::Unauthorized(msg),
        RC_NO_SUCH_OBJECT => ConnectorError::NotFound(msg),
        RC_BUSY | RC_UNAVAILABLE | RC_TIME_LIMIT | RC_ADMIN_LIMIT => ConnectorError::Transient(msg),
        RC_ALREADY_EXISTS => ConnectorError::Conflict(msg),
        _ => ConnectorError::Permanent(msg),
    }
}

/// Maps a client-side failure: the network and timeouts are transient, the rest permanent.
pub(super) fn ldap_error(what: &str, e: LdapError) -> ConnectorError {
    // A certificate the settings do not trust stays untrusted however often it is tried.
    let text = e.to_string();
    if text.contains("certificate") || text.contains("Certificate") {
        return ConnectorError::Permanent(format!("{what}: {text}"));
    }
    match e {
        LdapError::LdapResult { result } => rc_error(what, &result),
        LdapError::Io { .. }
        | LdapError::Timeout { .. }
        | LdapError::OpSend { .. }
        | LdapError::ResultRecv { .. }
        | LdapError::IdScrubSend { .. }
        | LdapError::MiscSend { .. }
        | LdapError::EndOfStream => ConnectorError::Transient(format!("{what}: {e}")),
        other => ConnectorError::Permanent(format!("{what}: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_codes_map_to_error_kinds() {
        let r = |rc| LdapResult {
            rc,
            matched: String::new(),
            text: String::new(),
            refs: vec![],
            ctrls: vec![],
        };
        assert!(matches!(
            rc_error("x", &r(49)),
            ConnectorError::Unauthorized(_)
        ));
        assert!(matches!(rc_error("x", &r(32)), ConnectorError::NotFound(_)));
        assert!(matches!(
            rc_error("x", &r(52)),
            ConnectorError::Transient(_)
        ));
        assert!(matches!(rc_error("x", &r(68)), ConnectorError::Conflict(_)));
        assert!(matches!(
            rc_error("x", &r(65)),
            ConnectorError::Permanent(_)
        ));
    }
}
