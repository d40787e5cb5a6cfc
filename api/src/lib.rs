//! Tenantry's HTTP API and the `tenantry` binary's commands.
//!
//! Architecture invariant: this is the only crate that knows HTTP. Handlers
//! extract, dispatch a command through [`store::EventStore`] or read a
//! projection, and respond; all SQL of the write side lives in [`store`].

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod error;
pub mod extract;
pub mod guard;
pub mod mailer;
pub mod middleware;
pub mod outage;
pub mod request_id;
pub mod responses;
pub mod routes;
pub mod secret_file;
pub mod service;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod throttle;
pub mod vault;
