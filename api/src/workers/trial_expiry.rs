//! The job that records `TrialEnded` for tenants whose trial ran out
//! without a subscription (the guard and the billing answer treat it as
//! ended already, before it runs).

use tenantry_domain::billing::{Billing, BillingCommand};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::state::AppState;

pub fn start(state: AppState, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(e) = end_due(&state).await {
                tracing::error!(error = %e.message, "trial expiry job failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(state.config.invitation_expiry_scan) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                return;
            }
        }
    })
}

async fn end_due(state: &AppState) -> Result<(), crate::error::ApiError> {
    let due = state.reads.billing().trials_due(100, state.now()).await?;
    for tenant_id in due {
        let meta = tenantry_domain::EventMetadata::new(
            tenant_id,
            tenantry_domain::Actor::system("trial-expiry"),
            None,
            state.now(),
        );
        let committed = state
            .store
            .execute::<Billing>(
                tenant_id.into(),
                BillingCommand::EndTrial { now: state.now() },
                &meta,
            )
            .await?;
        state.settle(committed.written.as_ref()).await;
    }
    Ok(())
}
