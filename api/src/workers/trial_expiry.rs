//! The job that records `TrialEnded` for tenants whose trial ran out
//! without a subscription (the guard and the billing answer treat it as
//! ended already, before it runs).

use tenantry_domain::billing::{Billing, BillingCommand};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::service::run_as_system;
use crate::state::AppState;

pub fn start(state: AppState, shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    let period = state.config.invitation_expiry_scan;
    super::every(
        state,
        period,
        "the trial expiry job",
        shutdown,
        |state| async move { end_due(&state).await },
    )
}

async fn end_due(state: &AppState) -> Result<(), crate::error::ApiError> {
    let due = state.reads.billing().trials_due(100, state.now()).await?;
    for tenant_id in due {
        let command = BillingCommand::EndTrial { now: state.now() };
        run_as_system::<Billing>(state, "trial-expiry", tenant_id, tenant_id.into(), command)
            .await?;
    }
    Ok(())
}
