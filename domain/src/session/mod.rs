//! The Session aggregate: one sign-in attempt and, when it succeeded, the
//! session it started (refreshes, revocation). Platform-level stream.
//! Tokens and their hashes never appear here: the API keeps those in the
//! `sessions` and `refresh_tokens` tables, written in the same transaction.

mod aggregate;
mod commands;
mod error;
mod events;

pub use aggregate::{Session, SessionState};
pub use commands::{RevokeReason, SessionCommand, SignInFailure};
pub use error::SessionError;
pub use events::SessionEvent;

#[cfg(test)]
mod tests;
