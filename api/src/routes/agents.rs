//! Agents over HTTP: a tenant's AI agents, their settings and their
//! status. `agents.read` lists and reads; `agents.manage` creates, changes,
//! pauses, resumes and archives. Creating one counts against the plan's
//! `max_agents`.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenantry_domain::access::Permission;
use tenantry_domain::agent::{AgentCommand, AgentSettings};
use tenantry_domain::llm_key::Provider;
use tenantry_domain::values::{Label, ValueError};
use tenantry_projections::agents::AgentRow;
use uuid::Uuid;

use crate::error::{ApiError, Validation};
use crate::extract::{AgentPath, Context, Json, ListOut, Query};
use crate::guard::{Access, TenantScope};
use crate::routes::Route;
use crate::service::agents;
use crate::state::AppState;

pub fn routes() -> Vec<Route> {
    use Access::Tenant as In;
    use Permission::{AgentsManage as Manage, AgentsRead as Read};
    const AGENTS: &str = "/v1/tenants/{tid}/agents";
    const AGENT: &str = "/v1/tenants/{tid}/agents/{agent_id}";
    vec![
        Route::get(AGENTS, In(Read), list_agents)
            .summary("The tenant's agents, oldest first (archived ones with include_archived=true)")
            .query::<ListParams>()
            .answers_all::<AgentOut>(),
        Route::post(AGENTS, In(Manage), post_agent)
            .summary("Create an agent (counts against the plan's max_agents)")
            .body::<AgentIn>()
            .answers::<AgentOut>(StatusCode::CREATED)
            .errors(&["agent_quota_reached"]),
        Route::get(AGENT, In(Read), get_agent)
            .summary("One agent")
            .answers::<AgentOut>(StatusCode::OK)
            .errors(&["agent_not_found"]),
        Route::put(AGENT, In(Manage), put_agent)
            .summary("Replace an agent's settings")
            .body::<AgentIn>()
            .answers::<AgentOut>(StatusCode::OK)
            .errors(&["agent_not_found", "agent_archived"]),
        Route::post(
            "/v1/tenants/{tid}/agents/{agent_id}/pause",
            In(Manage),
            pause_agent,
        )
        .summary("Pause an agent: its reservations and usage are refused until it resumes")
        .answers::<AgentOut>(StatusCode::OK)
        .errors(&["agent_not_found", "agent_archived"]),
        Route::post(
            "/v1/tenants/{tid}/agents/{agent_id}/resume",
            In(Manage),
            resume_agent,
        )
        .summary("Resume a paused agent")
        .answers::<AgentOut>(StatusCode::OK)
        .errors(&["agent_not_found", "agent_archived"]),
        Route::post(
            "/v1/tenants/{tid}/agents/{agent_id}/archive",
            In(Manage),
            archive_agent,
        )
        .summary("Archive an agent for good: it stops counting against max_agents")
        .answers::<AgentOut>(StatusCode::OK)
        .errors(&["agent_not_found"]),
    ]
}

/// At most this many entries in an allow-list.
const MAX_ALLOW: usize = 50;

