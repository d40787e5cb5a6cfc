//! Stripe's webhook deliveries: verified against the endpoint secrets
//! before anything is read, decoded into the few fields Tenantry uses, and
//! applied to the tenant's Billing aggregate. Deliveries come more than
//! once and out of order: each event id is claimed with the events it
//! causes (a replay changes nothing), and an event older than the last one
//! applied never moves a subscription backwards. Unknown event types are
//! acknowledged and ignored.

use chrono::{DateTime, TimeZone, Utc};
use serde::Deserialize;
use serde_json::Value;
use tenantry_domain::billing::{Billing, BillingCommand, BillingStatus, Invoice};
use tenantry_domain::{Actor, EventMetadata};
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::Context;
use crate::state::AppState;
use crate::store::CommandError;
use crate::stripe_signature::{self, SignatureError};

/// What became of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// Known, but changed nothing (a replay, an older event, a tenant
    /// without a plan to attach it to, an unknown type).
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

/// The fields of a subscription object Tenantry reads.
#[derive(Deserialize)]
struct Subscription {
    id: String,
    status: String,
    #[serde(default)]
    cancel_at_period_end: bool,
    current_period_end: Option<i64>,
    #[serde(default)]
    metadata: std::collections::HashMap<String, String>,
}

/// The fields of an invoice object Tenantry reads.
#[derive(Deserialize)]
struct StripeInvoice {
    id: String,
    number: Option<String>,
    status: Option<String>,
    currency: Option<String>,
    #[serde(default)]
    amount_due: i64,
    #[serde(default)]
    amount_paid: i64,
    hosted_invoice_url: Option<String>,
    invoice_pdf: Option<String>,
    period_start: Option<i64>,
    period_end: Option<i64>,
    subscription: Option<Value>,
    #[serde(default)]
    metadata: std::collections::HashMap<String, String>,
    subscription_details: Option<Value>,
}

fn bad_signature(e: SignatureError) -> ApiError {
    ApiError::bad_request("invalid_signature", e.to_string())
}

fn status_of(stripe: &str) -> Option<BillingStatus> {
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

/// Verify and apply one delivery.
pub async fn receive(
    state: &AppState,
    ctx: &Context,
    signature: Option<&str>,
    body: &[u8],
) -> Result<Outcome, ApiError> {
    let secrets = &state.config.stripe_webhook_secrets;
    if secrets.is_empty() {
        return Err(crate::service::billing::not_configured());
    }
    let header = signature.ok_or_else(|| bad_signature(SignatureError::Malformed))?;
    stripe_signature::verify(header, body, secrets, state.now()).map_err(bad_signature)?;
    let event: Event = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request("malformed_event", format!("not a Stripe event: {e}"))
    })?;
    let deleted = event.kind == "customer.subscription.deleted";
    if event.kind.starts_with("invoice.") {
        return receive_invoice(state, ctx, event).await;
    }
    if !event.kind.starts_with("customer.subscription.") {
        return Ok(Outcome::Ignored);
    }
    let Ok(subscription) = serde_json::from_value::<Subscription>(event.data.object) else {
        return Ok(Outcome::Ignored);
    };
    let Some(tenant_id) = subscription
        .metadata
        .get("tenant_id")
        .and_then(|t| Uuid::parse_str(t).ok())
    else {
        tracing::warn!(stripe_event = %event.id, "a subscription event without a tenant; ignored");
        return Ok(Outcome::Ignored);
    };
    let status = if deleted {
        Some(BillingStatus::Canceled)
    } else {
        status_of(&subscription.status)
    };
    let Some(status) = status else {
        return Ok(Outcome::Ignored);
    };
    let command = BillingCommand::SyncSubscription {
        stripe_event_id: event.id.clone(),
        subscription_id: subscription.id,
        status,
        cancel_at_period_end: subscription.cancel_at_period_end,
        current_period_end: subscription.current_period_end.and_then(at),
        observed_at: at(event.created).unwrap_or_else(|| state.now()),
    };
    apply(state, ctx, tenant_id, command).await
}

fn at(seconds: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_opt(seconds, 0).single()
}

/// An invoice event: the invoice's state, recorded for its tenant (from
/// the invoice's metadata, its subscription's, or the tenant that
/// subscription belongs to).
async fn receive_invoice(
    state: &AppState,
    ctx: &Context,
    event: Event,
) -> Result<Outcome, ApiError> {
    let Ok(invoice) = serde_json::from_value::<StripeInvoice>(event.data.object) else {
        return Ok(Outcome::Ignored);
    };
    let from_metadata = invoice
        .metadata
        .get("tenant_id")
        .cloned()
        .or_else(|| {
            invoice.subscription_details.as_ref()?["metadata"]["tenant_id"]
                .as_str()
                .map(str::to_string)
        })
        .and_then(|t| Uuid::parse_str(&t).ok());
    let subscription = invoice.subscription.as_ref().and_then(|s| match s {
        Value::String(id) => Some(id.clone()),
        other => other["id"].as_str().map(str::to_string),
    });
    let tenant_id = match (from_metadata, subscription) {
        (Some(t), _) => Some(t),
        (None, Some(sub)) => state.reads.billing().tenant_of_subscription(&sub).await?,
        (None, None) => None,
    };
    let Some(tenant_id) = tenant_id else {
        tracing::warn!(stripe_event = %event.id, "an invoice event without a tenant; ignored");
        return Ok(Outcome::Ignored);
    };
    let command = BillingCommand::RecordInvoice {
        stripe_event_id: event.id,
        invoice: Invoice {
            id: invoice.id,
            number: invoice.number,
            status: invoice.status.unwrap_or_else(|| "draft".into()),
            currency: invoice.currency.unwrap_or_default(),
            amount_due: invoice.amount_due,
            amount_paid: invoice.amount_paid,
            hosted_invoice_url: invoice.hosted_invoice_url,
            invoice_pdf: invoice.invoice_pdf,
            period_start: invoice.period_start.and_then(at),
            period_end: invoice.period_end.and_then(at),
        },
        observed_at: at(event.created).unwrap_or_else(|| state.now()),
    };
    apply(state, ctx, tenant_id, command).await
}

/// Run a billing command for a Stripe event; a replayed event id changes
/// nothing.
async fn apply(
    state: &AppState,
    ctx: &Context,
    tenant_id: Uuid,
    command: BillingCommand,
) -> Result<Outcome, ApiError> {
    let meta = EventMetadata::new(
        tenant_id,
        Actor::system("stripe"),
        Some(ctx.request_id.clone()),
        ctx.now,
    );
    match state
        .store
        .execute::<Billing>(tenant_id.into(), command, &meta)
        .await
    {
        Ok(committed) if committed.written.is_some() => {
            state.settle(committed.written.as_ref()).await;
            Ok(Outcome::Applied)
        }
        Ok(_) => Ok(Outcome::Ignored),
        // Applied by an earlier delivery.
        Err(CommandError::Claimed(tenantry_domain::ClaimScope::StripeEvent)) => {
            Ok(Outcome::Ignored)
        }
        Err(e) => Err(e.into()),
    }
}
