use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{BillingCommand, BillingError, BillingEvent};
use crate::plan::PlanTerms;
use crate::values::Slug;

/// A subscription's status, as Stripe names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BillingStatus {
    Trialing,
    Active,
    PastDue,
    Canceled,
    Unpaid,
    Incomplete,
}

impl BillingStatus {
    pub const ALL: [Self; 6] = [
        Self::Trialing,
        Self::Active,
        Self::PastDue,
        Self::Canceled,
        Self::Unpaid,
        Self::Incomplete,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trialing => "trialing",
            Self::Active => "active",
            Self::PastDue => "past_due",
            Self::Canceled => "canceled",
            Self::Unpaid => "unpaid",
            Self::Incomplete => "incomplete",
        }
    }
}

/// An invoice as Stripe describes it; amounts in minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    pub id: String,
    pub number: Option<String>,
    pub status: String,
    pub currency: String,
    pub amount_due: i64,
    pub amount_paid: i64,
    pub hosted_invoice_url: Option<String>,
    pub invoice_pdf: Option<String>,
    pub period_start: Option<DateTime<Utc>>,
    pub period_end: Option<DateTime<Utc>>,
}

/// A plan version a Stripe subscription pays for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscribedPlan {
    pub plan_id: Uuid,
    pub plan_key: Slug,
    pub version: u32,
    pub terms: PlanTerms,
}

/// A Stripe subscription as Tenantry keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionState {
    pub subscription_id: String,
    pub status: BillingStatus,
    pub cancel_at_period_end: bool,
    pub current_period_end: Option<DateTime<Utc>>,
    pub customer_id: Option<String>,
    /// The plan version its price stands for, when Tenantry knows it.
    pub plan: Option<SubscribedPlan>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Billing {
    pub plan_id: Option<Uuid>,
    pub plan_key: Option<Slug>,
    pub version: u32,
    pub terms: Option<PlanTerms>,
    pub status: Option<BillingStatus>,
    pub trial_ends_at: Option<DateTime<Utc>>,
    /// The Stripe customer, once created or seen.
    pub customer_id: Option<String>,
    /// The Stripe subscription, once one was seen.
    pub subscription_id: Option<String>,
    pub cancel_at_period_end: bool,
    pub current_period_end: Option<DateTime<Utc>>,
    /// When Stripe created the last event applied.
    pub last_observed_at: Option<DateTime<Utc>>,
    /// When the subscription last became `past_due` (a payment failed).
    pub past_due_since: Option<DateTime<Utc>>,
    /// Per invoice, when Stripe created the last event applied to it.
    pub invoices_observed: std::collections::BTreeMap<String, DateTime<Utc>>,
}

impl Billing {
    /// In its tenant's chain.
    fn chain_of(&self, _id: crate::TenantId, _actor: &crate::Actor) -> Option<Uuid> {
        None
    }

    fn decide(&self, command: BillingCommand) -> Result<Vec<BillingEvent>, BillingError> {
        match command {
            BillingCommand::AssignPlan {
                plan_id,
                plan_key,
                version,
                terms,
                trial,
                now,
            } => {
                let (status, trial_ends_at) = if trial {
                    if terms.trial_days == 0 {
                        return Err(BillingError::NoTrial);
                    }
                    (
                        BillingStatus::Trialing,
                        Some(now + chrono::Duration::days(i64::from(terms.trial_days))),
                    )
                } else {
                    (BillingStatus::Active, None)
                };
                let unchanged = self.plan_id == Some(plan_id.as_uuid())
                    && self.version == version
                    && self.status == Some(status)
                    && !trial;
                if unchanged {
                    return Ok(Vec::new());
                }
                Ok(vec![BillingEvent::PlanAssigned {
                    plan_id: plan_id.as_uuid(),
                    plan_key,
                    version,
                    terms,
                    status,
                    trial_ends_at,
                }])
            }
            BillingCommand::SyncSubscription {
                stripe_event_id,
                fetched,
                state,
                observed_at,
            } => Ok(self
                .sync(stripe_event_id, fetched, state, observed_at)
                .into_iter()
                .collect()),
            BillingCommand::RecordInvoice {
                stripe_event_id,
                invoice,
                observed_at,
                subscription,
            } => {
                let newer = self
                    .invoices_observed
                    .get(&invoice.id)
                    .is_none_or(|last| *last < observed_at);
                let mut events = Vec::new();
                if newer {
                    events.push(BillingEvent::InvoiceRecorded {
                        stripe_event_id: stripe_event_id.clone(),
                        invoice,
                        observed_at,
                    });
                }
                if let Some((state, fetched_at)) = subscription {
                    // Fetched because of this event (its claim is its own).
                    events.extend(self.sync(stripe_event_id, true, state, fetched_at));
                }
                Ok(events)
            }
            BillingCommand::LinkCustomer {
                customer_id,
                stripe_event_id,
            } => {
                if self.customer_id.as_deref() == Some(customer_id.as_str()) {
                    return Ok(Vec::new());
                }
                Ok(vec![BillingEvent::StripeCustomerLinked {
                    customer_id,
                    stripe_event_id,
                }])
            }
            BillingCommand::EndTrial { now } => {
                let ran_out = self.status == Some(BillingStatus::Trialing)
                    && self.trial_ends_at.is_some_and(|end| end <= now);
                Ok(if ran_out {
                    vec![BillingEvent::TrialEnded {}]
                } else {
                    Vec::new()
                })
            }
        }
    }

