//! Billing's use cases: the plan catalogue, a platform admin putting a
//! tenant on a plan (manual mode), and with Stripe configured, Checkout and
//! the billing portal (the tenant's Stripe customer is created on first
//! need). Without Stripe they answer 409 `billing_not_configured`.

use tenantry_domain::billing::{Billing, BillingCommand};
use tenantry_domain::plan::{Plan, PlanCommand, PlanTerms};
use tenantry_domain::tenant::Tenant;
use tenantry_domain::values::{Label, Slug};
use tenantry_domain::{PlanId, PLATFORM_TENANT};
use tenantry_projections::billing::{BillingRow, PlanRow};
use uuid::Uuid;

use crate::credentials::Caller;
use crate::error::ApiError;
use crate::extract::Context;
use crate::service::stripe_sync;
use crate::state::AppState;
use crate::stripe_api::StripeApiError;

/// Where Stripe sends the user next.
pub struct StripeSession {
    pub id: String,
    pub url: String,
}

pub fn plan_not_found() -> ApiError {
    ApiError::not_found("plan_not_found", "no such plan")
}

pub use crate::service::stripe_sync::not_configured;

async fn plan_row(state: &AppState, key: &str) -> Result<PlanRow, ApiError> {
    state
        .reads
        .billing()
        .plan_by_key(key)
        .await?
        .ok_or_else(plan_not_found)
}

async fn plan_id(state: &AppState, key: &str) -> Result<PlanId, ApiError> {
    state
        .store
        .plan_by_key(key)
        .await?
        .ok_or_else(plan_not_found)
}

async fn run_plan_command(
    state: &AppState,
    ctx: &Context,
    admin: &Caller,
    id: PlanId,
    command: PlanCommand,
) -> Result<(), ApiError> {
    let meta = ctx.metadata(PLATFORM_TENANT, admin.actor());
    let committed = state.store.execute::<Plan>(id, command, &meta).await?;
    state.settle(committed.written.as_ref()).await;
    Ok(())
}

/// The seats the tenant's plan includes (from the terms it holds), if it
/// has a plan with a seat limit.
pub async fn plan_seats(state: &AppState, tenant_id: Uuid) -> Result<Option<u32>, ApiError> {
    let (billing, _) = state
        .store
        .load::<Billing>(tenant_id.into())
        .await
        .map_err(ApiError::from)?;
    Ok(billing.terms.and_then(|t| t.entitlements.max_seats))
}

/// Refuse (403 `feature_not_in_plan`) a capability the tenant's plan does
/// not include. A tenant without a plan is not held back (manual mode
/// before plans were assigned).
pub async fn require_feature(
    state: &AppState,
    tenant_id: Uuid,
    feature: tenantry_domain::plan::Feature,
) -> Result<(), ApiError> {
    let (billing, _) = state
        .store
        .load::<Billing>(tenant_id.into())
        .await
        .map_err(ApiError::from)?;
    match billing.terms {
        Some(terms) if !terms.entitlements.features.contains(&feature) => {
            let name = serde_json::to_value(feature).unwrap_or_default();
            Err(ApiError::forbidden(
                "feature_not_in_plan",
                "the tenant's plan does not include this feature",
            )
            .with_details(serde_json::json!({ "feature": name })))
        }
        _ => Ok(()),
    }
}

/// A new plan at version 1.
pub async fn create_plan(
    state: &AppState,
    ctx: &Context,
    admin: &Caller,
    key: Slug,
    name: Label,
    terms: PlanTerms,
) -> Result<PlanRow, ApiError> {
    let id = PlanId::generate();
    let key_text = key.as_str().to_string();
    let command = PlanCommand::Create {
        plan_id: id,
        key,
        name,
        terms,
    };
    run_plan_command(state, ctx, admin, id, command).await?;
    plan_row(state, &key_text).await
}

/// New terms for a plan: its next version.
pub async fn publish_version(
    state: &AppState,
    ctx: &Context,
    admin: &Caller,
    key: &str,
    terms: PlanTerms,
) -> Result<PlanRow, ApiError> {
    let id = plan_id(state, key).await?;
    run_plan_command(state, ctx, admin, id, PlanCommand::PublishVersion { terms }).await?;
    plan_row(state, key).await
}

