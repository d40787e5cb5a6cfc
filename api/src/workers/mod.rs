//! Background workers, started by the composition root and stopped with
//! the server: the email outbox ([`email`]), the invitation and trial
//! expiry jobs, the guard cache's follower ([`auth_cache`]), the
//! scheduled billing reconciliation ([`billing_reconcile`]) and the
//! reservation sweeper ([`reservation_sweeper`]).

pub mod auth_cache;
pub mod billing_reconcile;
pub mod email;
pub mod invitation_expiry;
pub mod reservation_sweeper;
pub mod trial_expiry;
