//! The ApiKey aggregate: a tenant-scoped credential for machines (the agent
//! runtime). Its secret never appears here: the API keeps only the secret's
//! SHA-256 in the `api_keys` table, written in the same transaction.

mod aggregate;
mod commands;
mod error;
mod events;

pub use aggregate::{assignable_by, ApiKey};
pub use commands::ApiKeyCommand;
pub use error::ApiKeyError;
pub use events::ApiKeyEvent;

#[cfg(test)]
mod tests;
