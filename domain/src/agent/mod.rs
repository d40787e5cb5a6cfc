//! The Agent aggregate: one AI agent of a tenant (in the tenant's stream):
//! its name, description, optional monthly budget and allow-list of
//! providers and models, and whether it runs (`active`), is `paused`, or is
//! `archived` for good.
//!
//! The plan's `max_agents` is kept race-free by slots: each agent that is
//! not archived holds a numbered slot of its tenant (a uniqueness claim,
//! `{tenant}:{n}`), taken in the transaction that creates it and released
//! by the one that archives it. Two creates racing for the last slot: one
//! claim commits.

mod aggregate;
mod commands;
mod error;
mod events;

pub use aggregate::{Agent, AgentSettings, AgentStatus};
pub use commands::AgentCommand;
pub use error::AgentError;
pub use events::AgentEvent;

#[cfg(test)]
mod tests;
