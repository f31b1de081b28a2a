//! Failure injection at the connector port, as `proxy.rs` does for HTTP: a real connector (the
//! built-in `directory`) does the work, and the answer of the operations the test names is
//! altered on its way back — e.g. a removal answered "could not verify" (what a peer that
//! ignores filters makes an honest connector say). Nothing of a protocol is imitated here.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use quartermaster::core::model::ActionOp;
use quartermaster::core::ports::{Account, Connector, ConnectorError, Effect, Subject};

/// What to do to the answers of one operation.
#[derive(Debug, Clone)]
pub struct Alter {
    /// Which operation.
    pub op: ActionOp,
    /// Run the real operation first (its answer is then dropped).
    pub run_real: bool,
    /// The answer handed back instead.
    pub answer: ConnectorError,
}

/// The switch a test holds.
#[derive(Clone, Default)]
pub struct Switch(Arc<Mutex<Option<Alter>>>);

impl Switch {
    /// Alters the answers of `op` from now on.
    pub fn set(&self, op: ActionOp, run_real: bool, answer: ConnectorError) {
        *self.0.lock().unwrap() = Some(Alter {
            op,
            run_real,
            answer,
        });
    }
    /// Hands the real answers back again.
    pub fn clear(&self) {
        *self.0.lock().unwrap() = None;
    }
    fn get(&self, op: ActionOp) -> Option<Alter> {
        self.0.lock().unwrap().clone().filter(|a| a.op == op)
    }
}

/// A real connector behind the switch.
pub struct Tamper {
    pub inner: Arc<dyn Connector>,
    pub switch: Switch,
}

#[async_trait]
impl Connector for Tamper {
    async fn find_account(&self, who: &Subject) -> Result<Option<Account>, ConnectorError> {
        self.inner.find_account(who).await
    }
    async fn create_account(&self, who: &Subject) -> Result<Effect, ConnectorError> {
        self.inner.create_account(who).await
    }
    async fn disable_account(&self, who: &Subject) -> Result<Effect, ConnectorError> {
        self.inner.disable_account(who).await
    }
    async fn enable_account(&self, who: &Subject) -> Result<Effect, ConnectorError> {
        self.inner.enable_account(who).await
    }
    async fn delete_account(&self, who: &Subject) -> Result<Effect, ConnectorError> {
        self.inner.delete_account(who).await
    }
    async fn grant(&self, who: &Subject, entitlement: &str) -> Result<Effect, ConnectorError> {
        self.inner.grant(who, entitlement).await
    }
    async fn revoke(&self, who: &Subject, entitlement: &str) -> Result<Effect, ConnectorError> {
        self.inner.revoke(who, entitlement).await
    }
    async fn list_grants(&self, who: &Subject) -> Result<Vec<String>, ConnectorError> {
        self.inner.list_grants(who).await
    }
    async fn test_connection(&self) -> Result<(), ConnectorError> {
        self.inner.test_connection().await
    }
    async fn apply(
        &self,
        op: ActionOp,
        who: &Subject,
        entitlement: Option<&str>,
    ) -> Result<Effect, ConnectorError> {
        match self.switch.get(op) {
            None => self.inner.apply(op, who, entitlement).await,
            Some(a) => {
                if a.run_real {
                    let _ = self.inner.apply(op, who, entitlement).await;
                }
                Err(a.answer)
            }
        }
    }
}
