//! The state every handler shares, built once in `app::build`.

use std::sync::Arc;
use std::time::Duration;

use tenantry_projections::{ProjectorRuntime, ReadModels, Written};

use crate::config::Config;
use crate::credentials::JwtKeys;
use crate::store::Store;
use crate::throttle::{AddressLimiter, SignInThrottle};

#[derive(Clone)]
pub struct AppState {
    /// The write side: commands and the side tables' reads.
    pub store: Store,
    /// The read models' queries.
    pub reads: ReadModels,
    pub projector: ProjectorRuntime,
    pub jwt: Arc<JwtKeys>,
    pub config: Arc<Config>,
    /// Per-client-address limits on public routes (`Access::Throttled`).
    pub public_limiter: Arc<AddressLimiter>,
    /// Sign-in and refresh: per address, and failed attempts per account.
    pub sign_in_throttle: Arc<SignInThrottle>,
    /// Whether the database is reachable, for one log line per outage.
    pub outages: Arc<crate::outage::Outages>,
    /// The application's time (a test moves it by hand).
    pub clock: Arc<dyn crate::clock::Clock>,
    /// People's data: sealed before commands, addresses hashed for lookups.
    pub personal: Arc<crate::personal::PersonalData>,
    /// The guard's standing of sessions and API keys (`auth_cache`).
    pub auth_cache: Arc<crate::auth_cache::AuthCache>,
    /// Live event streams' bounds, and their end at shutdown.
    pub streams: Arc<crate::streams::Streams>,
    /// Stripe's API; `None`: manual mode (`TENANTRY_STRIPE_SECRET_KEY` unset).
    pub stripe: Option<crate::stripe_api::StripeApi>,
}

/// How long a command waits for the projections to show its events.
pub const READ_YOUR_WRITES_TIMEOUT: Duration = Duration::from_secs(5);

impl AppState {
    /// Now, by the application's clock.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// Read-your-writes: wait until the projections have applied the events
    /// a command committed, so a query on this instance sees them.
    ///
    /// The guard's cache drops what depended on the written aggregate once
    /// more, now that the read models it is filled from show the change.
    pub async fn settle(&self, written: Option<&Written>) {
        let Some(written) = written else { return };
        let caught_up = self
            .projector
            .wait_for(written, READ_YOUR_WRITES_TIMEOUT)
            .await;
        self.auth_cache
            .invalidate(written.aggregate_type, &written.aggregate_id);
        if !caught_up {
            tracing::warn!(
                target = ?written.checkpoint,
                "projections did not catch up in time; the response may be stale"
            );
        }
    }
}
