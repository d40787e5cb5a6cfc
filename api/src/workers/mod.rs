//! Background workers, started by the composition root and stopped with
//! the server: the email outbox ([`email`]) and the invitation expiry job
//! ([`invitation_expiry`]).

pub mod auth_cache;
pub mod email;
pub mod invitation_expiry;
pub mod trial_expiry;
