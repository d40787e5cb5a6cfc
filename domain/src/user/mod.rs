//! The User aggregate: a person who can sign in. Platform-level: its events
//! go to the platform pseudo-tenant's stream.

mod aggregate;
mod commands;
mod error;
mod events;

pub use aggregate::{User, UserStatus};
pub use commands::UserCommand;
pub use error::UserError;
pub use events::UserEvent;

#[cfg(test)]
mod tests;
