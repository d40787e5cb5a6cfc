//! Background workers, started by the composition root and stopped with
//! the server: the email outbox ([`email`]), the invitation, trial and
//! approval expiry jobs, the checkpoint job ([`checkpoints`]), the guard cache's follower ([`auth_cache`]), the
//! scheduled billing reconciliation ([`billing_reconcile`]) and the
//! reservation sweeper ([`reservation_sweeper`]).

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::ApiError;
use crate::state::AppState;

pub mod approval_expiry;
pub mod auth_cache;
pub mod billing_reconcile;
pub mod checkpoints;
pub mod email;
pub mod invitation_expiry;
pub mod reservation_sweeper;
pub mod trial_expiry;

/// Run `job` at once and then every `period` until shutdown; a failed run
/// is logged as `what` failing and the next one tries again.
pub fn every<F, Fut>(
    state: AppState,
    period: Duration,
    what: &'static str,
    mut shutdown: watch::Receiver<bool>,
    job: F,
) -> JoinHandle<()>
where
    F: Fn(AppState) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), ApiError>> + Send,
{
    tokio::spawn(async move {
        loop {
            if let Err(e) = job(state.clone()).await {
                tracing::error!(error = %e.message, "{what} failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                return;
            }
        }
    })
}
