//! Approvals over HTTP: the tenant's approval policies, with
//! `approvals.manage` (which actions, exactly or by a prefix ending in a
//! dot, need whose approval in which stages, and whether an action no
//! policy covers takes the default policy or is refused); requests
//! (`approvals.request`), decisions (`approvals.decide`), and reading,
//! listing and commenting for whoever holds either.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tenantry_domain::access::Permission;
use tenantry_domain::approval::{ApprovalStatus, Stage};
use tenantry_domain::approval_policy::{ActionPattern, ApprovalPolicies, Policy, Uncovered};
use tenantry_domain::values::ValueError;

use crate::error::{ApiError, Validation};
use crate::extract::{
    number_cursor, status_filter, ApprovalPath, Context, Json, PageParams, PolicyPath, Query,
};
use crate::guard::{Access, TenantScope};
use crate::routes::Route;
use crate::service::approvals;
use crate::state::AppState;

pub fn routes() -> Vec<Route> {
    use Access::Tenant as In;
    use Permission::ApprovalsManage as Manage;
    const POLICIES: &str = "/v1/tenants/{tid}/approval-policies";
    const POLICY: &str = "/v1/tenants/{tid}/approval-policies/{policy}";
    vec![
        Route::get(POLICIES, In(Manage), get_policies)
            .summary("The tenant's approval policies, and what an action no policy covers gets")
            .answers::<PoliciesOut>(StatusCode::OK),
        Route::patch(POLICIES, In(Manage), patch_policies)
            .summary("Choose what an action no policy covers gets: the default policy (one approval) or a refusal")
            .body::<UncoveredIn>()
            .answers::<PoliciesOut>(StatusCode::OK),
        Route::put(POLICY, In(Manage), put_policy)
            .summary("Define an approval policy, or replace its rules (requests already made keep theirs)")
            .body::<PolicyIn>()
            .answers::<PolicyOut>(StatusCode::OK)
            .errors(&["action_pattern_taken", "approval_policy_not_found"]),
        Route::delete(POLICY, In(Manage), delete_policy)
            .summary("Remove an approval policy (requests already made keep their stages)")
            .no_content()
            .errors(&["approval_policy_not_found"]),
        Route::post(REQUESTS, In(Permission::ApprovalsRequest), post_request)
            .summary("Ask for approval of an action (the same id and content again: the request as it is)")
            .body::<RequestIn>()
            .answers::<ApprovalOut>(StatusCode::CREATED)
            .errors(&["action_not_covered", "approval_id_conflict"]),
        Route::get(REQUESTS, Access::TenantAny(READERS), list_requests)
            .summary("The tenant's requests, newest first; by status, action (exact or a prefix ending in a dot), agent, or only what the caller may decide now")
            .query::<ListParams>()
            .answers::<ApprovalListOut>(StatusCode::OK)
            .errors(&[
                "invalid_limit",
                "invalid_cursor",
                "invalid_status",
                "user_token_required",
            ]),
        Route::get(REQUEST, Access::TenantAny(READERS), get_request)
            .summary("One request; with wait=N (1 to 30 s) the answer waits until it changes")
            .query::<WaitParams>()
            .answers::<ApprovalOut>(StatusCode::OK)
            .errors(&["approval_not_found"]),
        Route::post(
            "/v1/tenants/{tid}/approvals/{approval_id}/decisions",
            In(Permission::ApprovalsDecide),
            post_decision,
        )
        .summary("Approve or reject, at the stage the request is at (or the stage given)")
        .body::<DecisionIn>()
        .answers::<ApprovalOut>(StatusCode::OK)
        .errors(&[
            "approval_not_found",
            "approval_not_pending",
            "approval_expired",
            "self_approval",
            "already_decided",
            "stage_not_reached",
            "not_an_approver_at_stage",
            "user_token_required",
        ]),
        Route::post(
            "/v1/tenants/{tid}/approvals/{approval_id}/cancel",
            In(Permission::ApprovalsRequest),
            post_cancel,
        )
        .summary("Withdraw a pending request (its requester only)")
        .answers::<ApprovalOut>(StatusCode::OK)
        .errors(&[
            "approval_not_found",
            "approval_not_pending",
            "approval_expired",
            "not_the_requester",
        ]),
        Route::post(
            "/v1/tenants/{tid}/approvals/{approval_id}/comments",
            Access::TenantAny(READERS),
            post_comment,
        )
        .summary("Comment on a request without deciding (a person's session)")
        .body::<CommentIn>()
        .answers::<ApprovalOut>(StatusCode::OK)
        .errors(&["approval_not_found", "user_token_required"]),
    ]
}

