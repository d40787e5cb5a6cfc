use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{PlanCommand, PlanError, PlanEvent, PlanTerms};
use crate::values::{Label, Slug};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub id: Option<Uuid>,
    pub key: Option<Slug>,
    pub name: Option<Label>,
    /// The current version (1 after creation).
    pub version: u32,
    pub terms: Option<PlanTerms>,
    /// Every version's terms: a subscription to an older version's Stripe
    /// price still names what it pays for.
    pub versions: std::collections::BTreeMap<u32, PlanTerms>,
    pub retired: bool,
}

/// The Stripe price (a Stripe plan object, which Stripe accepts wherever a
/// price is asked for) that stands for a plan version: `tenantry_{key}_v{n}`.
/// `tenantry billing sync-plans` creates the missing ones.
pub fn stripe_price_id(key: &str, version: u32) -> String {
    format!("tenantry_{key}_v{version}")
}

/// The plan key and version a Tenantry-named Stripe price stands for.
pub fn parse_stripe_price_id(price: &str) -> Option<(&str, u32)> {
    let rest = price.strip_prefix("tenantry_")?;
    let (key, version) = rest.rsplit_once("_v")?;
    let version = version.parse().ok().filter(|v| *v > 0)?;
    (!key.is_empty()).then_some((key, version))
}

impl Plan {
    /// A plan is its own chain.
    fn chain_of(&self, id: crate::PlanId, _actor: &crate::Actor) -> Option<Uuid> {
        Some(id.as_uuid())
    }

    fn check(terms: &PlanTerms) -> Result<(), PlanError> {
        terms
            .validate()
            .map_err(|(field, e)| PlanError::InvalidTerms {
                field,
                code: e.code,
                message: e.message,
            })
    }

    fn decide(&self, command: PlanCommand) -> Result<Vec<PlanEvent>, PlanError> {
        match command {
            PlanCommand::Create {
                plan_id,
                key,
                name,
                terms,
            } => {
                if self.id.is_some() {
                    return Err(PlanError::AlreadyExists);
                }
                Self::check(&terms)?;
                Ok(vec![PlanEvent::PlanCreated {
                    plan_id: plan_id.as_uuid(),
                    key,
                    name,
                    terms,
                }])
            }
            PlanCommand::PublishVersion { terms } => {
                if self.id.is_none() {
                    return Err(PlanError::NotFound);
                }
                if self.retired {
                    return Err(PlanError::Retired);
                }
                Self::check(&terms)?;
                if self.terms.as_ref() == Some(&terms) {
                    return Ok(Vec::new());
                }
                Ok(vec![PlanEvent::PlanVersionPublished {
                    version: self.version + 1,
                    terms,
                }])
            }
            PlanCommand::Retire => match (self.id, self.retired) {
                (None, _) => Err(PlanError::NotFound),
                (Some(_), true) => Ok(Vec::new()),
                (Some(_), false) => Ok(vec![PlanEvent::PlanRetired {}]),
            },
        }
    }

    fn evolve(&mut self, event: PlanEvent) {
        match event {
            PlanEvent::PlanCreated {
                plan_id,
                key,
                name,
                terms,
            } => {
                self.id = Some(plan_id);
                self.key = Some(key);
                self.name = Some(name);
                self.version = 1;
                self.versions.insert(1, terms.clone());
                self.terms = Some(terms);
            }
            PlanEvent::PlanVersionPublished { version, terms } => {
                self.version = version;
                self.versions.insert(version, terms.clone());
                self.terms = Some(terms);
            }
            PlanEvent::PlanRetired {} => self.retired = true,
        }
    }
}

crate::aggregate!(
    Plan,
    "plan",
    crate::PlanId,
    PlanCommand,
    PlanEvent,
    PlanError
);
