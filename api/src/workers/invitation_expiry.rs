//! The job that records `InvitationExpired` for pending invitations past
//! their expiry (reads already show them expired before it runs).

use tenantry_domain::tenant::Tenant;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::service::run_as_system;
use crate::state::AppState;

/// Start the job that records `InvitationExpired` for pending invitations
/// past their expiry (they already behave as expired before it runs).
pub fn start(state: AppState, shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    let period = state.config.invitation_expiry_scan;
    super::every(
        state,
        period,
        "the invitation expiry job",
        shutdown,
        |state| async move { expire_due(&state).await },
    )
}

async fn expire_due(state: &AppState) -> Result<(), crate::error::ApiError> {
    let due = state
        .reads
        .invitations()
        .due_for_expiry(100, state.now())
        .await?;
    for (tenant_id, invitation_id) in due {
        let command = tenantry_domain::tenant::TenantCommand::ExpireInvitation {
            invitation_id: invitation_id.into(),
            now: state.now(),
        };
        run_as_system::<Tenant>(
            state,
            "invitation-expiry",
            tenant_id,
            tenant_id.into(),
            command,
        )
        .await?;
    }
    Ok(())
}
