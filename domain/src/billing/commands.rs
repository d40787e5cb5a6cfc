use chrono::{DateTime, Utc};

use super::{Invoice, SubscriptionState};
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
    /// Take a subscription's state from Stripe. A state older than the last
    /// one applied never moves the subscription backwards.
    SyncSubscription {
        /// The Stripe event that carried (or, `fetched`, caused) it; `None`:
        /// the reconciler read it from Stripe's API.
        stripe_event_id: Option<String>,
        /// Read from Stripe's API rather than from the event's own object.
        fetched: bool,
        state: SubscriptionState,
        /// When Stripe created the event, or when the object was fetched.
        observed_at: DateTime<Utc>,
    },
    /// Take an invoice's state from Stripe; a state older than the last one
    /// applied to that invoice changes nothing. With `subscription`, the
    /// subscription as fetched from Stripe at that time is synced in the
    /// same step (an invoice event is news about its subscription).
    RecordInvoice {
        stripe_event_id: Option<String>,
        invoice: Invoice,
        observed_at: DateTime<Utc>,
        subscription: Option<(SubscriptionState, DateTime<Utc>)>,
    },
    /// The tenant's Stripe customer: created on its first checkout, or
    /// learnt from a completed Checkout Session.
    LinkCustomer {
        customer_id: String,
        stripe_event_id: Option<String>,
    },
    /// Record that a trial ran out without a subscription (the job that
    /// looks for them; reads and the guard treat it as ended already).
    EndTrial { now: DateTime<Utc> },
}