/// An agent's settings.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct AgentIn {
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    #[serde(default)]
    #[schema(max_length = 1000)]
    description: String,
    /// Spend allowed per calendar month (UTC), in minor units; absent: only
    /// the tenant's budget applies.
    #[schema(minimum = 0)]
    monthly_budget_minor: Option<i64>,
    /// Providers (`openai`) or provider models (`openai/gpt-4o`) the agent
    /// may use; empty: any.
    #[serde(default)]
    #[schema(max_items = 50)]
    allow: Vec<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AgentOut {
    id: Uuid,
    name: String,
    description: String,
    monthly_budget_minor: Option<i64>,
    allow: Vec<String>,
    /// `active`, `paused` or `archived`.
    status: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<AgentRow> for AgentOut {
    fn from(r: AgentRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            description: r.description,
            monthly_budget_minor: r.monthly_budget_minor,
            allow: serde_json::from_value(r.allow).unwrap_or_default(),
            status: r.status,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Also list archived agents.
    #[serde(default)]
    include_archived: bool,
}

/// `provider` or `provider/model`, the provider one the vault knows.
fn allow_entry(raw: &str) -> Result<String, ValueError> {
    let (provider, model) = match raw.split_once('/') {
        Some((p, m)) => (p, Some(m)),
        None => (raw, None),
    };
    let provider = Provider::parse(provider)?;
    match model {
        None => Ok(provider.as_str().to_string()),
        Some(m) => Ok(format!(
            "{}/{}",
            provider.as_str(),
            tenantry_domain::values::model_name(m)?
        )),
    }
}

impl AgentIn {
    fn parse(self) -> Result<AgentSettings, ApiError> {
        let mut v = Validation::default();
        let name = v.check("name", Label::parse(&self.name));
        if self.description.chars().count() > 1000 {
            v.check::<()>(
                "description",
                Err(ValueError::new(
                    "invalid_length",
                    "a description is at most 1000 characters",
                )),
            );
        }
        if self.monthly_budget_minor.is_some_and(|b| b < 0) {
            v.check::<()>(
                "monthly_budget_minor",
                Err(ValueError::new(
                    "invalid_budget",
                    "a budget is 0 or more minor units",
                )),
            );
        }
        if self.allow.len() > MAX_ALLOW {
            v.check::<()>(
                "allow",
                Err(ValueError::new(
                    "invalid_length",
                    format!("at most {MAX_ALLOW} entries"),
                )),
            );
        }
        let mut allow = Vec::new();
        for (i, raw) in self.allow.iter().enumerate() {
            if let Some(entry) = v.check(&format!("allow[{i}]"), allow_entry(raw)) {
                if !allow.contains(&entry) {
                    allow.push(entry);
                }
            }
        }
        v.finish()?;
        let name = name.ok_or_else(|| ApiError::internal("validation passed without a name"))?;
        Ok(AgentSettings {
            name,
            description: self.description,
            monthly_budget_minor: self.monthly_budget_minor,
            allow,
        })
    }
}

async fn list_agents(
    State(state): State<AppState>,
    scope: TenantScope,
    Query(params): Query<ListParams>,
) -> Result<axum::Json<ListOut<AgentOut>>, ApiError> {
    let rows = state
        .reads
        .agents()
        .list(scope.tenant_id, params.include_archived)
        .await?;
    Ok(axum::Json(ListOut {
        data: rows.into_iter().map(AgentOut::from).collect(),
        next_cursor: None,
    }))
}

async fn post_agent(
    State(state): State<AppState>,
    ctx: Context,
    scope: TenantScope,
    Json(body): Json<AgentIn>,
) -> Result<(StatusCode, axum::Json<AgentOut>), ApiError> {
    let settings = body.parse()?;
    let row = agents::create(
        &state,
        &ctx,
        scope.principal.actor(),
        scope.tenant_id,
        settings,
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(row.into())))
}

async fn get_agent(
    State(state): State<AppState>,
    scope: TenantScope,
    AgentPath(id): AgentPath,
) -> Result<axum::Json<AgentOut>, ApiError> {
    let row = state
        .reads
        .agents()
        .get(scope.tenant_id, id)
        .await?
        .ok_or_else(agents::not_found)?;
    Ok(axum::Json(row.into()))
}

async fn command(
    state: &AppState,
    ctx: &Context,
    scope: &TenantScope,
    id: Uuid,
    command: AgentCommand,
) -> Result<axum::Json<AgentOut>, ApiError> {
    let row = agents::run(
        state,
        ctx,
        scope.principal.actor(),
        scope.tenant_id,
        id,
        command,
    )
    .await?;
    Ok(axum::Json(row.into()))
}

async fn put_agent(
    State(state): State<AppState>,
    ctx: Context,
    scope: TenantScope,
    AgentPath(id): AgentPath,
    Json(body): Json<AgentIn>,
) -> Result<axum::Json<AgentOut>, ApiError> {
    let settings = body.parse()?;
    command(&state, &ctx, &scope, id, AgentCommand::Update { settings }).await
}

async fn pause_agent(
    State(state): State<AppState>,
    ctx: Context,
    scope: TenantScope,
    AgentPath(id): AgentPath,
) -> Result<axum::Json<AgentOut>, ApiError> {
    command(&state, &ctx, &scope, id, AgentCommand::Pause).await
}

async fn resume_agent(
    State(state): State<AppState>,
    ctx: Context,
    scope: TenantScope,
    AgentPath(id): AgentPath,
) -> Result<axum::Json<AgentOut>, ApiError> {
    command(&state, &ctx, &scope, id, AgentCommand::Resume).await
}

async fn archive_agent(
    State(state): State<AppState>,
    ctx: Context,
    scope: TenantScope,
    AgentPath(id): AgentPath,
) -> Result<axum::Json<AgentOut>, ApiError> {
    command(&state, &ctx, &scope, id, AgentCommand::Archive).await
}