const REQUESTS: &str = "/v1/tenants/{tid}/approvals";
/// Who reads requests: whoever may ask for approval or decide.
const READERS: &[Permission] = &[Permission::ApprovalsRequest, Permission::ApprovalsDecide];
const REQUEST: &str = "/v1/tenants/{tid}/approvals/{approval_id}";

/// The largest payload a request carries (shown to approvers).
const MAX_PAYLOAD_BYTES: usize = 16 * 1024;

/// A request for approval.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct RequestIn {
    /// The client's id for the request (its idempotency key): 1 to 128 of
    /// letters, digits and `._:-`.
    #[schema(min_length = 1, max_length = 128)]
    id: String,
    /// What is to be done, as a policy names it (`payments.refund`).
    #[schema(min_length = 1, max_length = 100)]
    action: String,
    /// One line for the approvers.
    #[schema(min_length = 1, max_length = 500)]
    summary: String,
    /// What the approvers see of the action (at most 16 KiB of JSON).
    #[serde(default)]
    payload: serde_json::Value,
    agent_id: Option<uuid::Uuid>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WaitParams {
    /// Seconds to wait for a change (1 to 30); absent: answer at once.
    #[param(minimum = 1, maximum = 30)]
    wait: Option<u64>,
    /// With `wait`: answer once the request is past this `version` (the
    /// one last read), so a change between two reads is never missed.
    #[param(minimum = 0)]
    after_version: Option<i64>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct DecisionIn {
    /// `approve` or `reject`.
    decision: String,
    #[schema(max_length = 2000)]
    comment: Option<String>,
    /// The stage the approver decided at (from the request they read); a
    /// stage already left records the decision there, counting for nothing.
    stage: Option<usize>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DecisionOut {
    by: uuid::Uuid,
    stage: usize,
    /// `approve` or `reject`.
    decision: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ApprovalOut {
    id: uuid::Uuid,
    action: String,
    summary: String,
    payload: serde_json::Value,
    /// `pending`, `approved`, `rejected`, `expired` or `canceled`.
    status: String,
    /// The stage waiting for decisions (from 0).
    stage: usize,
    stages: Vec<StageIo>,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
    decisions: Vec<DecisionOut>,
    /// How many events the request has: `after_version` for a long poll.
    version: i64,
}

fn approval_out(
    (a, version): &(tenantry_domain::approval::Approval, i64),
    now: chrono::DateTime<chrono::Utc>,
) -> ApprovalOut {
    use tenantry_domain::approval::Decision;
    ApprovalOut {
        id: a.id.unwrap_or_default(),
        action: a.action.clone(),
        summary: a.summary.clone(),
        payload: a.payload.clone(),
        status: a.status_at(now).as_str().to_string(),
        stage: a.stage,
        stages: a.stages.iter().map(StageIo::from).collect(),
        expires_at: a.expires_at,
        decisions: a
            .decided
            .iter()
            .map(|(by, (stage, d))| DecisionOut {
                by: *by,
                stage: *stage,
                decision: match d {
                    Decision::Approve => "approve",
                    Decision::Reject => "reject",
                }
                .to_string(),
            })
            .collect(),
        version: *version,
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    cursor: Option<String>,
    /// `pending`, `approved`, `rejected`, `expired` or `canceled`.
    status: Option<String>,
    /// An action (`payments.refund`), or a prefix ending in a dot.
    action: Option<String>,
    agent_id: Option<uuid::Uuid>,
    /// `true`: only the pending requests the caller (a person) may decide
    /// now: at a stage open to their role, not asked by them nor by a key
    /// they created, not decided by them yet.
    waiting_for_me: Option<bool>,
}

/// A request as lists show it (its payload and decisions: `GET` it).
#[derive(Serialize, utoipa::ToSchema)]
pub struct ApprovalItemOut {
    id: uuid::Uuid,
    action: String,
    summary: String,
    agent_id: Option<uuid::Uuid>,
    /// `{"type": "member", "user_id"}` or `{"type": "api_key", "key_id", "created_by"}`.
    requester: serde_json::Value,
    /// The policy it was asked under (`default`: the tenant's default).
    policy: String,
    /// `pending`, `approved`, `rejected`, `expired` or `canceled`.
    status: String,
    /// The stage waiting for decisions (from 0), of `stages`.
    stage: i32,
    stages: i32,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
    requested_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ApprovalListOut {
    data: Vec<ApprovalItemOut>,
    /// A cursor for the next page; absent on the last.
    next_cursor: Option<String>,
}

const STATUSES: [ApprovalStatus; 5] = [
    ApprovalStatus::Pending,
    ApprovalStatus::Approved,
    ApprovalStatus::Rejected,
    ApprovalStatus::Expired,
    ApprovalStatus::Canceled,
];

async fn list_requests(
    State(state): State<AppState>,
    scope: TenantScope,
    Query(params): Query<ListParams>,
) -> Result<axum::Json<ApprovalListOut>, ApiError> {
    let status = status_filter(params.status.as_deref(), &STATUSES, ApprovalStatus::as_str)?;
    let action = params
        .action
        .as_deref()
        .map(ActionPattern::parse)
        .transpose()
        .map_err(|e| ApiError::invalid_field("action", e))?;
    let paging = PageParams::new(params.limit, params.cursor);
    let (rows, next) = approvals::list(
        &state,
        &scope,
        approvals::ListQuery {
            status: status.map(ApprovalStatus::as_str),
            action: action.map(|a| a.as_str().to_string()),
            agent_id: params.agent_id,
            waiting_for_me: params.waiting_for_me.unwrap_or(false),
            before_seq: paging.after_number()?,
            limit: paging.limit()?,
        },
    )
    .await?;
    Ok(axum::Json(ApprovalListOut {
        data: rows
            .into_iter()
            .map(|r| ApprovalItemOut {
                id: r.id,
                action: r.action,
                summary: r.summary,
                agent_id: r.agent_id,
                requester: r.requester,
                policy: r.policy,
                status: r.status,
                stage: r.stage,
                stages: r.stages,
                expires_at: r.expires_at,
                requested_at: r.requested_at,
                updated_at: r.updated_at,
            })
            .collect(),
        next_cursor: next.map(number_cursor),
    }))
}

fn client_id(raw: &str) -> Result<String, ValueError> {
    if (1..=128).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
    {
        Ok(raw.to_string())
    } else {
        Err(ValueError::new(
            "invalid_request_id",
            "an id is 1 to 128 of letters, digits and . _ : -",
        ))
    }
}

async fn post_request(
    State(state): State<AppState>,
    ctx: Context,
    scope: TenantScope,
    Json(body): Json<RequestIn>,
) -> Result<(StatusCode, axum::Json<ApprovalOut>), ApiError> {
    let mut v = Validation::default();
    let id = v.check("id", client_id(&body.id));
    let action = v.check("action", ActionPattern::parse(&body.action));
    if action.as_ref().is_some_and(|a| a.as_str().ends_with('.')) {
        v.check::<()>(
            "action",
            Err(ValueError::new("invalid_action", "an action, not a prefix")),
        );
    }
    let summary = v
        .check(
            "summary",
            tenantry_domain::values::note(&body.summary, 1, 500),
        )
        .unwrap_or_default();
    if body.payload.to_string().len() > MAX_PAYLOAD_BYTES {
        v.check::<()>(
            "payload",
            Err(ValueError::new(
                "payload_too_large",
                "at most 16 KiB of JSON",
            )),
        );
    }
    v.finish()?;
    let (Some(id), Some(action)) = (id, action) else {
        return Err(ApiError::internal("validation passed without an id"));
    };
    let approval = approvals::request(
        &state,
        &ctx,
        &scope.principal,
        scope.tenant_id,
        approvals::Ask {
            client_id: id,
            action: action.as_str().to_string(),
            summary,
            payload: body.payload,
            agent_id: body.agent_id,
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(approval_out(&approval, state.now())),
    ))
}

async fn get_request(
    State(state): State<AppState>,
    scope: TenantScope,
    ApprovalPath(id): ApprovalPath,
    Query(params): Query<WaitParams>,
) -> Result<axum::Json<ApprovalOut>, ApiError> {
    let id = id.into();
    let approval = match params.wait {
        None => approvals::versioned(&state, scope.tenant_id, id).await?,
        Some(secs) if (1..=30).contains(&secs) => {
            approvals::wait_for_change(
                &state,
                scope.tenant_id,
                id,
                params.after_version,
                std::time::Duration::from_secs(secs),
            )
            .await?
        }
        Some(_) => {
            return Err(ApiError::invalid_field(
                "wait",
                ValueError::new("invalid_wait", "1 to 30 seconds"),
            ));
        }
    };
    Ok(axum::Json(approval_out(&approval, state.now())))
}

async fn post_decision(
    State(state): State<AppState>,
    ctx: Context,
    scope: TenantScope,
    ApprovalPath(id): ApprovalPath,
    Json(body): Json<DecisionIn>,
) -> Result<axum::Json<ApprovalOut>, ApiError> {
    use tenantry_domain::approval::Decision;
    let mut v = Validation::default();
    let decision = match body.decision.as_str() {
        "approve" => Some(Decision::Approve),
        "reject" => Some(Decision::Reject),
        _ => {
            v.check::<()>(
                "decision",
                Err(ValueError::new("invalid_decision", "`approve` or `reject`")),
            );
            None
        }
    };
    let comment = body
        .comment
        .as_deref()
        .and_then(|c| v.check("comment", tenantry_domain::values::note(c, 0, 2000)));
    v.finish()?;
    let decision =
        decision.ok_or_else(|| ApiError::internal("validation passed without a decision"))?;
    let approval = approvals::decide(
        &state,
        &ctx,
        &scope.principal,
        scope.tenant_id,
        id.into(),
        approvals::Verdict {
            decision,
            comment: comment.filter(|c| !c.is_empty()),
            at_stage: body.stage,
        },
    )
    .await?;
    Ok(axum::Json(approval_out(&approval, state.now())))
}

async fn post_cancel(
    State(state): State<AppState>,
    ctx: Context,
    scope: TenantScope,
    ApprovalPath(id): ApprovalPath,
) -> Result<axum::Json<ApprovalOut>, ApiError> {
    let approval =
        approvals::cancel(&state, &ctx, &scope.principal, scope.tenant_id, id.into()).await?;
    Ok(axum::Json(approval_out(&approval, state.now())))
}

/// At most this many action patterns in a policy, and stages.
const MAX_ACTIONS: usize = 50;
const MAX_STAGES: usize = 10;
/// The longest a request may wait for its decisions: 30 days.
const MAX_EXPIRY_SECS: u32 = 30 * 24 * 3600;

/// One stage of a policy.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
pub struct StageIo {
    /// Approvals the stage needs: 1 to 20.
    #[schema(minimum = 1, maximum = 20)]
    approvals: u32,
    /// Only members of this role decide at the stage (built-in or the
    /// tenant's own); absent: any member holding `approvals.decide`.
    role: Option<String>,
    /// A rejection at this stage ends the request (default); false: it is
    /// recorded and the stage still waits for its approvals.
    #[serde(default = "yes")]
    rejection_ends: bool,
}

impl From<&Stage> for StageIo {
    fn from(s: &Stage) -> Self {
        Self {
            approvals: s.approvals,
            role: s.role.clone(),
            rejection_ends: s.rejection_ends,
        }
    }
}

fn yes() -> bool {
    true
}

/// An approval policy's rules.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct PolicyIn {
    /// Actions it covers: exact (`payments.refund`) or a prefix ending in
    /// a dot (`payments.`); 1 to 50.
    #[schema(min_items = 1, max_items = 50)]
    actions: Vec<String>,
    /// In order; 1 to 10.
    #[schema(min_items = 1, max_items = 10)]
    stages: Vec<StageIo>,
    /// How long a request under it waits for its decisions, 60 s to 30
    /// days; absent: until decided or canceled.
    #[schema(minimum = 60, maximum = 2592000)]
    expires_in_secs: Option<u32>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PolicyOut {
    name: String,
    actions: Vec<String>,
    stages: Vec<StageIo>,
    expires_in_secs: Option<u32>,
}

impl From<&Policy> for PolicyOut {
    fn from(p: &Policy) -> Self {
        Self {
            name: p.name.clone(),
            actions: p.actions.iter().map(|a| a.as_str().to_string()).collect(),
            stages: p.stages.iter().map(StageIo::from).collect(),
            expires_in_secs: p.expires_in_secs,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PoliciesOut {
    /// `default_policy` or `refuse`.
    uncovered: String,
    policies: Vec<PolicyOut>,
}

impl From<&ApprovalPolicies> for PoliciesOut {
    fn from(p: &ApprovalPolicies) -> Self {
        Self {
            uncovered: uncovered_str(p.uncovered).to_string(),
            policies: p.policies.values().map(PolicyOut::from).collect(),
        }
    }
}

fn uncovered_str(u: Uncovered) -> &'static str {
    match u {
        Uncovered::DefaultPolicy => "default_policy",
        Uncovered::Refuse => "refuse",
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct UncoveredIn {
    /// `default_policy` (one stage, one approval by any member who may
    /// decide) or `refuse` (422 to a request no policy covers).
    uncovered: String,
}

/// A policy's name: 2 to 40 of `a-z0-9_-`, starting with a letter
/// (`default` is the default policy's).
fn policy_name(raw: &str) -> Result<String, ValueError> {
    let ok = (2..=40).contains(&raw.len())
        && raw.starts_with(|c: char| c.is_ascii_lowercase())
        && raw
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        && raw != "default";
    if ok {
        Ok(raw.to_string())
    } else {
        Err(ValueError::new(
            "invalid_policy_name",
            "a policy name is 2 to 40 of a-z, 0-9, _ and -, starting with a letter, and not `default`",
        ))
    }
}

impl PolicyIn {
    async fn parse(
        self,
        state: &AppState,
        tenant_id: uuid::Uuid,
        raw_name: &str,
    ) -> Result<Policy, ApiError> {
        let mut v = Validation::default();
        let name = v.check("name", policy_name(raw_name));
        let count = |field: &str, n: usize, max: usize, v: &mut Validation| {
            if n == 0 || n > max {
                v.check::<()>(
                    field,
                    Err(ValueError::new(
                        "invalid_length",
                        format!("1 to {max} entries"),
                    )),
                );
            }
        };
        count("actions", self.actions.len(), MAX_ACTIONS, &mut v);
        count("stages", self.stages.len(), MAX_STAGES, &mut v);
        let mut actions = Vec::new();
        for (i, raw) in self.actions.iter().enumerate() {
            if let Some(a) = v.check(&format!("actions[{i}]"), ActionPattern::parse(raw)) {
                if !actions.contains(&a) {
                    actions.push(a);
                }
            }
        }
        let mut stages = Vec::new();
        for (i, s) in self.stages.into_iter().enumerate() {
            if !(1..=20).contains(&s.approvals) {
                v.check::<()>(
                    &format!("stages[{i}].approvals"),
                    Err(ValueError::new("invalid_approvals", "1 to 20 approvals")),
                );
            }
            if let Some(role) = &s.role {
                if !approvals::role_exists(state, tenant_id, role).await? {
                    v.check::<()>(
                        &format!("stages[{i}].role"),
                        Err(ValueError::new(
                            "unknown_role",
                            "no built-in role nor role of this tenant has this name",
                        )),
                    );
                }
            }
            stages.push(Stage {
                approvals: s.approvals,
                role: s.role,
                rejection_ends: s.rejection_ends,
            });
        }
        if self
            .expires_in_secs
            .is_some_and(|s| !(60..=MAX_EXPIRY_SECS).contains(&s))
        {
            v.check::<()>(
                "expires_in_secs",
                Err(ValueError::new("invalid_expiry", "60 seconds to 30 days")),
            );
        }
        v.finish()?;
        let name = name.ok_or_else(|| ApiError::internal("validation passed without a name"))?;
        Ok(Policy {
            name,
            actions,
            stages,
            expires_in_secs: self.expires_in_secs,
        })
    }
}

async fn get_policies(
    State(state): State<AppState>,
    scope: TenantScope,
) -> Result<axum::Json<PoliciesOut>, ApiError> {
    let policies = approvals::policies(&state, scope.tenant_id).await?;
    Ok(axum::Json(PoliciesOut::from(&policies)))
}

async fn patch_policies(
    State(state): State<AppState>,
    ctx: Context,
    scope: TenantScope,
    Json(body): Json<UncoveredIn>,
) -> Result<axum::Json<PoliciesOut>, ApiError> {
    let uncovered = match body.uncovered.as_str() {
        "default_policy" => Uncovered::DefaultPolicy,
        "refuse" => Uncovered::Refuse,
        _ => {
            return Err(ApiError::invalid_field(
                "uncovered",
                ValueError::new("invalid_uncovered", "`default_policy` or `refuse`"),
            ));
        }
    };
    let policies = approvals::set_uncovered(
        &state,
        &ctx,
        scope.principal.actor(),
        scope.tenant_id,
        uncovered,
    )
    .await?;
    Ok(axum::Json(PoliciesOut::from(&policies)))
}

async fn put_policy(
    State(state): State<AppState>,
    ctx: Context,
    scope: TenantScope,
    PolicyPath(name): PolicyPath,
    Json(body): Json<PolicyIn>,
) -> Result<axum::Json<PolicyOut>, ApiError> {
    let policy = body.parse(&state, scope.tenant_id, &name).await?;
    let name = policy.name.clone();
    let policies = approvals::define(
        &state,
        &ctx,
        scope.principal.actor(),
        scope.tenant_id,
        policy,
    )
    .await?;
    let defined = policies
        .policies
        .get(&name)
        .ok_or_else(|| ApiError::internal("a defined policy is not there"))?;
    Ok(axum::Json(PolicyOut::from(defined)))
}

async fn delete_policy(
    State(state): State<AppState>,
    ctx: Context,
    scope: TenantScope,
    PolicyPath(name): PolicyPath,
) -> Result<StatusCode, ApiError> {
    approvals::remove(&state, &ctx, scope.principal.actor(), scope.tenant_id, name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CommentIn {
    #[schema(min_length = 1, max_length = 2000)]
    comment: String,
}

async fn post_comment(
    State(state): State<AppState>,
    ctx: Context,
    scope: TenantScope,
    ApprovalPath(id): ApprovalPath,
    Json(body): Json<CommentIn>,
) -> Result<axum::Json<ApprovalOut>, ApiError> {
    let comment = tenantry_domain::values::note(&body.comment, 1, 2000)
        .map_err(|e| ApiError::invalid_field("comment", e))?;
    let approval = approvals::comment(
        &state,
        &ctx,
        &scope.principal,
        scope.tenant_id,
        id.into(),
        comment,
    )
    .await?;
    Ok(axum::Json(approval_out(&approval, state.now())))
}
