//! Agents' use cases: create within the plan's `max_agents` (race-free by
//! slot claims), change, pause, resume, archive.

use tenantry_domain::agent::{Agent, AgentCommand, AgentSettings};
use tenantry_domain::billing::Billing;
use tenantry_domain::{Actor, AgentId, ClaimScope};
use tenantry_projections::agents::AgentRow;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::Context;
use crate::state::AppState;
use crate::store::CommandError;

pub fn not_found() -> ApiError {
    ApiError::not_found("agent_not_found", "no such agent")
}

fn quota_reached(max: u32) -> ApiError {
    ApiError::conflict(
        "agent_quota_reached",
        format!("the tenant's plan allows {max} agents that are not archived"),
    )
    .with_details(serde_json::json!({ "max_agents": max }))
}

/// How many agents the tenant's plan allows, if it limits them.
async fn max_agents(state: &AppState, tenant_id: Uuid) -> Result<Option<u32>, ApiError> {
    let (billing, _) = state
        .store
        .load::<Billing>(tenant_id.into())
        .await
        .map_err(ApiError::from)?;
    Ok(billing.terms.and_then(|t| t.entitlements.max_agents))
}

/// The lowest slot nobody holds, if the limit leaves one.
fn free_slot(taken: &[u32], max: Option<u32>) -> Option<u32> {
    if max.is_some_and(|m| taken.len() >= m as usize) {
        return None;
    }
    let slot = (1..).find(|n| !taken.contains(n))?;
    match max {
        Some(m) if slot > m => None,
        _ => Some(slot),
    }
}

async fn row(state: &AppState, tenant_id: Uuid, id: Uuid) -> Result<AgentRow, ApiError> {
    state
        .reads
        .agents()
        .get(tenant_id, id)
        .await?
        .ok_or_else(|| ApiError::internal("the agent was written but is not shown"))
}

/// A new agent, holding a free slot of the tenant's. Two creates racing
/// for the last slot: one claim commits, the other looks again and finds
/// none (409 `agent_quota_reached`).
pub async fn create(
    state: &AppState,
    ctx: &Context,
    actor: Actor,
    tenant_id: Uuid,
    settings: AgentSettings,
) -> Result<AgentRow, ApiError> {
    let max = max_agents(state, tenant_id).await?;
    let agent_id = AgentId::generate();
    let meta = ctx.metadata(tenant_id, actor);
    for _ in 0..16 {
        let taken = state.store.agent_slots(tenant_id).await?;
        let Some(slot) = free_slot(&taken, max) else {
            return Err(quota_reached(max.unwrap_or(0)));
        };
        let command = AgentCommand::Create {
            agent_id,
            tenant_id: tenant_id.into(),
            slot,
            settings: settings.clone(),
        };
        match state.store.execute::<Agent>(agent_id, command, &meta).await {
            Ok(committed) => {
                state.settle(committed.written.as_ref()).await;
                return row(state, tenant_id, agent_id.as_uuid()).await;
            }
            // Another create took this slot in the meantime: look again.
            Err(CommandError::Claimed(ClaimScope::AgentSlot)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::concurrent_update())
}

/// Run a command on one of the tenant's agents (an agent of another tenant
/// is not found).
pub async fn run(
    state: &AppState,
    ctx: &Context,
    actor: Actor,
    tenant_id: Uuid,
    agent_id: Uuid,
    command: AgentCommand,
) -> Result<AgentRow, ApiError> {
    let id = AgentId::from(agent_id);
    let (agent, _) = state
        .store
        .load::<Agent>(id)
        .await
        .map_err(ApiError::from)?;
    if agent.tenant_id != Some(tenant_id) {
        return Err(not_found());
    }
    let meta = ctx.metadata(tenant_id, actor);
    let committed = state.store.execute::<Agent>(id, command, &meta).await?;
    state.settle(committed.written.as_ref()).await;
    row(state, tenant_id, agent_id).await
}

#[cfg(test)]
mod tests {
    use super::free_slot;

    #[test]
    fn the_lowest_free_slot_within_the_limit() {
        assert_eq!(free_slot(&[], None), Some(1));
        assert_eq!(free_slot(&[1, 2, 4], None), Some(3));
        assert_eq!(free_slot(&[1, 3], Some(3)), Some(2));
        assert_eq!(free_slot(&[1, 2, 3], Some(3)), None);
        // After a downgrade: more agents than the limit, none may join.
        assert_eq!(free_slot(&[2, 5, 6], Some(3)), None);
        // A free slot above the limit is not one.
        assert_eq!(free_slot(&[1, 2], Some(2)), None);
    }
}
