//! Approvals' use cases: a tenant's approval policies (which actions need
//! whose approval, in which stages, and what an action no policy covers
//! gets), read from the tenant's `ApprovalPolicies` aggregate itself so
//! requests are decided on exactly that state; requests, decisions,
//! comments, cancels and the long poll on one request's aggregate; lists
//! from the `approvals` read model; the expiry job's work.

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

use tenantry_domain::approval::{Approval, ApprovalCommand, Decision, Requester};
use tenantry_domain::ApprovalId;

use tenantry_projections::approvals::{ApprovalFilter, ApprovalRow};

use crate::guard::Principal;

pub fn not_found() -> ApiError {
    ApiError::not_found("approval_not_found", "no such approval request")
}

/// The id of the tenant's request that the client calls `client_id`.
pub fn approval_id(tenant_id: Uuid, client_id: &str) -> ApprovalId {
    Uuid::new_v5(&tenant_id, format!("approval:{client_id}").as_bytes()).into()
}

/// Who is asking: the member, or the key and the member who created it.
async fn requester(
    state: &AppState,
    tenant_id: Uuid,
    principal: &Principal,
) -> Result<Requester, ApiError> {
    match principal {
        Principal::User(c) => Ok(Requester::Member { user_id: c.user_id }),
        Principal::ApiKey(k) => {
            let row = state.store.api_keys().get(tenant_id, k.key_id).await?;
            let created_by = row
                .and_then(|r| serde_json::from_value::<Actor>(r.created_by).ok())
                .and_then(|a| match a {
                    Actor::User { id } => Some(id),
                    _ => None,
                });
            Ok(Requester::ApiKey {
                key_id: k.key_id,
                created_by,
            })
        }
    }
}

/// What a request asks.
pub struct Ask {
    pub client_id: String,
    pub action: String,
    pub summary: String,
    pub payload: serde_json::Value,
    pub agent_id: Option<Uuid>,
}

/// A new request under the policy covering its action (the same id and
/// content again: the request as it is).
pub async fn request(
    state: &AppState,
    ctx: &Context,
    principal: &Principal,
    tenant_id: Uuid,
    ask: Ask,
) -> Result<(Approval, i64), ApiError> {
    let covered = policies(state, tenant_id)
        .await?
        .covering(&ask.action)
        .ok_or_else(|| {
            ApiError::unprocessable(
                "action_not_covered",
                "no approval policy covers this action and the tenant refuses uncovered actions",
            )
        })?;
    let id = approval_id(tenant_id, &ask.client_id);
    let now = state.now();
    let command = ApprovalCommand::Request {
        approval_id: id,
        tenant_id: tenant_id.into(),
        action: ask.action,
        summary: ask.summary,
        payload: ask.payload,
        agent_id: ask.agent_id,
        requester: requester(state, tenant_id, principal).await?,
        policy: covered.policy,
        stages: covered.stages,
        expires_at: covered
            .expires_in_secs
            .map(|s| now + chrono::Duration::seconds(i64::from(s))),
    };
    run_on(state, ctx, principal, tenant_id, id, command).await
}

/// The tenant's request, as the log has it.
pub async fn get(state: &AppState, tenant_id: Uuid, id: ApprovalId) -> Result<Approval, ApiError> {
    versioned(state, tenant_id, id).await.map(|(a, _)| a)
}

/// The request and its version (the number of its events).
pub async fn versioned(
    state: &AppState,
    tenant_id: Uuid,
    id: ApprovalId,
) -> Result<(Approval, i64), ApiError> {
    let (approval, version) = state
        .store
        .load::<Approval>(id)
        .await
        .map_err(ApiError::from)?;
    match approval.tenant_id {
        Some(t) if t == tenant_id => Ok((approval, version)),
        _ => Err(not_found()),
    }
}

/// The request once it is past version `after` (or, without it, changes
/// from how it is now), or once it reads expired, or as it is when `wait`
/// runs out: a long poll.
pub async fn wait_for_change(
    state: &AppState,
    tenant_id: Uuid,
    id: ApprovalId,
    after: Option<i64>,
    wait: std::time::Duration,
) -> Result<(Approval, i64), ApiError> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut wake = state.projector.wake();
    let (first, first_version) = versioned(state, tenant_id, id).await?;
    let after = after.unwrap_or(first_version);
    let first_status = first.status_at(state.now());
    let mut now = (first, first_version);
    loop {
        if now.1 > after || now.0.status_at(state.now()) != first_status {
            return Ok(now);
        }
        // Only a request still pending has an expiry ahead to wait for.
        let expires = now
            .0
            .expires_at
            .and_then(|at| (at - state.now()).to_std().ok());
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return Ok(now),
            _ = wake.changed() => {}
            // A pending request reads `expired` the moment its expiry passes.
            _ = tokio::time::sleep(expires.unwrap_or(wait)), if expires.is_some() => {}
        }
        now = versioned(state, tenant_id, id).await?;
    }
}

/// A member's decision, at the stage they saw (`at_stage`) or the current one.
pub struct Verdict {
    pub decision: Decision,
    pub comment: Option<String>,
    pub at_stage: Option<usize>,
}

