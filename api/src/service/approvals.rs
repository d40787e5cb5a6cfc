//! Approvals' use cases. So far: a tenant's approval policies (which
//! actions need whose approval, in which stages) and what an action no
//! policy covers gets. Read from the tenant's `ApprovalPolicies` aggregate
//! itself: requests are decided on exactly that state.

use tenantry_domain::approval_policy::{ApprovalPolicies, Policy, PolicyCommand, Uncovered};
use tenantry_domain::Actor;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::Context;
use crate::state::AppState;

/// The tenant's policies as the log has them.
pub async fn policies(state: &AppState, tenant_id: Uuid) -> Result<ApprovalPolicies, ApiError> {
    let (policies, _) = state
        .store
        .load::<ApprovalPolicies>(tenant_id.into())
        .await
        .map_err(ApiError::from)?;
    Ok(policies)
}

async fn run(
    state: &AppState,
    ctx: &Context,
    actor: Actor,
    tenant_id: Uuid,
    command: PolicyCommand,
) -> Result<ApprovalPolicies, ApiError> {
    let meta = ctx.metadata(tenant_id, actor);
    state
        .store
        .execute::<ApprovalPolicies>(tenant_id.into(), command, &meta)
        .await
        .map_err(ApiError::from)?;
    policies(state, tenant_id).await
}

/// Define a policy, or replace the rules of the one of that name.
pub async fn define(
    state: &AppState,
    ctx: &Context,
    actor: Actor,
    tenant_id: Uuid,
    policy: Policy,
) -> Result<ApprovalPolicies, ApiError> {
    run(
        state,
        ctx,
        actor,
        tenant_id,
        PolicyCommand::Define { policy },
    )
    .await
}

pub async fn remove(
    state: &AppState,
    ctx: &Context,
    actor: Actor,
    tenant_id: Uuid,
    name: String,
) -> Result<(), ApiError> {
    run(state, ctx, actor, tenant_id, PolicyCommand::Remove { name })
        .await
        .map(|_| ())
}

pub async fn set_uncovered(
    state: &AppState,
    ctx: &Context,
    actor: Actor,
    tenant_id: Uuid,
    uncovered: Uncovered,
) -> Result<ApprovalPolicies, ApiError> {
    run(
        state,
        ctx,
        actor,
        tenant_id,
        PolicyCommand::SetUncovered { uncovered },
    )
    .await
}

/// The roles a stage may name: the built-in ones and the tenant's own.
pub async fn role_exists(state: &AppState, tenant_id: Uuid, role: &str) -> Result<bool, ApiError> {
    if tenantry_domain::access::BuiltinRole::parse(role).is_some() {
        return Ok(true);
    }
    let (tenant, _) = state
        .store
        .load::<tenantry_domain::tenant::Tenant>(tenant_id.into())
        .await
        .map_err(ApiError::from)?;
    Ok(tenant.roles.keys().any(|r| r.as_str() == role))
}
