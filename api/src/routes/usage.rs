//! Usage over HTTP: the agent runtime records what its agents spent
//! (`usage.write`); the portal reads series (`usage.read`, JSON or CSV);
//! platform admins read every tenant's totals and keep the price book.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tenantry_domain::access::Permission;
use tenantry_domain::llm_key::Provider;
use tenantry_domain::price_book::{ModelPrice, PriceList};
use tenantry_domain::usage::MAX_BATCH;
use tenantry_domain::values::ValueError;
use tenantry_projections::usage::GroupBy;
use uuid::Uuid;

use crate::error::{ApiError, Validation};
use crate::extract::{Context, Json, ListOut, Query};
use crate::guard::{Access, PlatformAdmin, TenantScope};
use crate::routes::Route;
use crate::service::usage::{self, Outcome, Reported};
use crate::state::AppState;

pub fn routes() -> Vec<Route> {
    use Access::{PlatformAdmin as Admin, Tenant as In};
    vec![
        Route::post("/v1/tenants/{tid}/usage", In(Permission::UsageWrite), post_usage)
            .summary("Record usage: a batch of 1 to 1000 records, each id counted once")
            .body::<UsageBatchIn>()
            .answers::<UsageBatchOut>(StatusCode::OK)
            .errors(&["usage_id_conflict", "agent_paused", "agent_not_found"]),
        Route::get("/v1/tenants/{tid}/usage", In(Permission::UsageRead), get_usage)
            .summary("Usage and cost over days, grouped by day, agent, provider or model (Accept: text/csv for CSV)")
            .query::<SeriesParams>()
            .answers::<SeriesOut>(StatusCode::OK)
            .errors(&["invalid_range", "invalid_group_by"]),
        Route::post(
            "/v1/tenants/{tid}/reservations",
            In(Permission::UsageWrite),
            post_reservation,
        )
        .summary("Hold credit for an agent's call within its and the tenant's monthly budgets (402 when they do not cover it)")
        .body::<ReservationIn>()
        .answers::<ReservationOut>(StatusCode::CREATED)
        .errors(&[
            "budget_exceeded",
            "agent_paused",
            "agent_not_found",
            "model_not_allowed",
            "reservation_id_conflict",
        ]),
        Route::delete(
            "/v1/tenants/{tid}/reservations/{reservation_id}",
            In(Permission::UsageWrite),
            delete_reservation,
        )
        .summary("Give a hold back (nothing held under the id is not an error)")
        .no_content(),
        Route::get("/v1/tenants/{tid}/budgets", In(Permission::UsageRead), get_budgets)
            .summary("This month's budgets: limit, spent, reserved and state for the tenant and each agent")
            .answers::<BudgetsOut>(StatusCode::OK),
        Route::get("/v1/admin/usage", Admin, get_admin_usage)
            .summary("Every tenant's usage totals over days, the biggest spender first")
            .query::<RangeParams>()
            .answers_all::<TenantUsageOut>()
            .errors(&["invalid_range"]),
        Route::get("/v1/admin/price-book", Admin, get_price_book)
            .summary("The price book: every version, newest first (version 0 is built in)")
            .answers_all::<PriceBookOut>(),
        Route::post("/v1/admin/price-book", Admin, post_price_book)
            .summary("Publish the price book's next version; recorded usage keeps its cost")
            .body::<PriceListIn>()
            .answers::<PriceBookOut>(StatusCode::CREATED)
            .errors(&["invalid_price_book", "price_book_effective_too_early"]),
    ]
}

/// One record of usage.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct UsageIn {
    /// The client's id (idempotency key): 1 to 128 of letters, digits and
    /// `. _ : -`.
    #[schema(min_length = 1, max_length = 128)]
    id: String,
    agent_id: String,
    /// A provider the vault knows (`openai`, `anthropic`…).
    provider: String,
    #[schema(min_length = 1, max_length = 100)]
    model: String,
    #[serde(default)]
    #[schema(minimum = 0)]
    input_tokens: i64,
    #[serde(default)]
    #[schema(minimum = 0)]
    output_tokens: i64,
    #[serde(default)]
    #[schema(minimum = 0)]
    cached_input_tokens: i64,
    /// Calls made; 1 unless said.
    #[serde(default = "one")]
    #[schema(minimum = 0)]
    requests: i64,
    /// At most 35 days ago, at most 5 minutes ahead.
    occurred_at: DateTime<Utc>,
    /// The reservation this usage settles.
    #[schema(max_length = 128)]
    reservation_id: Option<String>,
    /// A small object (at most 512 bytes as JSON), kept with the record.
    #[schema(value_type = Option<Object>)]
    attributes: Option<Value>,
}

