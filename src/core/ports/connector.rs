//! Target systems: accounts and entitlements, each operation looking before it acts.

use std::time::Duration;

use async_trait::async_trait;

use crate::core::model::{ActionOp, Email, Handle};

/// The person an action is about, as a connector needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// Handle (LDAP uid, directory key).
    pub handle: Handle,
    /// Full name.
    pub name: String,
    /// Email (SCIM userName).
    pub email: Email,
}

/// One operation of a bulk call ([`Connector::apply_many`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkOp {
    /// What to do.
    pub op: ActionOp,
    /// To whom.
    pub who: Subject,
    /// The entitlement, for grants and revokes.
    pub entitlement: Option<String>,
}

/// An account as a target system reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The target's id for it.
    pub id: String,
    /// Enabled or disabled.
    pub active: bool,
}

/// An account, or a member of an entitlement, as a target lists it: its id there and what
/// may tie it to a person (reconciliation matches people by login and email).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Listed {
    /// The target's id for it (SCIM id, LDAP DN, the directory's handle).
    pub id: String,
    /// Its login as the target writes it (SCIM userName, LDAP uid), when known.
    pub login: Option<String>,
    /// The email addresses it carries.
    pub emails: Vec<String>,
    /// Enabled or disabled, when the target says.
    pub active: Option<bool>,
}

/// The reason a connector gives when it cannot list what it holds.
pub const CANNOT_LIST: &str = "this connector cannot list what it holds";

/// What an effect did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// The change was made.
    Applied,
    /// It was already so; nothing was sent.
    AlreadyInState,
    /// A person must do it; the text says what.
    Manual(String),
    /// What the target holds for the person (the answer to [`ActionOp::Verify`]).
    Inventory {
        /// Entitlements the person is still a member of.
        entitlements: Vec<String>,
        /// Whether an enabled account is still there.
        active_account: bool,
    },
}

/// Why a connector call failed. Texts never carry secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectorError {
    /// Slow down; try again after this long if known.
    #[error("rate limited")]
    RateLimited {
        /// The target's advice.
        retry_after: Option<Duration>,
    },
    /// May work if tried again.
    #[error("temporary failure: {0}")]
    Transient(String),
    /// The target refused because of its state.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The thing is not there.
    #[error("not found: {0}")]
    NotFound(String),
    /// Our credentials were refused.
    #[error("unauthorised: {0}")]
    Unauthorized(String),
    /// Will not work if tried again.
    #[error("{0}")]
    Permanent(String),
    /// The target's answer cannot be trusted to show the truth (a filter it ignores, two
    /// reads that disagree, a listing it cannot give): nothing may be reported as removed
    /// or absent on its strength. The text says why.
    #[error("could not verify: {0}")]
    Unverifiable(String),
}

impl ConnectorError {
    /// How an [`ConnectorError::Unverifiable`] reads once stored as text (an action's last
    /// error): the reports tell "could not verify" from "failed" by it.
    pub const UNVERIFIED_PREFIX: &'static str = "could not verify: ";

    /// Whether trying again may help.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::Transient(_))
    }

    /// Whether a stored error text is that of an [`ConnectorError::Unverifiable`].
    pub fn is_unverified_text(text: &str) -> bool {
        text.starts_with(Self::UNVERIFIED_PREFIX)
    }
}

/// A target system: accounts and entitlements. Every method looks before it acts, so an
/// action may be repeated safely.
#[async_trait]
pub trait Connector: Send + Sync {
    /// The account of this person, if any.
    async fn find_account(&self, who: &Subject) -> Result<Option<Account>, ConnectorError>;
    /// Creates the account (enabled).
    async fn create_account(&self, who: &Subject) -> Result<Effect, ConnectorError>;
    /// Disables the account.
    async fn disable_account(&self, who: &Subject) -> Result<Effect, ConnectorError>;
    /// Enables the account.
    async fn enable_account(&self, who: &Subject) -> Result<Effect, ConnectorError>;
    /// Deletes the account.
    async fn delete_account(&self, who: &Subject) -> Result<Effect, ConnectorError>;
    /// Adds the entitlement (group membership).
    async fn grant(&self, who: &Subject, entitlement: &str) -> Result<Effect, ConnectorError>;
    /// Removes the entitlement.
    async fn revoke(&self, who: &Subject, entitlement: &str) -> Result<Effect, ConnectorError>;
    /// The entitlements the person holds in the target.
    async fn list_grants(&self, who: &Subject) -> Result<Vec<String>, ConnectorError>;
    /// Checks that the target answers and accepts our credentials.
    async fn test_connection(&self) -> Result<(), ConnectorError>;

