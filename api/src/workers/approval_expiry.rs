//! The job that records `ApprovalExpired` for pending approval requests
//! past their expiry (reads, decisions and the long poll treat them as
//! expired already, before it runs). It runs every
//! `TENANTRY_INVITATION_EXPIRY_SCAN`, like the other expiry jobs.

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::state::AppState;

pub fn start(state: AppState, shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    let period = state.config.invitation_expiry_scan;
    super::every(
        state,
        period,
        "the approval expiry job",
        shutdown,
        |state| async move { crate::service::approvals::expire_due(&state).await },
    )
}
