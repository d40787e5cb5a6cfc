//! The state every handler shares, built once in `app::build`.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tenantry_projections::{ProjectorRuntime, Written};

use crate::auth::JwtKeys;
use crate::config::Config;
use crate::store::EventStore;

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub store: EventStore,
    pub projector: ProjectorRuntime,
    pub jwt: Arc<JwtKeys>,
    pub config: Arc<Config>,
    /// Per-client-address limits on public routes (`Access::Throttled`).
    pub public_limiter: Arc<governor::DefaultKeyedRateLimiter<std::net::IpAddr>>,
}

/// A limiter allowing `per_minute` requests per minute per address, with
/// that many in a burst.
pub fn public_limiter(per_minute: u32) -> Arc<governor::DefaultKeyedRateLimiter<std::net::IpAddr>> {
    let per_minute = std::num::NonZeroU32::new(per_minute).unwrap_or(std::num::NonZeroU32::MIN);
    Arc::new(governor::RateLimiter::keyed(governor::Quota::per_minute(
        per_minute,
    )))
}

/// How long a command waits for the projections to show its events.
pub const READ_YOUR_WRITES_TIMEOUT: Duration = Duration::from_secs(5);

impl AppState {
    /// Read-your-writes: wait until the projections have applied the events
    /// a command committed, so a query on this instance sees them.
    pub async fn settle(&self, written: Option<&Written>) {
        let Some(written) = written else { return };
        if !self
            .projector
            .wait_for(written, READ_YOUR_WRITES_TIMEOUT)
            .await
        {
            tracing::warn!(
                target = ?written.checkpoint,
                "projections did not catch up in time; the response may be stale"
            );
        }
    }
}
