use crate::values::{Label, Slug};
use crate::PlanId;

use super::PlanTerms;

#[derive(Debug, Clone, PartialEq)]
pub enum PlanCommand {
    /// A plan, at version 1.
    Create {
        plan_id: PlanId,
        key: Slug,
        name: Label,
        terms: PlanTerms,
    },
    /// New terms as the next version; subscriptions keep theirs.
    PublishVersion { terms: PlanTerms },
    /// No new subscriptions to it; existing ones keep it.
    Retire,
}