    /// Every member of the entitlement, read in full (every page). Never a partial list: a
    /// page that fails fails the whole listing (a partial list is no evidence of absence).
    /// A connector that cannot list answers [`ConnectorError::Unverifiable`] saying so.
    async fn list_members(&self, entitlement: &str) -> Result<Vec<Listed>, ConnectorError> {
        let _ = entitlement;
        Err(ConnectorError::Unverifiable(CANNOT_LIST.into()))
    }

    /// Every account, read in full, where the target can list them; `None` when it can list
    /// only the members of entitlements. Never a partial list.
    async fn list_accounts(&self) -> Result<Option<Vec<Listed>>, ConnectorError> {
        Ok(None)
    }

    /// Runs one queued operation, looking before acting at every step.
    async fn apply(
        &self,
        op: ActionOp,
        who: &Subject,
        entitlement: Option<&str>,
    ) -> Result<Effect, ConnectorError> {
        apply_steps(self, op, who, entitlement).await
    }

    /// Whether [`Connector::apply_many`] does better than one [`Connector::apply`] per
    /// operation (the engine then hands it a batch's operations in one call).
    fn bulk(&self) -> bool {
        false
    }

    /// Runs several operations, each person's in the given order, looking before acting as
    /// [`Connector::apply`] does; one result per operation, in order.
    async fn apply_many(&self, ops: &[BulkOp]) -> Vec<Result<Effect, ConnectorError>> {
        let mut out = Vec::with_capacity(ops.len());
        for o in ops {
            out.push(self.apply(o.op, &o.who, o.entitlement.as_deref()).await);
        }
        out
    }
}

/// The steps of [`Connector::apply`], each looking before it acts; a connector that overrides
/// `apply` for one operation runs the others through this. Every read's error, an
/// [`ConnectorError::Unverifiable`] above all, is handed on as it is: a read that cannot be
/// trusted never becomes "no account" or "no membership" here, and an
/// [`Effect::Inventory`] is only built from two reads that both answered.
pub async fn apply_steps<C: Connector + ?Sized>(
    c: &C,
    op: ActionOp,
    who: &Subject,
    entitlement: Option<&str>,
) -> Result<Effect, ConnectorError> {
    match op {
        ActionOp::Grant => {
            let mut made = false;
            match c.find_account(who).await? {
                None => made |= c.create_account(who).await? == Effect::Applied,
                Some(a) if !a.active => made |= c.enable_account(who).await? == Effect::Applied,
                Some(_) => {}
            }
            let e = match entitlement {
                Some(e) => c.grant(who, e).await?,
                None => Effect::AlreadyInState,
            };
            Ok(if made { Effect::Applied } else { e })
        }
        ActionOp::Revoke => match entitlement {
            Some(e) => c.revoke(who, e).await,
            None => Ok(Effect::AlreadyInState),
        },
        ActionOp::Disable => match c.find_account(who).await? {
            None => Ok(Effect::AlreadyInState),
            Some(a) if !a.active => Ok(Effect::AlreadyInState),
            Some(_) => c.disable_account(who).await,
        },
        ActionOp::Verify => {
            let active_account = c.find_account(who).await?.is_some_and(|a| a.active);
            let entitlements = c.list_grants(who).await?;
            Ok(Effect::Inventory {
                entitlements,
                active_account,
            })
        }
    }
}