/// No new subscriptions to the plan; tenants on it keep it.
pub async fn retire_plan(
    state: &AppState,
    ctx: &Context,
    admin: &Caller,
    key: &str,
) -> Result<PlanRow, ApiError> {
    let id = plan_id(state, key).await?;
    run_plan_command(state, ctx, admin, id, PlanCommand::Retire).await?;
    plan_row(state, key).await
}

/// A plan that takes new subscribers, at its current version.
struct OpenPlan {
    id: PlanId,
    key: Slug,
    version: u32,
    terms: PlanTerms,
}

async fn open_plan(state: &AppState, key: &str) -> Result<OpenPlan, ApiError> {
    let id = plan_id(state, key).await?;
    let (plan, _) = state.store.load::<Plan>(id).await.map_err(ApiError::from)?;
    let (Some(key), Some(terms)) = (plan.key, plan.terms) else {
        return Err(plan_not_found());
    };
    if plan.retired {
        return Err(ApiError::conflict(
            "plan_retired",
            "the plan is retired: it takes no new subscriptions",
        ));
    }
    Ok(OpenPlan {
        id,
        key,
        version: plan.version,
        terms,
    })
}

/// Put a tenant on a plan's current version (manual mode), optionally
/// starting its trial. The terms come from the plan's own stream.
pub async fn assign_plan(
    state: &AppState,
    ctx: &Context,
    admin: &Caller,
    tenant_id: Uuid,
    key: &str,
    trial: bool,
) -> Result<BillingRow, ApiError> {
    let (tenant, _) = state
        .store
        .load::<Tenant>(tenant_id.into())
        .await
        .map_err(ApiError::from)?;
    if tenant.id.is_none() {
        return Err(ApiError::not_found("tenant_not_found", "tenant not found"));
    }
    let open = open_plan(state, key).await?;
    let command = BillingCommand::AssignPlan {
        plan_id: open.id,
        plan_key: open.key,
        version: open.version,
        terms: open.terms,
        trial,
        now: state.now(),
    };
    let meta = ctx.metadata(tenant_id, admin.actor());
    let committed = state
        .store
        .execute::<Billing>(tenant_id.into(), command, &meta)
        .await?;
    state.settle(committed.written.as_ref()).await;
    state
        .reads
        .billing()
        .tenant(tenant_id)
        .await?
        .ok_or_else(|| ApiError::internal("the plan was assigned but is not shown"))
}

fn session_url(session: crate::stripe_api::Session) -> Result<StripeSession, ApiError> {
    match session.url {
        Some(url) => Ok(StripeSession {
            id: session.id,
            url,
        }),
        None => Err(stripe_sync::stripe_failed(StripeApiError::Unavailable(
            "a session without a URL".into(),
        ))),
    }
}

/// The tenant's Stripe customer, created (and recorded) on first need.
async fn customer_of(
    state: &AppState,
    ctx: &Context,
    actor: &tenantry_domain::Actor,
    tenant_id: Uuid,
) -> Result<String, ApiError> {
    let (billing, _) = state
        .store
        .load::<Billing>(tenant_id.into())
        .await
        .map_err(ApiError::from)?;
    if let Some(customer) = billing.customer_id {
        return Ok(customer);
    }
    let (tenant, _) = state
        .store
        .load::<Tenant>(tenant_id.into())
        .await
        .map_err(ApiError::from)?;
    let name = tenant
        .name
        .map(|n| n.as_str().to_string())
        .unwrap_or_else(|| tenant_id.to_string());
    let api = stripe_sync::api(state)?;
    let customer = api
        .create_customer(tenant_id, &name)
        .await
        .map_err(stripe_sync::stripe_failed)?;
    let command = BillingCommand::LinkCustomer {
        customer_id: customer.id.clone(),
        stripe_event_id: None,
    };
    let meta = ctx.metadata(tenant_id, actor.clone());
    let committed = state
        .store
        .execute::<Billing>(tenant_id.into(), command, &meta)
        .await?;
    state.settle(committed.written.as_ref()).await;
    Ok(customer.id)
}

