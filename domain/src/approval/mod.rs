//! The Approval aggregate: one request, by an agent or a member, for a
//! person to allow an action (send a contract, refund a customer, spend
//! above a threshold), in the requesting tenant's stream. Its events are
//! the record of who allowed what, and when.
//!
//! A request carries the stages of the policy that covered its action, as
//! they were when it was made (a policy changed later does not move a
//! pending request). Each stage needs N approvals from members allowed at
//! it; after the last stage the request is `approved`. A rejection ends the
//! request when its stage says so, and is otherwise recorded and counted
//! against nothing. Nobody decides their own request: not the member who
//! asked, not the creator of the API key that asked; and each member
//! decides once per request.
//!
//! Races are settled by the aggregate's order: of two approvals racing for
//! the last one a stage needs, the first moves the stage on and the second,
//! made at the stage it saw (`at_stage`), is recorded there as late and
//! moves nothing.

mod aggregate;
mod commands;
mod error;
mod events;

pub use aggregate::{Approval, ApprovalStatus, Decision, Requester, Stage};
pub use commands::ApprovalCommand;
pub use error::ApprovalError;
pub use events::ApprovalEvent;

#[cfg(test)]
mod tests;
