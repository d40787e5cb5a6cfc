use chrono::{DateTime, Utc};

use super::{BillingStatus, Invoice};
use crate::plan::PlanTerms;
use crate::values::Slug;
use crate::PlanId;

#[derive(Debug, Clone, PartialEq)]
pub enum BillingCommand {
    /// Put the tenant on a plan's current terms (manual mode: a platform
    /// admin decides), optionally starting the plan's trial.
    AssignPlan {
        plan_id: PlanId,
        plan_key: Slug,
        version: u32,
        terms: PlanTerms,
        /// Start the plan's trial (its `trial_days`) instead of paying at once.
        trial: bool,
        now: DateTime<Utc>,
    },
    /// Take a subscription's state from a Stripe event. An event older than
    /// the last one applied never moves the subscription backwards.
    SyncSubscription {
        stripe_event_id: String,
        subscription_id: String,
        status: BillingStatus,
        cancel_at_period_end: bool,
        current_period_end: Option<DateTime<Utc>>,
        /// When Stripe created the event.
        observed_at: DateTime<Utc>,
    },
    /// Take an invoice's state from a Stripe event; an event older than the
    /// last one applied to that invoice changes nothing.
    RecordInvoice {
        stripe_event_id: String,
        invoice: Invoice,
        observed_at: DateTime<Utc>,
    },
    /// Record that a trial ran out without a subscription (the job that
    /// looks for them; reads and the guard treat it as ended already).
    EndTrial { now: DateTime<Utc> },
}
