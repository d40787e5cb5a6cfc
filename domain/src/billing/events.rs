use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::BillingStatus;
use crate::claims::UniqueClaims;
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
    /// The trial ran out without a subscription: the tenant is `unpaid`
    /// (its changes are refused with 402 until it pays or gets a plan).
    TrialEnded {},
}

crate::stored_event!(BillingEvent);
impl UniqueClaims for BillingEvent {}
