//! The job that signs the tenants' chains: a checkpoint once a head is
//! `TENANTRY_CHECKPOINT_EVERY_EVENTS` past its last one, or at all once
//! `TENANTRY_CHECKPOINT_INTERVAL` passed (`docs/AUDIT.md`). It looks every
//! `TENANTRY_INVITATION_EXPIRY_SCAN`; two processes signing one head keep
//! one checkpoint.

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::state::AppState;

pub fn start(state: AppState, shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    let period = state.config.invitation_expiry_scan;
    super::every(
        state,
        period,
        "the checkpoint job",
        shutdown,
        |state| async move { crate::service::audit::sign_due(&state).await },
    )
}
