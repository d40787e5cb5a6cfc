//! The write side's storage. Every SQL statement of the API lives under
//! this module, behind small functions, so another backend can replace it
//! without touching the domain or the handlers.

pub mod api_keys;
pub mod auth;
pub mod events;
pub mod idempotency;
pub mod invitations;
pub mod vault;

pub use events::{CommandError, Committed, EventStore, SideEffect};

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
