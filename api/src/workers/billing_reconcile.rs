//! The scheduled billing reconciliation: every
//! `TENANTRY_BILLING_RECONCILE_INTERVAL`, the process that leads the
//! `billing` projection compares Tenantry's billing with Stripe's and keeps
//! the report (`GET /v1/admin/billing/reconciliation`). It reports; it does
//! not repair (`tenantry billing reconcile --fix` does, when an operator
//! decides). Without Stripe configured it does nothing.

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::state::AppState;

pub fn start(state: AppState, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        if state.stripe.is_none() {
            return;
        }
        loop {
            tokio::select! {
                _ = tokio::time::sleep(state.config.billing_reconcile_interval) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                return;
            }
            if !state.projector.is_leader("billing") {
                continue;
            }
            match crate::service::billing_reconcile::reconcile(&state, None, false).await {
                Ok(report) if report.drift() => tracing::warn!(
                    differences = report.differences.len(),
                    "billing reconciliation found drift between Tenantry and Stripe"
                ),
                Ok(_) => tracing::info!("billing reconciliation: Tenantry and Stripe agree"),
                Err(e) => tracing::error!(
                    error = %e.message,
                    cause = e.internal.as_deref().unwrap_or(""),
                    "billing reconciliation failed"
                ),
            }
        }
    })
}
