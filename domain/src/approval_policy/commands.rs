use super::{Policy, Uncovered};

#[derive(Debug, Clone, PartialEq)]
pub enum PolicyCommand {
    /// A new policy, or new rules for the policy of that name.
    Define { policy: Policy },
    /// The policy stops covering its actions (pending requests keep the
    /// stages they were made with).
    Remove { name: String },
    /// What an action no policy covers gets.
    SetUncovered { uncovered: Uncovered },
}
