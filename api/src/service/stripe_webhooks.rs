//! Stripe's webhook deliveries: verified against the endpoint secrets
//! before anything is read, decoded into the few fields Tenantry uses, and
//! applied to the tenant's Billing aggregate. Deliveries come more than
//! once and out of order: each event id is claimed with the events it
//! causes (a replay changes nothing), and a state older than the last one
//! applied never moves a subscription backwards. An invoice event is news
//! about its subscription: with Stripe's API configured, the subscription
//! is fetched (as Stripe advises) and synced in the same step. Unknown event
//! types are acknowledged and ignored; a failure answers 5xx, so Stripe
//! delivers again.

use serde::Deserialize;
use serde_json::Value;
use tenantry_domain::billing::BillingCommand;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::Context;
use crate::service::stripe_sync::{self, at, stripe_failed};
use crate::state::AppState;
use crate::stripe_api;
use crate::stripe_signature::{self, SignatureError};

/// What became of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// Known, but changed nothing (a replay, an older event, a tenant
    /// nobody knows, an unknown type).
    Ignored,
}

#[derive(Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    created: i64,
    data: EventData,
}

#[derive(Deserialize)]
struct EventData {
    object: Value,
}

/// The fields of a Checkout Session Tenantry reads.
#[derive(Deserialize)]
struct CheckoutSession {
    customer: Option<Value>,
    client_reference_id: Option<String>,
    #[serde(default)]
    metadata: std::collections::HashMap<String, String>,
}

fn bad_signature(e: SignatureError) -> ApiError {
    ApiError::bad_request("invalid_signature", e.to_string())
}

/// Verify and apply one delivery.
pub async fn receive(
    state: &AppState,
    ctx: &Context,
    signature: Option<&str>,
    body: &[u8],
) -> Result<Outcome, ApiError> {
    let secrets = &state.config.stripe_webhook_secrets;
    if secrets.is_empty() {
        return Err(stripe_sync::not_configured());
    }
    let header = signature.ok_or_else(|| bad_signature(SignatureError::Malformed))?;
    stripe_signature::verify(header, body, secrets, state.now()).map_err(bad_signature)?;
    let event: Event = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request("malformed_event", format!("not a Stripe event: {e}"))
    })?;
    let applied = match event.kind.as_str() {
        "checkout.session.completed" => checkout_completed(state, ctx, event).await?,
        kind if kind.starts_with("customer.subscription.") => {
            subscription_changed(state, ctx, event).await?
        }
        kind if kind.starts_with("invoice.") => invoice_changed(state, ctx, event).await?,
        _ => false,
    };
    Ok(if applied {
        Outcome::Applied
    } else {
        Outcome::Ignored
    })
}

async fn run(
    state: &AppState,
    ctx: &Context,
    tenant_id: Uuid,
    command: BillingCommand,
) -> Result<bool, ApiError> {
    stripe_sync::apply(
        state,
        Some(ctx.request_id.clone()),
        "stripe",
        tenant_id,
        command,
    )
    .await
}

/// A completed checkout names the tenant's customer.
async fn checkout_completed(
    state: &AppState,
    ctx: &Context,
    event: Event,
) -> Result<bool, ApiError> {
    let Ok(session) = serde_json::from_value::<CheckoutSession>(event.data.object) else {
        return Ok(false);
    };
    let tenant_id = session
        .client_reference_id
        .as_deref()
        .or(session.metadata.get("tenant_id").map(String::as_str))
        .and_then(|t| Uuid::parse_str(t).ok());
    let (Some(tenant_id), Some(customer_id)) =
        (tenant_id, stripe_api::id_of(session.customer.as_ref()))
    else {
        tracing::warn!(stripe_event = %event.id, "a checkout without a tenant or customer; ignored");
        return Ok(false);
    };
    let command = BillingCommand::LinkCustomer {
        customer_id,
        stripe_event_id: Some(event.id),
    };
    run(state, ctx, tenant_id, command).await
}

async fn subscription_changed(
    state: &AppState,
    ctx: &Context,
    event: Event,
) -> Result<bool, ApiError> {
    let Ok(subscription) = serde_json::from_value::<stripe_api::Subscription>(event.data.object)
    else {
        return Ok(false);
    };
    let Some(tenant_id) = stripe_sync::tenant_of_subscription(state, &subscription).await? else {
        tracing::warn!(stripe_event = %event.id, "a subscription event without a tenant; ignored");
        return Ok(false);
    };
    let deleted = event.kind == "customer.subscription.deleted";
    // With Stripe's API, the subscription as it stands now rather than as
    // the event saw it (Stripe's advice): deliveries out of order then
    // cannot move it back, and states within one second of each other
    // (Stripe's timestamps are whole seconds) are ordered by when they
    // were read.
    let (subscription, fetched, observed_at) = match state.stripe.as_ref() {
        Some(api) => match api.subscription(&subscription.id).await {
            Ok(current) => (current, true, state.now()),
            Err(e) if e.not_found() => (subscription, false, created_at(state, event.created)),
            Err(e) => return Err(stripe_failed(e)),
        },
        None => (subscription, false, created_at(state, event.created)),
    };
    let deleted = deleted && !fetched;
    let Some(sub_state) = stripe_sync::subscription_state(state, &subscription, deleted).await?
    else {
        return Ok(false);
    };
    let command = BillingCommand::SyncSubscription {
        stripe_event_id: Some(event.id),
        fetched,
        state: sub_state,
        observed_at,
    };
    run(state, ctx, tenant_id, command).await
}

/// When Stripe created the event.
fn created_at(state: &AppState, created: i64) -> chrono::DateTime<chrono::Utc> {
    at(created).unwrap_or_else(|| state.now())
}

/// An invoice's state, recorded for its tenant; with Stripe's API, its
/// subscription as it stands now too (a payment that failed or went
/// through moves it).
async fn invoice_changed(state: &AppState, ctx: &Context, event: Event) -> Result<bool, ApiError> {
    let Ok(invoice) = serde_json::from_value::<stripe_api::Invoice>(event.data.object) else {
        return Ok(false);
    };
    let Some(tenant_id) = stripe_sync::tenant_of_invoice(state, &invoice).await? else {
        tracing::warn!(stripe_event = %event.id, "an invoice event without a tenant; ignored");
        return Ok(false);
    };
    // With Stripe's API, the invoice and its subscription as they stand now
    // (several invoice events share one second: `invoice.created` and
    // `invoice.payment_succeeded` often do).
    let Some(api) = state.stripe.as_ref() else {
        let command = BillingCommand::RecordInvoice {
            stripe_event_id: Some(event.id),
            invoice: stripe_sync::invoice_of(&invoice),
            observed_at: created_at(state, event.created),
            subscription: None,
        };
        return run(state, ctx, tenant_id, command).await;
    };
    let (invoice, observed_at) = match api.invoice(&invoice.id).await {
        Ok(current) => (current, state.now()),
        Err(e) if e.not_found() => (invoice, created_at(state, event.created)),
        Err(e) => return Err(stripe_failed(e)),
    };
    let mut subscription = None;
    if let Some(sub_id) = invoice.subscription_id() {
        let fetched = api.subscription(&sub_id).await.map_err(stripe_failed)?;
        let fetched_at = state.now();
        subscription = stripe_sync::subscription_state(state, &fetched, false)
            .await?
            .map(|s| (s, fetched_at));
    }
    let command = BillingCommand::RecordInvoice {
        stripe_event_id: Some(event.id),
        invoice: stripe_sync::invoice_of(&invoice),
        observed_at,
        subscription,
    };
    run(state, ctx, tenant_id, command).await
}