/// A Stripe Checkout Session subscribing the tenant to the plan's current
/// version (its Stripe price `tenantry_{key}_v{version}`).
pub async fn checkout(
    state: &AppState,
    ctx: &Context,
    actor: &tenantry_domain::Actor,
    tenant_id: Uuid,
    key: &str,
) -> Result<StripeSession, ApiError> {
    let OpenPlan {
        key: plan_key,
        version,
        terms,
        ..
    } = open_plan(state, key).await?;
    let api = stripe_sync::api(state)?;
    let not_for_sale = |why: &str| {
        ApiError::conflict("plan_not_for_sale", why.to_string())
            .with_details(serde_json::json!({ "plan": plan_key.as_str() }))
    };
    if terms.price_minor == 0 {
        return Err(not_for_sale(
            "a free plan is not sold through Stripe: a platform admin assigns it",
        ));
    }
    let customer = customer_of(state, ctx, actor, tenant_id).await?;
    let price = terms
        .stripe_price
        .clone()
        .unwrap_or_else(|| tenantry_domain::plan::stripe_price_id(plan_key.as_str(), version));
    let settings = state.config.stripe.as_ref().ok_or_else(not_configured)?;
    match api
        .create_checkout_session(settings, &customer, tenant_id, &price)
        .await
    {
        Ok(session) => session_url(session),
        Err(StripeApiError::Refused {
            status: 400 | 404,
            message,
        }) if message.contains(&price) => Err(not_for_sale(
            "Stripe has no price for this plan version yet: a platform admin runs `tenantry billing sync-plans`",
        )),
        Err(e) => Err(stripe_sync::stripe_failed(e)),
    }
}

/// A Stripe billing portal session for the tenant's customer.
pub async fn portal(state: &AppState, tenant_id: Uuid) -> Result<StripeSession, ApiError> {
    let api = stripe_sync::api(state)?;
    let (billing, _) = state
        .store
        .load::<Billing>(tenant_id.into())
        .await
        .map_err(ApiError::from)?;
    let customer = billing.customer_id.ok_or_else(|| {
        ApiError::conflict(
            "no_stripe_customer",
            "the tenant has no Stripe customer yet: subscribe through checkout first",
        )
    })?;
    let settings = state.config.stripe.as_ref().ok_or_else(not_configured)?;
    let session = api
        .create_portal_session(settings, &customer)
        .await
        .map_err(stripe_sync::stripe_failed)?;
    session_url(session)
}

/// What `sync-plans` did for one plan version.
pub struct PriceSync {
    pub price_id: String,
    pub outcome: PriceOutcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceOutcome {
    Created,
    Exists,
    /// Configured by the operator, and Stripe has it.
    Configured,
    /// Configured by the operator, and Stripe does not have it: checkout
    /// for this version will fail until it does.
    ConfiguredMissing,
}

/// Create in Stripe the price (a Stripe plan object, `tenantry_{key}_v{n}`)
/// of every plan's current version that is for sale and has none yet.
/// Running it again creates nothing.
pub async fn sync_plans(state: &AppState) -> Result<Vec<PriceSync>, ApiError> {
    let api = stripe_sync::api(state)?;
    let mut done = Vec::new();
    for row in state.reads.billing().plans().await? {
        if row.retired {
            continue;
        }
        let terms: PlanTerms = serde_json::from_value(row.terms)
            .map_err(|e| ApiError::internal(format!("stored plan terms: {e}")))?;
        if terms.price_minor == 0 {
            continue;
        }
        let version = u32::try_from(row.version).unwrap_or(0);
        if let Some(price_id) = terms.stripe_price.clone() {
            let exists = api
                .price_exists(&price_id)
                .await
                .map_err(stripe_sync::stripe_failed)?;
            done.push(PriceSync {
                price_id,
                outcome: if exists {
                    PriceOutcome::Configured
                } else {
                    PriceOutcome::ConfiguredMissing
                },
            });
            continue;
        }
        let price_id = tenantry_domain::plan::stripe_price_id(&row.key, version);
        let exists = api
            .plan(&price_id)
            .await
            .map_err(stripe_sync::stripe_failed)?
            .is_some();
        if !exists {
            api.create_plan(
                &price_id,
                &format!("{} (v{version})", row.name),
                terms.price_minor,
                &terms.currency,
                terms.interval,
            )
            .await
            .map_err(stripe_sync::stripe_failed)?;
        }
        done.push(PriceSync {
            price_id,
            outcome: if exists {
                PriceOutcome::Exists
            } else {
                PriceOutcome::Created
            },
        });
    }
    Ok(done)
}
