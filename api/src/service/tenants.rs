//! Running tenant commands, and the checks tenant routes share.

use tenantry_domain::tenant::{Tenant, TenantCommand};
use tenantry_domain::user::User;
use tenantry_domain::values::ValueError;
use tenantry_domain::Actor;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::Context;
use crate::state::AppState;
use crate::store::Committed;

/// Name the tenant on the request's span.
pub fn record_tenant(id: Uuid) {
    tracing::Span::current().record("tenant_id", id.to_string());
}

/// Refuse (422, on `field`) a user id that names no user, an erased one or a
/// deactivated one.
pub async fn check_active_user(state: &AppState, field: &str, id: Uuid) -> Result<(), ApiError> {
    let (user, _) = state
        .store
        .load::<User>(id.into())
        .await
        .map_err(ApiError::from)?;
    let problem = if user.id.is_none() {
        Some(("user_not_found", "no user has this id"))
    } else if user.status == tenantry_domain::user::UserStatus::Erased {
        Some(("user_erased", "this user was erased"))
    } else if !user.is_active() {
        Some(("user_deactivated", "this user is deactivated"))
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some((code, message)) => Err(ApiError::invalid_field(
            field,
            ValueError::new(code, message),
        )),
    }
}

/// Run a tenant command as `actor`, then wait until the projections show it.
pub async fn run_tenant_command(
    state: &AppState,
    ctx: &Context,
    actor: Actor,
    id: Uuid,
    command: TenantCommand,
) -> Result<Committed<Tenant>, ApiError> {
    record_tenant(id);
    let meta = ctx.metadata(id, actor);
    let committed = state
        .store
        .execute::<Tenant>(id.into(), command, &meta)
        .await?;
    state.settle(committed.written.as_ref()).await;
    Ok(committed)
}
