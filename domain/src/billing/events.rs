use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{BillingStatus, Invoice};
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
    /// A Stripe event set the subscription's state (`stripe_event_id`
    /// names it; each is applied at most once).
    SubscriptionSynced {
        stripe_event_id: String,
        subscription_id: String,
        status: BillingStatus,
        cancel_at_period_end: bool,
        current_period_end: Option<DateTime<Utc>>,
        observed_at: DateTime<Utc>,
    },
    /// A Stripe event set an invoice's state.
    InvoiceRecorded {
        stripe_event_id: String,
        invoice: Invoice,
        observed_at: DateTime<Utc>,
    },
    /// The trial ran out without a subscription: the tenant is `unpaid`
    /// (its changes are refused with 402 until it pays or gets a plan).
    TrialEnded {},
}

crate::stored_event!(BillingEvent);

impl UniqueClaims for BillingEvent {
    fn claim_changes(&self) -> Vec<ClaimChange> {
        match self {
            Self::SubscriptionSynced {
                stripe_event_id, ..
            }
            | Self::InvoiceRecorded {
                stripe_event_id, ..
            } => vec![ClaimChange::Claim {
                scope: ClaimScope::StripeEvent,
                value: stripe_event_id.clone(),
            }],
            _ => Vec::new(),
        }
    }
}
