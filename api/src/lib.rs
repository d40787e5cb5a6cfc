//! Tenantry's HTTP API and the `tenantry` binary's commands.
//!
//! Architecture invariant: this is the only crate that knows HTTP. Handlers
//! extract, dispatch a command through [`store::CommandExecutor`] (the
//! `tenantry-store` crate) or read a projection, and respond. The SQL of the
//! write side lives in `tenantry-store`; this crate holds SQL only for the
//! readiness probe, the outage probe and the email worker's outbox rows.

pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod error;
pub mod error_codes;
pub mod extract;
pub mod guard;
pub mod middleware;
pub mod outage;
pub mod request_id;
pub mod responses;
pub mod routes;
pub mod secret_file;
pub mod service;
pub mod state;
pub mod telemetry;
pub mod throttle;
pub mod vault;
pub mod workers;

/// The event store crate, under the name the API's modules use for it.
pub use tenantry_store as store;
pub use tenantry_store::db;
