//! Billing over HTTP, first part (manual mode): the plan catalogue for
//! platform admins, a tenant's plan and status, and the Stripe-backed
//! actions, which answer 409 `billing_not_configured` until Stripe is set.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tenantry_domain::access::Permission;
use tenantry_domain::plan::{Entitlements, Feature, Interval, PlanTerms};
use tenantry_domain::values::{Label, Slug, ValueError};
use tenantry_projections::billing::{BillingRow, PlanRow};
use uuid::Uuid;

use crate::error::{ApiError, Validation};
use crate::extract::{Context, Json, PlanPath, TenantIdPath};
use crate::guard::{Access, PlatformAdmin, TenantScope};
use crate::routes::Route;
use crate::service::billing;
use crate::service::tenants::record_tenant;
use crate::state::AppState;

pub fn routes() -> Vec<Route> {
    use Access::{PlatformAdmin as Admin, Tenant as In};
    vec![
        Route::post("/v1/admin/plans", Admin, post_plan)
            .summary("Define a plan: its price, interval, trial and entitlements (version 1)")
            .body::<PlanIn>()
            .answers::<PlanOut>(StatusCode::CREATED)
            .errors(&[
                "plan_key_taken",
                "invalid_plan_terms",
                "plan_already_exists",
            ]),
        Route::get("/v1/admin/plans", Admin, list_plans)
            .summary("Every plan, retired ones last")
            .answers_all::<PlanOut>(),
        Route::post("/v1/admin/plans/{plan}/versions", Admin, post_plan_version)
            .summary("Publish new terms as the plan's next version; tenants keep theirs")
            .body::<TermsIn>()
            .answers::<PlanOut>(StatusCode::OK)
            .errors(&["plan_not_found", "plan_retired", "invalid_plan_terms"]),
        Route::post("/v1/admin/plans/{plan}/retire", Admin, retire_plan)
            .summary("Retire a plan: no new subscriptions, tenants on it keep it")
            .answers::<PlanOut>(StatusCode::OK)
            .errors(&["plan_not_found"]),
        Route::get(
            "/v1/admin/billing/reconciliation",
            Admin,
            get_reconciliation,
        )
        .summary("The last billing reconciliation's report (the server's schedule or the CLI)")
        .answers::<ReconciliationOut>(StatusCode::OK),
        Route::get(
            "/v1/tenants/{tid}/billing",
            In(Permission::BillingRead),
            get_billing,
        )
        .summary("The tenant's plan, the terms it holds and its subscription status")
        .answers::<BillingOut>(StatusCode::OK),
        Route::get(
            "/v1/tenants/{tid}/billing/invoices",
            In(Permission::BillingRead),
            list_invoices,
        )
        .summary("The tenant's invoices, newest period first (from Stripe's invoice events)")
        .answers_all::<InvoiceOut>(),
        Route::put("/v1/tenants/{tid}/billing/plan", Admin, put_plan)
            .summary("Put the tenant on a plan's current version (manual mode)")
            .body::<AssignIn>()
            .answers::<BillingOut>(StatusCode::OK)
            .errors(&[
                "tenant_not_found",
                "plan_not_found",
                "plan_retired",
                "plan_has_no_trial",
                "invalid_plan_terms",
            ]),
        Route::post(
            "/v1/tenants/{tid}/billing/checkout",
            In(Permission::BillingManage),
            post_checkout,
        )
        .summary("Subscribe to a plan through Stripe Checkout: answers the session's URL (needs Stripe)")
        .body::<CheckoutIn>()
        .answers::<SessionOut>(StatusCode::OK)
        .errors(&[
            "plan_not_found",
            "plan_retired",
            "plan_not_for_sale",
            "billing_not_configured",
            "stripe_unavailable",
        ]),
        Route::post(
            "/v1/tenants/{tid}/billing/portal",
            In(Permission::BillingManage),
            post_portal,
        )
        .summary("Open the Stripe billing portal to change card or plan, or cancel: answers its URL (needs Stripe)")
        .answers::<SessionOut>(StatusCode::OK)
        .errors(&[
            "no_stripe_customer",
            "billing_not_configured",
            "stripe_unavailable",
        ]),
    ]
}

