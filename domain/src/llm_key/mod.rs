//! The LlmKey aggregate: a tenant's own provider key (OpenAI, Anthropic…),
//! and the catalogue of providers with the shapes their keys have.
//!
//! Events carry the provider, label, hint, the data key's id and the sealed
//! secret, never the plaintext. The data key lives outside the log; once it
//! is destroyed the sealed secret in these events cannot be opened again.

mod aggregate;
mod commands;
mod error;
mod events;
mod provider;

pub use aggregate::LlmKey;
pub use commands::LlmKeyCommand;
pub use error::LlmKeyError;
pub use events::LlmKeyEvent;
pub use provider::{key_hint, Provider, MAX_KEY_BYTES};

#[cfg(test)]
mod tests;
