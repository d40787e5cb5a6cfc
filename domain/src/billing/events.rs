use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{BillingStatus, Invoice, SubscribedPlan};
use crate::claims::{ClaimChange, ClaimScope, UniqueClaims};
use crate::plan::PlanTerms;
use crate::values::Slug;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum BillingEvent {
    /// The tenant holds these terms of the plan from now on.
    PlanAssigned {
        plan_id: Uuid,
        plan_key: Slug,
        version: u32,
        terms: PlanTerms,
        status: BillingStatus,
        trial_ends_at: Option<DateTime<Utc>>,
    },
    /// Stripe set the subscription's state: a Stripe event
    /// (`stripe_event_id` names it; each is applied at most once), the
    /// subscription fetched because of one (`fetched`), or the reconciler
    /// (no event id, actor `system:reconciler`).
    SubscriptionSynced {
        stripe_event_id: Option<String>,
        #[serde(default)]
        fetched: bool,
        subscription_id: String,
        status: BillingStatus,
        cancel_at_period_end: bool,
        current_period_end: Option<DateTime<Utc>>,
        #[serde(default)]
        customer_id: Option<String>,
        /// The plan version the subscription's price stands for, when it is
        /// not the one the tenant held: the tenant holds it from now on.
        #[serde(default)]
        plan: Option<SubscribedPlan>,
        observed_at: DateTime<Utc>,
    },
    /// Stripe set an invoice's state (an event, or the reconciler).
    InvoiceRecorded {
        stripe_event_id: Option<String>,
        invoice: Invoice,
        observed_at: DateTime<Utc>,
    },
    /// The tenant's Stripe customer.
    StripeCustomerLinked {
        customer_id: String,
        stripe_event_id: Option<String>,
    },
    /// The trial ran out without a subscription: the tenant is `unpaid`
    /// (its changes are refused with 402 until it pays or gets a plan).
    TrialEnded {},
}

crate::stored_event!(BillingEvent);

impl UniqueClaims for BillingEvent {
    fn claim_changes(&self) -> Vec<ClaimChange> {
        match self {
            // Fetched on account of an event: the event's claim may be
            // its invoice's (recorded in the same step), so the sync
            // claims a value of its own.
            Self::SubscriptionSynced {
                stripe_event_id: Some(id),
                fetched: true,
                ..
            } => vec![ClaimChange::Claim {
                scope: ClaimScope::StripeEvent,
                value: format!("{id}:subscription"),
            }],
            Self::SubscriptionSynced {
                stripe_event_id: Some(id),
                fetched: false,
                ..
            }
            | Self::InvoiceRecorded {
                stripe_event_id: Some(id),
                ..
            }
            | Self::StripeCustomerLinked {
                stripe_event_id: Some(id),
                ..
            } => vec![ClaimChange::Claim {
                scope: ClaimScope::StripeEvent,
                value: id.clone(),
            }],
            _ => Vec::new(),
        }
    }
}
