//! Tenantry's HTTP API and the `tenantry` binary's commands.
//!
//! Architecture invariant: this is the only crate that knows HTTP, and it
//! holds no SQL and no database connection. Handlers extract, call the
//! write side through [`store::Store`] (commands and side-table reads) or
//! the read side through `tenantry_projections::ReadModels`, and respond.

pub mod app;
pub mod audit_keys;
pub mod auth_cache;
pub mod cli;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod error;
pub mod error_codes;
pub mod extract;
pub mod guard;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod outage;
pub mod personal;
pub mod request_id;
pub mod responses;
pub mod routes;
pub mod secret_file;
pub mod service;
pub mod state;
pub mod streams;
pub mod stripe_api;
pub mod stripe_signature;
pub mod telemetry;
pub mod throttle;
pub mod vault;
pub mod workers;

/// The event store crate, under the name the API's modules use for it.
pub use tenantry_store as store;
pub use tenantry_store::db;
