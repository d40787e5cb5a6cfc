//! Tenantry's event store (it plays the part the design gave postgres-es;
//! see docs/adr/0001-own-event-repository.md).
//!
//! - [`events`]: the command executor, its per-aggregate state cache, the
//!   append with its uniqueness claims and [`SideWrite`]s, in one transaction.
//! - [`log`]: reading the log in its global order (the projectors' input).
//! - the side tables written with the events or read by the guard:
//!   [`sessions`] (credentials, sessions, refresh tokens), [`api_keys`],
//!   [`invitations`] (token hashes), [`vault`] (data keys and the provider-key
//!   access log), [`idempotency`].
//! - [`db`]: creating the database, the pool and the migrator; [`page`]: keyset pages.
//!
//! Architecture invariant: this crate knows no HTTP. Its errors are typed
//! (`CommandError`, `sqlx::Error`, `RotateError`); what they mean to a client
//! is decided in the API crate.

pub mod api_keys;
pub mod db;
pub mod events;
pub mod idempotency;
pub mod invitations;
pub mod log;
pub mod page;
pub mod sessions;
pub mod vault;

pub use events::{CommandError, CommandExecutor, Committed, Refusal, SideWrite};
pub use log::{Checkpoint, StoredEvent, Written};

/// The user id holding an email, if any.
pub async fn claim_owner_email(
    pool: &sqlx::PgPool,
    email: &str,
) -> Result<Option<String>, sqlx::Error> {
    events::claim_owner(
        pool,
        tenantry_domain::ClaimScope::UserEmail,
        &email.trim().to_lowercase(),
    )
    .await
}
