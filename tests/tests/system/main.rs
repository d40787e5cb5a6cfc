//! The black-box system tests, one test binary (one link instead of one per
//! file). Each module is one area; `tests/logs.rs` stays its own binary
//! because it installs the process-wide TRACE subscriber.

mod access;
mod agents;
mod approvals;
mod audit;
mod billing;
mod budgets;
mod erasure;
mod event_store;
mod event_stream;
mod hardening;
mod hostile;
mod http;
mod invitations;
mod isolation;
mod stripe;
mod usage;
mod vault;