/// What a tenant on the plan may use.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
pub struct EntitlementsIo {
    /// Members plus pending invitations; absent: no limit.
    #[schema(minimum = 1)]
    max_seats: Option<u32>,
    /// Agents not archived; absent: no limit.
    #[schema(minimum = 1)]
    max_agents: Option<u32>,
    /// Usage included each month, in minor units of the plan's currency.
    #[serde(default)]
    #[schema(minimum = 0)]
    monthly_credit_minor: i64,
    /// `standard`, `high` or `unlimited`.
    #[serde(default = "standard_tier")]
    rate_tier: String,
    /// Of `approvals`, `webhooks`, `white_label`, `byo_llm_keys`.
    #[serde(default)]
    features: Vec<String>,
}

fn standard_tier() -> String {
    "standard".into()
}

/// One version of a plan's terms.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
pub struct TermsIn {
    /// Price per interval in minor units (cents); 0 for a free plan.
    #[schema(minimum = 0)]
    price_minor: i64,
    /// ISO 4217, lowercase.
    #[schema(min_length = 3, max_length = 3)]
    currency: String,
    /// `month` or `year`.
    #[schema(pattern = "^(month|year)$")]
    interval: String,
    /// Days of trial a tenant may start with; 0: none.
    #[serde(default)]
    #[schema(maximum = 365)]
    trial_days: u32,
    entitlements: EntitlementsIo,
    /// The Stripe price this version is sold at, made in Stripe by the
    /// operator; absent: `tenantry_{key}_v{version}`, which `tenantry
    /// billing sync-plans` creates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[A-Za-z0-9_-]{3,255}$")]
    stripe_price: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct PlanIn {
    /// A stable key (`team`): 3 to 63 of a-z, 0-9 and `-`.
    #[schema(pattern = r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")]
    key: String,
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    #[serde(flatten)]
    terms: TermsIn,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PlanOut {
    id: Uuid,
    key: String,
    name: String,
    version: i32,
    retired: bool,
    terms: TermsIn,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct AssignIn {
    /// The plan's key.
    plan: String,
    /// Start the plan's trial instead of paying at once.
    #[serde(default)]
    trial: bool,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CheckoutIn {
    /// The plan's key.
    plan: String,
}

/// The plan a tenant is on.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PlanRef {
    id: Uuid,
    key: String,
    version: i32,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct BillingOut {
    tenant_id: Uuid,
    /// `null`: the tenant has no plan yet.
    plan: Option<PlanRef>,
    /// `trialing`, `active`, `past_due`, `canceled`, `unpaid`, `incomplete`.
    status: Option<String>,
    trial_ends_at: Option<DateTime<Utc>>,
    /// The terms of the version the tenant holds.
    terms: Option<TermsIn>,
    /// The Stripe subscription, once there is one.
    subscription: Option<SubscriptionOut>,
    updated_at: Option<DateTime<Utc>>,
}

/// A tenant's Stripe subscription.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SubscriptionOut {
    id: String,
    current_period_end: Option<DateTime<Utc>>,
    /// Canceled by the customer: it ends with the current period.
    cancel_at_period_end: bool,
}

fn interval_name(i: Interval) -> &'static str {
    match i {
        Interval::Month => "month",
        Interval::Year => "year",
    }
}

fn feature_name(f: Feature) -> String {
    serde_json::to_value(f)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

impl TermsIn {
    /// The domain's terms, every problem named by its field.
    fn parse(self, v: &mut Validation) -> Option<PlanTerms> {
        let interval = match self.interval.as_str() {
            "month" => Some(Interval::Month),
            "year" => Some(Interval::Year),
            _ => v.check(
                "interval",
                Err(ValueError::new(
                    "invalid_interval",
                    "the interval is month or year",
                )),
            ),
        };
        let mut features = std::collections::BTreeSet::new();
        for (i, name) in self.entitlements.features.iter().enumerate() {
            match serde_json::from_value::<Feature>(Value::String(name.clone())) {
                Ok(f) => {
                    features.insert(f);
                }
                Err(_) => {
                    v.check::<()>(
                        &format!("entitlements.features[{i}]"),
                        Err(ValueError::new(
                            "unknown_feature",
                            "the features are approvals, webhooks, white_label and byo_llm_keys",
                        )),
                    );
                }
            }
        }
        let terms = PlanTerms {
            price_minor: self.price_minor,
            currency: self.currency,
            interval: interval?,
            trial_days: self.trial_days,
            entitlements: Entitlements {
                max_seats: self.entitlements.max_seats,
                max_agents: self.entitlements.max_agents,
                monthly_credit_minor: self.entitlements.monthly_credit_minor,
                rate_tier: self.entitlements.rate_tier,
                features,
            },
            stripe_price: self.stripe_price,
        };
        match terms.validate() {
            Ok(()) => Some(terms),
            Err((field, e)) => v.check(field, Err(e)),
        }
    }

    fn from_terms(t: PlanTerms) -> Self {
        Self {
            price_minor: t.price_minor,
            currency: t.currency,
            interval: interval_name(t.interval).into(),
            trial_days: t.trial_days,
            entitlements: EntitlementsIo {
                max_seats: t.entitlements.max_seats,
                max_agents: t.entitlements.max_agents,
                monthly_credit_minor: t.entitlements.monthly_credit_minor,
                rate_tier: t.entitlements.rate_tier,
                features: t
                    .entitlements
                    .features
                    .into_iter()
                    .map(feature_name)
                    .collect(),
            },
            stripe_price: t.stripe_price,
        }
    }

    fn from_stored(terms: Value) -> Result<Self, ApiError> {
        serde_json::from_value::<PlanTerms>(terms)
            .map(Self::from_terms)
            .map_err(|e| ApiError::internal(format!("stored plan terms: {e}")))
    }
}

impl PlanOut {
    fn from_row(r: PlanRow) -> Result<Self, ApiError> {
        Ok(Self {
            id: r.id,
            key: r.key,
            name: r.name,
            version: r.version,
            retired: r.retired,
            terms: TermsIn::from_stored(r.terms)?,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

impl BillingOut {
    fn from_row(
        tenant_id: Uuid,
        row: Option<BillingRow>,
        now: DateTime<Utc>,
    ) -> Result<Self, ApiError> {
        let Some(r) = row else {
            return Ok(Self {
                tenant_id,
                plan: None,
                status: None,
                trial_ends_at: None,
                terms: None,
                subscription: None,
                updated_at: None,
            });
        };
        Ok(Self {
            tenant_id,
            plan: Some(PlanRef {
                id: r.plan_id,
                key: r.plan_key,
                version: r.version,
            }),
            // A trial that ran out reads as unpaid at once, before the job
            // records it.
            status: Some(
                if r.status == "trialing" && r.trial_ends_at.is_some_and(|end| end <= now) {
                    "unpaid".to_string()
                } else {
                    r.status
                },
            ),
            trial_ends_at: r.trial_ends_at,
            terms: Some(TermsIn::from_stored(r.terms)?),
            subscription: r.subscription_id.map(|id| SubscriptionOut {
                id,
                current_period_end: r.current_period_end,
                cancel_at_period_end: r.cancel_at_period_end,
            }),
            updated_at: Some(r.updated_at),
        })
    }
}

async fn post_plan(
    State(state): State<AppState>,
    ctx: Context,
    PlatformAdmin(admin): PlatformAdmin,
    Json(body): Json<PlanIn>,
) -> Result<(StatusCode, axum::Json<PlanOut>), ApiError> {
    let mut v = Validation::default();
    let key = v.check("key", Slug::parse(&body.key));
    let name = v.check("name", Label::parse(&body.name));
    let terms = body.terms.parse(&mut v);
    v.finish()?;
    let (Some(key), Some(name), Some(terms)) = (key, name, terms) else {
        return Err(ApiError::internal("validation passed without values"));
    };
    let row = billing::create_plan(&state, &ctx, &admin, key, name, terms).await?;
    Ok((StatusCode::CREATED, axum::Json(PlanOut::from_row(row)?)))
}

async fn list_plans(
    State(state): State<AppState>,
    _admin: PlatformAdmin,
) -> Result<axum::Json<crate::extract::ListOut<PlanOut>>, ApiError> {
    let rows = state.reads.billing().plans().await?;
    Ok(axum::Json(crate::extract::ListOut {
        data: rows
            .into_iter()
            .map(PlanOut::from_row)
            .collect::<Result<_, _>>()?,
        next_cursor: None,
    }))
}

async fn post_plan_version(
    State(state): State<AppState>,
    ctx: Context,
    PlatformAdmin(admin): PlatformAdmin,
    PlanPath(key): PlanPath,
    Json(body): Json<TermsIn>,
) -> Result<axum::Json<PlanOut>, ApiError> {
    let mut v = Validation::default();
    let terms = body.parse(&mut v);
    v.finish()?;
    let terms = terms.ok_or_else(|| ApiError::internal("validation passed without values"))?;
    let row = billing::publish_version(&state, &ctx, &admin, &key, terms).await?;
    Ok(axum::Json(PlanOut::from_row(row)?))
}

async fn retire_plan(
    State(state): State<AppState>,
    ctx: Context,
    PlatformAdmin(admin): PlatformAdmin,
    PlanPath(key): PlanPath,
) -> Result<axum::Json<PlanOut>, ApiError> {
    let row = billing::retire_plan(&state, &ctx, &admin, &key).await?;
    Ok(axum::Json(PlanOut::from_row(row)?))
}

async fn get_billing(
    State(state): State<AppState>,
    scope: TenantScope,
) -> Result<axum::Json<BillingOut>, ApiError> {
    let row = state.reads.billing().tenant(scope.tenant_id).await?;
    Ok(axum::Json(BillingOut::from_row(
        scope.tenant_id,
        row,
        state.now(),
    )?))
}

/// An invoice; amounts in minor units of `currency`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct InvoiceOut {
    id: String,
    number: Option<String>,
    /// Stripe's: `draft`, `open`, `paid`, `uncollectible`, `void`.
    status: String,
    currency: String,
    amount_due: i64,
    amount_paid: i64,
    hosted_invoice_url: Option<String>,
    invoice_pdf: Option<String>,
    period_start: Option<DateTime<Utc>>,
    period_end: Option<DateTime<Utc>>,
}

async fn list_invoices(
    State(state): State<AppState>,
    scope: TenantScope,
) -> Result<axum::Json<crate::extract::ListOut<InvoiceOut>>, ApiError> {
    let rows = state.reads.billing().invoices(scope.tenant_id).await?;
    Ok(axum::Json(crate::extract::ListOut {
        data: rows
            .into_iter()
            .map(|r| InvoiceOut {
                id: r.id,
                number: r.number,
                status: r.status,
                currency: r.currency,
                amount_due: r.amount_due,
                amount_paid: r.amount_paid,
                hosted_invoice_url: r.hosted_invoice_url,
                invoice_pdf: r.invoice_pdf,
                period_start: r.period_start,
                period_end: r.period_end,
            })
            .collect(),
        next_cursor: None,
    }))
}

async fn put_plan(
    State(state): State<AppState>,
    ctx: Context,
    PlatformAdmin(admin): PlatformAdmin,
    TenantIdPath(tenant_id): TenantIdPath,
    Json(body): Json<AssignIn>,
) -> Result<axum::Json<BillingOut>, ApiError> {
    record_tenant(tenant_id);
    let row = billing::assign_plan(&state, &ctx, &admin, tenant_id, &body.plan, body.trial).await?;
    Ok(axum::Json(BillingOut::from_row(
        tenant_id,
        Some(row),
        state.now(),
    )?))
}

/// A Stripe-hosted page to send the user to.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionOut {
    /// Stripe's session id.
    id: String,
    url: String,
}

impl From<billing::StripeSession> for SessionOut {
    fn from(s: billing::StripeSession) -> Self {
        Self {
            id: s.id,
            url: s.url,
        }
    }
}

async fn post_checkout(
    State(state): State<AppState>,
    ctx: Context,
    scope: TenantScope,
    Json(body): Json<CheckoutIn>,
) -> Result<axum::Json<SessionOut>, ApiError> {
    let session = billing::checkout(
        &state,
        &ctx,
        &scope.principal.actor(),
        scope.tenant_id,
        &body.plan,
    )
    .await?;
    Ok(axum::Json(session.into()))
}

async fn post_portal(
    State(state): State<AppState>,
    scope: TenantScope,
) -> Result<axum::Json<SessionOut>, ApiError> {
    Ok(axum::Json(
        billing::portal(&state, scope.tenant_id).await?.into(),
    ))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ReconciliationOut {
    /// `null`: no reconciliation has run yet (Stripe not configured, or
    /// the first scheduled run is still ahead).
    last: Option<crate::service::billing_reconcile::Report>,
}

async fn get_reconciliation(
    State(state): State<AppState>,
    _admin: PlatformAdmin,
) -> Result<axum::Json<ReconciliationOut>, ApiError> {
    Ok(axum::Json(ReconciliationOut {
        last: crate::service::billing_reconcile::last(&state).await?,
    }))
}
