//! From Stripe's objects to the Billing aggregate's commands, shared by the
//! webhook receiver and the reconciler: which tenant an object belongs to,
//! which plan version a price stands for, and the subscription's state.

use chrono::{DateTime, TimeZone, Utc};
use tenantry_domain::billing::{
    Billing, BillingCommand, BillingStatus, Invoice, SubscribedPlan, SubscriptionState,
};
use tenantry_domain::plan::{parse_stripe_price_id, Plan};
use tenantry_domain::{Actor, EventMetadata};
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;
use crate::store::CommandError;
use crate::stripe_api::{self, StripeApi, StripeApiError};

/// Stripe did not do what was asked: 502, retried by the caller (Stripe
/// retries a webhook answered so). The cause is logged, not answered.
pub fn stripe_failed(e: StripeApiError) -> ApiError {
    let mut error = ApiError::new(
        axum::http::StatusCode::BAD_GATEWAY,
        "stripe_unavailable",
        "Stripe did not complete the request; retry shortly",
    );
    if let StripeApiError::Refused { status, .. } = &e {
        error = error.with_details(serde_json::json!({ "stripe_status": status }));
    }
    error.internal = Some(e.to_string());
    error
}

/// 409 `billing_not_configured`: Stripe is not set up here.
pub fn not_configured() -> ApiError {
    ApiError::conflict(
        "billing_not_configured",
        "Stripe is not configured on this installation: a platform admin assigns plans",
    )
}

/// The Stripe API, or 409 `billing_not_configured`.
pub fn api(state: &AppState) -> Result<&StripeApi, ApiError> {
    state.stripe.as_ref().ok_or_else(not_configured)
}

pub fn at(seconds: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_opt(seconds, 0).single()
}

pub fn status_of(stripe: &str) -> Option<BillingStatus> {
    Some(match stripe {
        "trialing" => BillingStatus::Trialing,
        "active" => BillingStatus::Active,
        "past_due" => BillingStatus::PastDue,
        "canceled" | "incomplete_expired" => BillingStatus::Canceled,
        "unpaid" => BillingStatus::Unpaid,
        "incomplete" => BillingStatus::Incomplete,
        _ => return None,
    })
}

/// The plan version a Stripe price stands for: one of Tenantry's names
/// (`tenantry_{key}_v{n}`), or a price an operator configured for a
/// version; `None` when Tenantry has neither.
pub async fn plan_of_price(
    state: &AppState,
    price_id: &str,
) -> Result<Option<SubscribedPlan>, ApiError> {
    let (id, version) = match parse_stripe_price_id(price_id) {
        Some((key, version)) => match state.store.plan_by_key(key).await? {
            Some(id) => (id, version),
            None => return Ok(None),
        },
        None => match state.reads.billing().plan_of_price(price_id).await? {
            Some((id, version)) => (id.into(), u32::try_from(version).unwrap_or(0)),
            None => return Ok(None),
        },
    };
    let (plan, _) = state.store.load::<Plan>(id).await.map_err(ApiError::from)?;
    let (Some(plan_key), Some(terms)) = (plan.key, plan.versions.get(&version).cloned()) else {
        return Ok(None);
    };
    Ok(Some(SubscribedPlan {
        plan_id: id.as_uuid(),
        plan_key,
        version,
        terms,
    }))
}

/// A subscription's state as Tenantry keeps it; `None` for a status
/// Tenantry does not know (`paused`).
pub async fn subscription_state(
    state: &AppState,
    subscription: &stripe_api::Subscription,
    deleted: bool,
) -> Result<Option<SubscriptionState>, ApiError> {
    let status = if deleted {
        Some(BillingStatus::Canceled)
    } else {
        status_of(&subscription.status)
    };
    let Some(status) = status else {
        return Ok(None);
    };
    let mut plan = None;
    for price in subscription.price_ids() {
        if let Some(found) = plan_of_price(state, &price).await? {
            plan = Some(found);
            break;
        }
    }
    Ok(Some(SubscriptionState {
        subscription_id: subscription.id.clone(),
        status,
        cancel_at_period_end: subscription.cancel_at_period_end,
        current_period_end: subscription.period_end().and_then(at),
        customer_id: subscription.customer_id(),
        plan,
    }))
}

fn tenant_in(metadata: &std::collections::HashMap<String, String>) -> Option<Uuid> {
    metadata
        .get("tenant_id")
        .and_then(|t| Uuid::parse_str(t).ok())
}

/// The tenant a subscription belongs to: its metadata, else its customer's
/// or its own link in Tenantry.
pub async fn tenant_of_subscription(
    state: &AppState,
    subscription: &stripe_api::Subscription,
) -> Result<Option<Uuid>, ApiError> {
    if let Some(t) = tenant_in(&subscription.metadata) {
        return Ok(Some(t));
    }
    if let Some(t) = state
        .reads
        .billing()
        .tenant_of_subscription(&subscription.id)
        .await?
    {
        return Ok(Some(t));
    }
    match subscription.customer_id() {
        Some(c) => Ok(state.reads.billing().tenant_of_customer(&c).await?),
        None => Ok(None),
    }
}

/// The tenant an invoice belongs to: its or its subscription's metadata,
/// else the tenant of its subscription or customer.
pub async fn tenant_of_invoice(
    state: &AppState,
    invoice: &stripe_api::Invoice,
) -> Result<Option<Uuid>, ApiError> {
    if let Some(t) = invoice
        .tenant_id_text()
        .and_then(|t| Uuid::parse_str(&t).ok())
    {
        return Ok(Some(t));
    }
    if let Some(sub) = invoice.subscription_id() {
        if let Some(t) = state.reads.billing().tenant_of_subscription(&sub).await? {
            return Ok(Some(t));
        }
    }
    match stripe_api::id_of(invoice.customer.as_ref()) {
        Some(c) => Ok(state.reads.billing().tenant_of_customer(&c).await?),
        None => Ok(None),
    }
}

pub fn invoice_of(invoice: &stripe_api::Invoice) -> Invoice {
    Invoice {
        id: invoice.id.clone(),
        number: invoice.number.clone(),
        status: invoice.status.clone().unwrap_or_else(|| "draft".into()),
        currency: invoice.currency.clone().unwrap_or_default(),
        amount_due: invoice.amount_due,
        amount_paid: invoice.amount_paid,
        hosted_invoice_url: invoice.hosted_invoice_url.clone(),
        invoice_pdf: invoice.invoice_pdf.clone(),
        period_start: invoice.period_start.and_then(at),
        period_end: invoice.period_end.and_then(at),
    }
}

/// Run a billing command on Stripe's behalf (actor `system:{actor}`).
/// `Ok(true)` when it recorded something; a Stripe event id claimed by an
/// earlier delivery is `Ok(false)`.
pub async fn apply(
    state: &AppState,
    request_id: Option<String>,
    actor: &str,
    tenant_id: Uuid,
    command: BillingCommand,
) -> Result<bool, ApiError> {
    let meta = EventMetadata::new(tenant_id, Actor::system(actor), request_id, state.now());
    match state
        .store
        .execute::<Billing>(tenant_id.into(), command, &meta)
        .await
    {
        Ok(committed) if committed.written.is_some() => {
            state.settle(committed.written.as_ref()).await;
            Ok(true)
        }
        Ok(_) => Ok(false),
        Err(CommandError::Claimed(tenantry_domain::ClaimScope::StripeEvent)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}
