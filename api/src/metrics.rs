//! Prometheus metrics: recorded through the `metrics` facade wherever they
//! happen (requests here, commands in the store, sign-ins and emails in
//! their services), rendered by `metrics-exporter-prometheus` for
//! `GET /metrics`. Gauges that describe state (projection lag and
//! leadership, the email outbox, the connection pool) are sampled when the
//! endpoint is scraped.
//!
//! The recorder is process-wide: several servers in one process (the test
//! suite) share it.

use std::sync::OnceLock;
use std::time::Duration;

use axum::http::StatusCode;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::error::ApiError;
use crate::state::AppState;

/// Request latency buckets, in seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process's recorder, installed on first use.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("http_request_duration_seconds".into()),
                LATENCY_BUCKETS,
            )
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder is installed; then this one
        // renders what it was given, which is nothing.
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics stays empty");
        }
        // Counters that are zero until something rare happens are listed
        // from the start, so a scrape shows they exist.
        for aggregate in ["tenant", "user", "session", "api_key", "llm_key"] {
            metrics::counter!("tenantry_command_conflicts_total", "aggregate" => aggregate)
                .increment(0);
        }
        for outcome in ["sent", "superseded", "retry", "failed"] {
            metrics::counter!("tenantry_emails_total", "outcome" => outcome).increment(0);
        }
        handle
    })
}

/// `http_requests_total` and `http_request_duration_seconds`, by route
/// template, method and status class.
pub fn record_request(route: String, method: String, status: StatusCode, took: Duration) {
    let class = match status.as_u16() / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    };
    let labels = [
        ("route", route),
        ("method", method),
        ("status", class.to_string()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(took.as_secs_f64());
}

/// `tenantry_sign_ins_total{outcome}`: `success`, or the failure's reason.
pub fn record_sign_in(outcome: &'static str) {
    metrics::counter!("tenantry_sign_ins_total", "outcome" => outcome).increment(1);
}

/// `tenantry_emails_total{outcome}`: `sent`, `superseded`, `retry`, `failed`.
pub fn record_email(outcome: &'static str) {
    metrics::counter!("tenantry_emails_total", "outcome" => outcome).increment(1);
}

/// Sample the state gauges, then render everything.
pub async fn render(state: &AppState) -> Result<String, ApiError> {
    let handle = handle();
    for lag in state.projector.lag().await? {
        let name = lag.name;
        metrics::gauge!("tenantry_projection_lag_events", "projection" => name)
            .set(lag.events as f64);
        metrics::gauge!("tenantry_projection_lag_seconds", "projection" => name).set(lag.seconds);
        metrics::gauge!("tenantry_projection_leader", "projection" => name).set(if lag.leader {
            1.0
        } else {
            0.0
        });
    }
    let outbox = state.store.outbox().counts().await?;
    metrics::gauge!("tenantry_email_outbox_pending").set(outbox.pending as f64);
    metrics::gauge!("tenantry_email_outbox_failed").set(outbox.failed as f64);
    let (open, idle) = state.store.pool_connections();
    metrics::gauge!("tenantry_db_pool_connections").set(f64::from(open));
    metrics::gauge!("tenantry_db_pool_idle").set(idle as f64);
    metrics::gauge!("tenantry_db_pool_max").set(f64::from(crate::config::POOL_SIZE));
    handle.run_upkeep();
    Ok(handle.render())
}
