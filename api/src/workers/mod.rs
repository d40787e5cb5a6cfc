//! Background workers, started by the composition root and stopped with
//! the server: the email outbox ([`email`]), the invitation and trial
//! expiry jobs, the guard cache's follower ([`auth_cache`]) and the
//! scheduled billing reconciliation ([`billing_reconcile`]).

pub mod auth_cache;
pub mod billing_reconcile;
pub mod email;
pub mod invitation_expiry;
pub mod trial_expiry;
