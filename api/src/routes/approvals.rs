//! Approvals over HTTP. So far the tenant's approval policies, with
//! `approvals.manage`: which actions (exactly, or by a prefix ending in a
//! dot) need whose approval in which stages, and whether an action no
//! policy covers takes the default policy (one approval) or is refused.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tenantry_domain::access::Permission;
use tenantry_domain::approval::Stage;
use tenantry_domain::approval_policy::{ActionPattern, ApprovalPolicies, Policy, Uncovered};
use tenantry_domain::values::ValueError;

use crate::error::{ApiError, Validation};
use crate::extract::{Context, Json, PolicyPath};
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
    ]
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
            stages: p
                .stages
                .iter()
                .map(|s| StageIo {
                    approvals: s.approvals,
                    role: s.role.clone(),
                    rejection_ends: s.rejection_ends,
                })
                .collect(),
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
            let mut v = Validation::default();
            v.check::<()>(
                "uncovered",
                Err(ValueError::new(
                    "invalid_uncovered",
                    "`default_policy` or `refuse`",
                )),
            );
            v.finish()?;
            return Err(ApiError::internal("validation passed a bad value"));
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
