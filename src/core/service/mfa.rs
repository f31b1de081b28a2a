//! `/mfa`: two-step verification (step-up). A placeholder until the use case lands.

use super::*;
use crate::core::command::MfaIntent;

impl Service {
    /// `/mfa …` for `c`.
    pub(super) async fn mfa(&self, c: &Caller, m: MfaIntent) -> Result<Reply> {
        let _ = (c, m);
        Ok(Reply::text("Two-step verification is not set up here yet."))
    }
}
