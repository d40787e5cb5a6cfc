use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::values::ValueError;

/// How often a plan is billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    Month,
    Year,
}

/// A capability a plan may include; a route of that capability answers 403
/// `feature_not_in_plan` to a tenant whose plan lacks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Feature {
    Approvals,
    Webhooks,
    WhiteLabel,
    ByoLlmKeys,
}

/// What a tenant on the plan may use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entitlements {
    /// Members plus pending invitations; `None`: no limit.
    pub max_seats: Option<u32>,
    /// Agents that are not archived; `None`: no limit.
    pub max_agents: Option<u32>,
    /// Usage included each month, in minor units of the plan's currency.
    pub monthly_credit_minor: i64,
    /// The request rate tier (`standard`, `high`, `unlimited`).
    pub rate_tier: String,
    pub features: BTreeSet<Feature>,
}

/// One version of a plan's terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanTerms {
    /// Price per interval in minor units (cents), 0 for a free plan.
    pub price_minor: i64,
    /// ISO 4217, lowercase (`usd`, `eur`).
    pub currency: String,
    pub interval: Interval,
    /// Days of trial a new tenant may start with, without Stripe; 0: none.
    pub trial_days: u32,
    pub entitlements: Entitlements,
    /// The Stripe price this version is sold at, when the operator made it
    /// in Stripe; absent: `tenantry_{key}_v{version}`, which
    /// `tenantry billing sync-plans` creates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stripe_price: Option<String>,
}

pub const RATE_TIERS: [&str; 3] = ["standard", "high", "unlimited"];

impl PlanTerms {
    /// Check every field; the first problem, named by its field.
    pub fn validate(&self) -> Result<(), (&'static str, ValueError)> {
        let bad = |field, code, message: &str| Err((field, ValueError::new(code, message)));
        if self.price_minor < 0 {
            return bad(
                "price_minor",
                "invalid_price",
                "the price must be 0 or more",
            );
        }
        if self.currency.len() != 3 || !self.currency.bytes().all(|b| b.is_ascii_lowercase()) {
            return bad(
                "currency",
                "invalid_currency",
                "a currency is three lowercase letters (ISO 4217)",
            );
        }
        if self.trial_days > 365 {
            return bad("trial_days", "invalid_trial", "a trial is 0 to 365 days");
        }
        let e = &self.entitlements;
        if e.max_seats == Some(0) || e.max_agents == Some(0) {
            return bad(
                "entitlements",
                "invalid_entitlement",
                "a limit is at least 1, or absent for none",
            );
        }
        if e.monthly_credit_minor < 0 {
            return bad(
                "entitlements.monthly_credit_minor",
                "invalid_entitlement",
                "the included credit must be 0 or more",
            );
        }
        if !RATE_TIERS.contains(&e.rate_tier.as_str()) {
            return bad(
                "entitlements.rate_tier",
                "invalid_entitlement",
                "the rate tier is standard, high or unlimited",
            );
        }
        if let Some(price) = &self.stripe_price {
            let shaped = (3..=255).contains(&price.len())
                && price
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !shaped || super::parse_stripe_price_id(price).is_some() {
                return bad(
                    "stripe_price",
                    "invalid_stripe_price",
                    "a Stripe price id (price_…) of letters, digits, _ and -, not one of Tenantry's own names",
                );
            }
        }
        Ok(())
    }
}