    /// The subscription's new state, unless an equal or newer one was
    /// applied already.
    fn sync(
        &self,
        stripe_event_id: Option<String>,
        fetched: bool,
        state: SubscriptionState,
        observed_at: DateTime<Utc>,
    ) -> Option<BillingEvent> {
        if self
            .last_observed_at
            .is_some_and(|last| last >= observed_at)
        {
            return None;
        }
        // The plan only when it changes what the tenant holds.
        let plan = state
            .plan
            .filter(|p| self.plan_id != Some(p.plan_id) || self.version != p.version);
        Some(BillingEvent::SubscriptionSynced {
            stripe_event_id,
            fetched,
            subscription_id: state.subscription_id,
            status: state.status,
            cancel_at_period_end: state.cancel_at_period_end,
            current_period_end: state.current_period_end,
            customer_id: state.customer_id,
            plan,
            observed_at,
        })
    }

    /// Whether the tenant may change things: not when unpaid, canceled or
    /// incomplete, nor when its trial has run out, nor when a payment has
    /// been failing for longer than `grace`.
    pub fn allows_changes(
        status: BillingStatus,
        trial_ends_at: Option<DateTime<Utc>>,
        past_due_since: Option<DateTime<Utc>>,
        grace: chrono::Duration,
        now: DateTime<Utc>,
    ) -> bool {
        match status {
            BillingStatus::Active => true,
            BillingStatus::PastDue => past_due_since.is_none_or(|since| since + grace > now),
            BillingStatus::Trialing => trial_ends_at.is_none_or(|end| end > now),
            BillingStatus::Unpaid | BillingStatus::Canceled | BillingStatus::Incomplete => false,
        }
    }

    fn evolve(&mut self, event: BillingEvent) {
        match event {
            BillingEvent::TrialEnded {} => {
                self.status = Some(BillingStatus::Unpaid);
            }
            BillingEvent::InvoiceRecorded {
                invoice,
                observed_at,
                ..
            } => {
                self.invoices_observed.insert(invoice.id, observed_at);
            }
            BillingEvent::StripeCustomerLinked { customer_id, .. } => {
                self.customer_id = Some(customer_id);
            }
            BillingEvent::SubscriptionSynced {
                subscription_id,
                status,
                cancel_at_period_end,
                current_period_end,
                customer_id,
                plan,
                observed_at,
                ..
            } => {
                if let Some(plan) = plan {
                    self.plan_id = Some(plan.plan_id);
                    self.plan_key = Some(plan.plan_key);
                    self.version = plan.version;
                    self.terms = Some(plan.terms);
                }
                if customer_id.is_some() {
                    self.customer_id = customer_id;
                }
                self.subscription_id = Some(subscription_id);
                self.past_due_since = match (status, self.status) {
                    (BillingStatus::PastDue, Some(BillingStatus::PastDue)) => self.past_due_since,
                    (BillingStatus::PastDue, _) => Some(observed_at),
                    _ => None,
                };
                self.status = Some(status);
                self.cancel_at_period_end = cancel_at_period_end;
                self.current_period_end = current_period_end;
                self.last_observed_at = Some(observed_at);
                self.trial_ends_at = None;
            }
            BillingEvent::PlanAssigned {
                plan_id,
                plan_key,
                version,
                terms,
                status,
                trial_ends_at,
            } => {
                self.plan_id = Some(plan_id);
                self.plan_key = Some(plan_key);
                self.version = version;
                self.terms = Some(terms);
                self.status = Some(status);
                self.trial_ends_at = trial_ends_at;
            }
        }
    }
}

crate::aggregate!(
    Billing,
    "billing",
    crate::TenantId,
    BillingCommand,
    BillingEvent,
    BillingError
);