fn one() -> i64 {
    1
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct UsageBatchIn {
    /// 1 to 1000 records (one record is a batch of one).
    #[schema(min_items = 1, max_items = 1000)]
    records: Vec<UsageIn>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RecordOut {
    id: String,
    /// `recorded`, or `duplicate` (recorded before with the same content).
    status: &'static str,
    /// In micro-units of the price book's currency (recorded ones).
    cost_micros: Option<i64>,
    price_version: Option<u32>,
    /// No price for its provider and model: costed at zero.
    unpriced: Option<bool>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct UsageBatchOut {
    recorded: usize,
    duplicates: usize,
    records: Vec<RecordOut>,
}

const MAX_AGE_DAYS: i64 = 35;
const MAX_AHEAD_MINUTES: i64 = 5;
const MAX_COUNT: i64 = 1_000_000_000_000;

fn id_shaped(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
}

fn parse_batch(body: UsageBatchIn, now: DateTime<Utc>) -> Result<Vec<Reported>, ApiError> {
    let mut v = Validation::default();
    let bad = |code: &'static str, message: &str| Err(ValueError::new(code, message.to_string()));
    if body.records.is_empty() || body.records.len() > MAX_BATCH {
        v.check::<()>(
            "records",
            bad("invalid_batch_size", "a batch holds 1 to 1000 records"),
        );
    }
    let mut out = Vec::with_capacity(body.records.len());
    for (i, r) in body.records.into_iter().enumerate() {
        let field = |name: &str| format!("records[{i}].{name}");
        if !id_shaped(&r.id) {
            v.check::<()>(
                &field("id"),
                bad(
                    "invalid_usage_id",
                    "1 to 128 of letters, digits and . _ : -",
                ),
            );
        }
        let agent_id = Uuid::parse_str(&r.agent_id).ok();
        if agent_id.is_none() {
            v.check::<()>(&field("agent_id"), bad("unknown_agent", "not an agent id"));
        }
        let provider = v.check(&field("provider"), Provider::parse(&r.provider));
        let model_ok = v
            .check(
                &field("model"),
                tenantry_domain::values::model_name(&r.model),
            )
            .is_some();
        for (name, n) in [
            ("input_tokens", r.input_tokens),
            ("output_tokens", r.output_tokens),
            ("cached_input_tokens", r.cached_input_tokens),
            ("requests", r.requests),
        ] {
            if !(0..=MAX_COUNT).contains(&n) {
                v.check::<()>(&field(name), bad("invalid_count", "0 to 10^12"));
            }
        }
        if r.occurred_at < now - Duration::days(MAX_AGE_DAYS)
            || r.occurred_at > now + Duration::minutes(MAX_AHEAD_MINUTES)
        {
            v.check::<()>(
                &field("occurred_at"),
                bad(
                    "invalid_occurred_at",
                    "at most 35 days ago and at most 5 minutes ahead",
                ),
            );
        }
        if r.reservation_id.as_deref().is_some_and(|id| !id_shaped(id)) {
            v.check::<()>(
                &field("reservation_id"),
                bad(
                    "invalid_usage_id",
                    "1 to 128 of letters, digits and . _ : -",
                ),
            );
        }
        let attributes_ok = match &r.attributes {
            None | Some(Value::Null) => true,
            Some(a @ Value::Object(_)) => a.to_string().len() <= 512,
            Some(_) => false,
        };
        if !attributes_ok {
            v.check::<()>(
                &field("attributes"),
                bad(
                    "invalid_attributes",
                    "an object of at most 512 bytes as JSON",
                ),
            );
        }
        if let (Some(agent_id), Some(provider), true) = (agent_id, provider, model_ok) {
            out.push(Reported {
                id: r.id,
                agent_id,
                provider: provider.as_str().to_string(),
                model: r.model,
                input_tokens: r.input_tokens,
                output_tokens: r.output_tokens,
                cached_input_tokens: r.cached_input_tokens,
                requests: r.requests,
                occurred_at: r.occurred_at,
                reservation_id: r.reservation_id,
                attributes: r.attributes.filter(|a| !a.is_null()),
            });
        }
    }
    // One id twice in a batch: fine when the content agrees (counted once).
    let mut first: std::collections::HashMap<&str, Vec<u8>> = std::collections::HashMap::new();
    for (i, r) in out.iter().enumerate() {
        let hash = r.content_hash();
        let earlier = first.entry(r.id.as_str()).or_insert_with(|| hash.clone());
        if *earlier != hash {
            v.check::<()>(
                &format!("records[{i}].id"),
                bad(
                    "duplicate_in_batch",
                    "this id comes earlier in the batch with other content",
                ),
            );
        }
    }
    v.finish()?;
    Ok(out)
}

async fn post_usage(
    State(state): State<AppState>,
    ctx: Context,
    scope: TenantScope,
    Json(body): Json<UsageBatchIn>,
) -> Result<axum::Json<UsageBatchOut>, ApiError> {
    let reported = parse_batch(body, state.now())?;
    let outcomes = usage::ingest(
        &state,
        &ctx,
        scope.principal.actor(),
        scope.tenant_id,
        reported,
    )
    .await?;
    let mut out = UsageBatchOut {
        recorded: 0,
        duplicates: 0,
        records: Vec::with_capacity(outcomes.len()),
    };
    for (id, outcome) in outcomes {
        out.records.push(match outcome {
            Outcome::Recorded {
                cost_micros,
                price_version,
                unpriced,
            } => {
                out.recorded += 1;
                RecordOut {
                    id,
                    status: "recorded",
                    cost_micros: Some(cost_micros),
                    price_version: Some(price_version),
                    unpriced: Some(unpriced),
                }
            }
            Outcome::Duplicate => {
                out.duplicates += 1;
                RecordOut {
                    id,
                    status: "duplicate",
                    cost_micros: None,
                    price_version: None,
                    unpriced: None,
                }
            }
        });
    }
    Ok(axum::Json(out))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RangeParams {
    /// First day (UTC, `YYYY-MM-DD`); default: 29 days before `to`.
    from: Option<NaiveDate>,
    /// Last day, included; default: today.
    to: Option<NaiveDate>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SeriesParams {
    /// First day (UTC, `YYYY-MM-DD`); default: 29 days before `to`.
    from: Option<NaiveDate>,
    /// Last day, included; default: today.
    to: Option<NaiveDate>,
    /// `day` (default), `agent`, `provider` or `model`.
    group_by: Option<String>,
    /// Only this agent.
    agent_id: Option<Uuid>,
}

/// The days asked for: at most 366 of them.
fn range(
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    today: NaiveDate,
) -> Result<(NaiveDate, NaiveDate), ApiError> {
    let to = to.unwrap_or(today);
    let from = from.unwrap_or(to - Duration::days(29));
    if from > to || (to - from).num_days() > 365 {
        return Err(ApiError::unprocessable(
            "invalid_range",
            "from is on or before to, at most 366 days apart",
        ));
    }
    Ok((from, to))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PointOut {
    /// The day (`YYYY-MM-DD`), agent id, provider, or `provider/model`.
    key: String,
    records: i64,
    requests: i64,
    input_tokens: i64,
    output_tokens: i64,
    cached_input_tokens: i64,
    /// In micro-units of the price book's currency.
    cost_micros: i64,
    unpriced_records: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SeriesOut {
    from: NaiveDate,
    to: NaiveDate,
    group_by: String,
    data: Vec<PointOut>,
}

fn wants_csv(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/csv"))
}

async fn get_usage(
    State(state): State<AppState>,
    scope: TenantScope,
    headers: HeaderMap,
    Query(params): Query<SeriesParams>,
) -> Result<Response, ApiError> {
    let (from, to) = range(params.from, params.to, state.now().date_naive())?;
    let group_name = params.group_by.unwrap_or_else(|| "day".into());
    let group_by = GroupBy::parse(&group_name).ok_or_else(|| {
        ApiError::unprocessable(
            "invalid_group_by",
            "group_by is day, agent, provider or model",
        )
    })?;
    let points = state
        .reads
        .usage()
        .series(scope.tenant_id, from, to, group_by, params.agent_id)
        .await?;
    if wants_csv(&headers) {
        let mut csv = format!(
            "{group_name},records,requests,input_tokens,output_tokens,cached_input_tokens,cost_micros,unpriced_records\n"
        );
        for p in &points {
            // Keys are dates, uuids, provider and model names: no commas or quotes.
            csv.push_str(&format!(
                "{},{},{},{},{},{},{},{}\n",
                p.key,
                p.records,
                p.requests,
                p.input_tokens,
                p.output_tokens,
                p.cached_input_tokens,
                p.cost_micros,
                p.unpriced_records
            ));
        }
        return Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], csv).into_response());
    }
    let data = points
        .into_iter()
        .map(|p| PointOut {
            key: p.key,
            records: p.records,
            requests: p.requests,
            input_tokens: p.input_tokens,
            output_tokens: p.output_tokens,
            cached_input_tokens: p.cached_input_tokens,
            cost_micros: p.cost_micros,
            unpriced_records: p.unpriced_records,
        })
        .collect();
    Ok(axum::Json(SeriesOut {
        from,
        to,
        group_by: group_name,
        data,
    })
    .into_response())
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TenantUsageOut {
    tenant_id: Uuid,
    records: i64,
    requests: i64,
    input_tokens: i64,
    output_tokens: i64,
    cost_micros: i64,
}

async fn get_admin_usage(
    State(state): State<AppState>,
    _admin: PlatformAdmin,
    Query(params): Query<RangeParams>,
) -> Result<axum::Json<ListOut<TenantUsageOut>>, ApiError> {
    let (from, to) = range(params.from, params.to, state.now().date_naive())?;
    let rows = state.reads.usage().by_tenant(from, to).await?;
    Ok(axum::Json(ListOut {
        data: rows
            .into_iter()
            .map(|r| TenantUsageOut {
                tenant_id: r.tenant_id,
                records: r.records,
                requests: r.requests,
                input_tokens: r.input_tokens,
                output_tokens: r.output_tokens,
                cost_micros: r.cost_micros,
            })
            .collect(),
        next_cursor: None,
    }))
}

/// One model's prices, in micro-units of the list's currency.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
pub struct ModelPriceIo {
    provider: String,
    /// A model, or `*` for the provider's other models.
    model: String,
    #[schema(minimum = 0)]
    input_per_mtok: i64,
    #[schema(minimum = 0)]
    output_per_mtok: i64,
    #[serde(default)]
    #[schema(minimum = 0)]
    cached_input_per_mtok: i64,
    #[serde(default)]
    #[schema(minimum = 0)]
    per_request: i64,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct PriceListIn {
    /// ISO 4217, lowercase.
    #[schema(min_length = 3, max_length = 3)]
    currency: String,
    /// When it takes effect; default: now. Not before the last version's.
    effective_from: Option<DateTime<Utc>>,
    #[schema(max_items = 2000)]
    prices: Vec<ModelPriceIo>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PriceBookOut {
    version: u32,
    currency: String,
    effective_from: DateTime<Utc>,
    prices: Vec<ModelPriceIo>,
}

fn price_book_out(version: u32, list: PriceList) -> PriceBookOut {
    PriceBookOut {
        version,
        currency: list.currency,
        effective_from: list.effective_from,
        prices: list
            .prices
            .into_iter()
            .map(|p| ModelPriceIo {
                provider: p.provider,
                model: p.model,
                input_per_mtok: p.input_per_mtok,
                output_per_mtok: p.output_per_mtok,
                cached_input_per_mtok: p.cached_input_per_mtok,
                per_request: p.per_request,
            })
            .collect(),
    }
}

async fn get_price_book(
    State(state): State<AppState>,
    _admin: PlatformAdmin,
) -> Result<axum::Json<ListOut<PriceBookOut>>, ApiError> {
    let book = usage::price_book(&state).await?;
    let mut data: Vec<PriceBookOut> = book
        .versions
        .into_iter()
        .rev()
        .map(|(v, l)| price_book_out(v, l))
        .collect();
    data.push(price_book_out(
        0,
        tenantry_domain::price_book::default_list(),
    ));
    Ok(axum::Json(ListOut {
        data,
        next_cursor: None,
    }))
}

async fn post_price_book(
    State(state): State<AppState>,
    ctx: Context,
    PlatformAdmin(admin): PlatformAdmin,
    Json(body): Json<PriceListIn>,
) -> Result<(StatusCode, axum::Json<PriceBookOut>), ApiError> {
    let mut v = Validation::default();
    for (i, p) in body.prices.iter().enumerate() {
        v.check(
            &format!("prices[{i}].provider"),
            Provider::parse(&p.provider),
        );
    }
    v.finish()?;
    let list = PriceList {
        currency: body.currency,
        effective_from: body.effective_from.unwrap_or_else(|| state.now()),
        prices: body
            .prices
            .into_iter()
            .map(|p| ModelPrice {
                provider: p.provider,
                model: p.model,
                input_per_mtok: p.input_per_mtok,
                output_per_mtok: p.output_per_mtok,
                cached_input_per_mtok: p.cached_input_per_mtok,
                per_request: p.per_request,
            })
            .collect(),
    };
    let version = usage::publish_prices(&state, &ctx, admin.actor(), list.clone()).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(price_book_out(version, list)),
    ))
}

/// Credit to hold: `amount_micros`, or an `estimate` of the call.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct ReservationIn {
    /// Yours (its idempotency key): 1 to 128 of letters, digits and `. _ : -`.
    #[schema(min_length = 1, max_length = 128)]
    id: String,
    agent_id: Uuid,
    /// In micro-units of the price book's currency.
    #[schema(minimum = 0)]
    amount_micros: Option<i64>,
    estimate: Option<EstimateIn>,
    /// How long the hold lives unless settled or released: 1 to 3600 s,
    /// 300 unless said.
    #[schema(minimum = 1, maximum = 3600)]
    ttl_seconds: Option<i64>,
}

/// What a call is expected to use, costed at the price book in effect.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct EstimateIn {
    provider: String,
    #[schema(min_length = 1, max_length = 100)]
    model: String,
    #[serde(default)]
    #[schema(minimum = 0)]
    input_tokens: i64,
    #[serde(default)]
    #[schema(minimum = 0)]
    output_tokens: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ReservationOut {
    id: String,
    agent_id: Uuid,
    amount_micros: i64,
    expires_at: DateTime<Utc>,
    /// `held`.
    status: &'static str,
}

async fn post_reservation(
    State(state): State<AppState>,
    ctx: Context,
    scope: TenantScope,
    Json(body): Json<ReservationIn>,
) -> Result<(StatusCode, axum::Json<ReservationOut>), ApiError> {
    let mut v = Validation::default();
    let bad = |code: &'static str, message: &str| Err(ValueError::new(code, message.to_string()));
    if !id_shaped(&body.id) {
        v.check::<()>(
            "id",
            bad(
                "invalid_usage_id",
                "1 to 128 of letters, digits and . _ : -",
            ),
        );
    }
    let ttl = body.ttl_seconds.unwrap_or(300);
    if !(1..=3600).contains(&ttl) {
        v.check::<()>("ttl_seconds", bad("invalid_count", "1 to 3600 seconds"));
    }
    let amount = match (body.amount_micros, body.estimate) {
        (Some(m), None) if (0..=MAX_COUNT).contains(&m) => Some(usage::Amount::Micros(m)),
        (None, Some(e)) => {
            let provider = v.check("estimate.provider", Provider::parse(&e.provider));
            for (name, n) in [
                ("estimate.input_tokens", e.input_tokens),
                ("estimate.output_tokens", e.output_tokens),
            ] {
                if !(0..=MAX_COUNT).contains(&n) {
                    v.check::<()>(name, bad("invalid_count", "0 to 10^12"));
                }
            }
            provider.map(|p| usage::Amount::Estimate {
                provider: p.as_str().to_string(),
                model: e.model,
                input_tokens: e.input_tokens,
                output_tokens: e.output_tokens,
            })
        }
        _ => {
            v.check::<()>(
                "amount_micros",
                bad(
                    "invalid_amount",
                    "give amount_micros (0 to 10^12) or an estimate, not both",
                ),
            );
            None
        }
    };
    v.finish()?;
    let amount = amount.ok_or_else(|| ApiError::internal("validation passed without an amount"))?;
    let granted = usage::reserve(
        &state,
        &ctx,
        scope.principal.actor(),
        scope.tenant_id,
        usage::ReservationAsk {
            id: body.id,
            agent_id: body.agent_id,
            amount,
            ttl: Duration::seconds(ttl),
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(ReservationOut {
            id: granted.id,
            agent_id: granted.agent_id,
            amount_micros: granted.amount_micros,
            expires_at: granted.expires_at,
            status: "held",
        }),
    ))
}

async fn delete_reservation(
    State(state): State<AppState>,
    ctx: Context,
    scope: TenantScope,
    crate::extract::ReservationPath(id): crate::extract::ReservationPath,
) -> Result<StatusCode, ApiError> {
    usage::release(&state, &ctx, scope.principal.actor(), scope.tenant_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One budget's standing this month.
#[derive(Serialize, utoipa::ToSchema)]
pub struct BudgetOut {
    /// `null`: no limit at this scope.
    limit_micros: Option<i64>,
    spent_micros: i64,
    reserved_micros: i64,
    /// `ok`, `warning` (spent plus reserved at 80 % of the limit or more) or
    /// `exceeded` (at the limit or more); `ok` without a limit.
    state: &'static str,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AgentBudgetOut {
    agent_id: Uuid,
    name: String,
    #[serde(flatten)]
    budget: BudgetOut,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct BudgetsOut {
    /// The budget period: the calendar month (`2026-12`, UTC), or with the
    /// tenant setting `budget_period: billing_period` its subscription's
    /// current billing period (`until-<its end>`).
    period: String,
    resets_at: DateTime<Utc>,
    warning_percent: u8,
    tenant: BudgetOut,
    agents: Vec<AgentBudgetOut>,
}

fn budget(limit: Option<i64>, spent: i64, reserved: i64) -> BudgetOut {
    let used = i128::from(spent) + i128::from(reserved);
    let state = match limit {
        Some(l) if used >= i128::from(l) => "exceeded",
        Some(l) if used * 100 >= i128::from(l) * i128::from(usage::WARNING_PERCENT) => "warning",
        _ => "ok",
    };
    BudgetOut {
        limit_micros: limit,
        spent_micros: spent,
        reserved_micros: reserved,
        state,
    }
}

async fn get_budgets(
    State(state): State<AppState>,
    scope: TenantScope,
) -> Result<axum::Json<BudgetsOut>, ApiError> {
    use tenantry_domain::usage::{ledger_id, BudgetScope, Ledger};
    let now = state.now();
    let agents = state.reads.agents().list(scope.tenant_id, false).await?;
    let limits = usage::limits_of(
        &state,
        scope.tenant_id,
        agents.iter().map(|a| (a.id, a.monthly_budget_minor)),
        now,
    )
    .await?;
    let (ledger, _) = state
        .store
        .load::<Ledger>(ledger_id(scope.tenant_id, &limits.period.key))
        .await
        .map_err(ApiError::from)?;
    let (spent, reserved) = ledger.totals(BudgetScope::Tenant);
    Ok(axum::Json(BudgetsOut {
        period: limits.period.key,
        resets_at: limits.period.resets_at,
        warning_percent: usage::WARNING_PERCENT,
        tenant: budget(limits.tenant, spent, reserved),
        agents: agents
            .into_iter()
            .map(|a| {
                let limit = limits
                    .agents
                    .iter()
                    .find(|(id, _)| *id == a.id)
                    .map(|(_, l)| *l);
                let (spent, reserved) = ledger.totals(BudgetScope::Agent { agent_id: a.id });
                AgentBudgetOut {
                    agent_id: a.id,
                    name: a.name,
                    budget: budget(limit, spent, reserved),
                }
            })
            .collect(),
    }))
}