/// The role `user_id` decides with in the tenant (a platform admin who is
/// no member decides as `admin`).
async fn deciding_role(
    state: &AppState,
    tenant_id: Uuid,
    user_id: Uuid,
) -> Result<String, ApiError> {
    let (tenant, _) = state
        .store
        .load::<tenantry_domain::tenant::Tenant>(tenant_id.into())
        .await
        .map_err(ApiError::from)?;
    Ok(tenant
        .members
        .get(&user_id)
        .map_or("admin", |r| r.as_str())
        .to_string())
}

/// What a list asks for.
pub struct ListQuery {
    pub status: Option<&'static str>,
    pub action: Option<String>,
    pub agent_id: Option<Uuid>,
    /// Only what the caller may decide now.
    pub waiting_for_me: bool,
    pub before_seq: Option<i64>,
    pub limit: i64,
}

/// A page of the tenant's requests, newest first, and where the next
/// page starts. "Waiting for me" is a person's question: an API key
/// decides nothing; a member without `approvals.decide` has nothing
/// waiting.
pub async fn list(
    state: &AppState,
    scope: &crate::guard::TenantScope,
    query: ListQuery,
) -> Result<(Vec<ApprovalRow>, Option<i64>), ApiError> {
    let decider = if query.waiting_for_me {
        let user_id = person(&scope.principal, "decisions")?;
        if !scope.has(tenantry_domain::access::Permission::ApprovalsDecide) {
            return Ok((Vec::new(), None));
        }
        Some((
            user_id,
            deciding_role(state, scope.tenant_id, user_id).await?,
        ))
    } else {
        None
    };
    let filter = ApprovalFilter {
        status: query.status,
        action: query.action.as_deref(),
        agent_id: query.agent_id,
        decidable_by: decider.as_ref().map(|(u, r)| (*u, r.as_str())),
    };
    Ok(state
        .reads
        .approvals()
        .list(
            scope.tenant_id,
            &filter,
            query.before_seq,
            query.limit,
            state.now(),
        )
        .await?)
}

/// Record `ApprovalExpired` for pending requests past their expiry (reads
/// show them expired already); the job's work.
pub async fn expire_due(state: &AppState) -> Result<(), ApiError> {
    let due = state
        .reads
        .approvals()
        .due_for_expiry(100, state.now())
        .await?;
    for (tenant_id, id) in due {
        let command = ApprovalCommand::Expire { now: state.now() };
        super::run_as_system::<Approval>(state, "approval-expiry", tenant_id, id.into(), command)
            .await?;
    }
    Ok(())
}

/// A member's decision on the request.
pub async fn decide(
    state: &AppState,
    ctx: &Context,
    principal: &Principal,
    tenant_id: Uuid,
    id: ApprovalId,
    verdict: Verdict,
) -> Result<(Approval, i64), ApiError> {
    let by = person(principal, "decisions")?;
    get(state, tenant_id, id).await?;
    let role = deciding_role(state, tenant_id, by).await?;
    let command = ApprovalCommand::Decide {
        by,
        role,
        decision: verdict.decision,
        comment: verdict.comment,
        at_stage: verdict.at_stage,
        now: state.now(),
    };
    run_on(state, ctx, principal, tenant_id, id, command).await
}

/// The requester withdraws a pending request.
pub async fn cancel(
    state: &AppState,
    ctx: &Context,
    principal: &Principal,
    tenant_id: Uuid,
    id: ApprovalId,
) -> Result<(Approval, i64), ApiError> {
    get(state, tenant_id, id).await?;
    let command = ApprovalCommand::Cancel {
        by: requester(state, tenant_id, principal).await?,
        now: state.now(),
    };
    run_on(state, ctx, principal, tenant_id, id, command).await
}

/// A comment without a decision, by a person who may read the request.
pub async fn comment(
    state: &AppState,
    ctx: &Context,
    principal: &Principal,
    tenant_id: Uuid,
    id: ApprovalId,
    comment: String,
) -> Result<(Approval, i64), ApiError> {
    let by = person(principal, "comments")?;
    get(state, tenant_id, id).await?;
    let command = ApprovalCommand::Comment { by, comment };
    run_on(state, ctx, principal, tenant_id, id, command).await
}

/// Run a command on the tenant's request and answer it as it is after.
async fn run_on(
    state: &AppState,
    ctx: &Context,
    principal: &Principal,
    tenant_id: Uuid,
    id: ApprovalId,
    command: ApprovalCommand,
) -> Result<(Approval, i64), ApiError> {
    let meta = ctx.metadata(tenant_id, principal.actor());
    let committed = state
        .store
        .execute::<Approval>(id, command, &meta)
        .await
        .map_err(ApiError::from)?;
    // Lists read the projection: the caller's next list shows this.
    state.settle(committed.written.as_ref()).await;
    versioned(state, tenant_id, id).await
}

/// Only a person's session may do this.
fn person(principal: &Principal, what: &str) -> Result<Uuid, ApiError> {
    match principal {
        Principal::User(caller) => Ok(caller.user_id),
        Principal::ApiKey(_) => Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "user_token_required",
            format!("{what} are people's, not API keys'"),
        )),
    }
}
