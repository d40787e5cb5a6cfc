//! The reservation sweeper: holds whose holder died (never settled by
//! usage nor released) are given back once they expire, so a crashed agent
//! cannot lock its tenant's budget. The process leading the `usage`
//! projection sweeps every `TENANTRY_RESERVATION_SWEEP`; a reservation
//! also expires what is due on its own ledger before deciding.

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::state::AppState;

pub fn start(state: AppState, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(state.config.reservation_sweep) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                return;
            }
            if !state.projector.is_leader("usage") {
                continue;
            }
            if let Err(e) = crate::service::usage::sweep(&state).await {
                tracing::error!(error = %e.message, "the reservation sweep failed");
            }
        }
    })
}
