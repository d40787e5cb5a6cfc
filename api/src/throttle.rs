//! Throttling of the credential endpoints (sign-in and refresh): a
//! request allowance per client address, and a failed-attempt allowance per
//! account. The first stops one address from guessing many passwords; the
//! second stops many addresses from guessing one account's password. An
//! address that is throttled does not lock anyone else out: the account
//! allowance is only spent by attempts that got past their address's
//! allowance, and other addresses keep their own.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use governor::clock::{Clock, DefaultClock};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// The address of the client that connected (the peer of the TCP
/// connection; `0.0.0.0` when the server runs without connection info).
pub fn client_ip(extensions: &axum::http::Extensions) -> std::net::IpAddr {
    extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |c| c.0.ip())
}

/// A per-address request limiter (`governor`'s GCRA): `per_minute`
/// requests a minute, that many in a burst.
pub type AddressLimiter = governor::DefaultKeyedRateLimiter<IpAddr>;

pub fn address_limiter(per_minute: u32) -> AddressLimiter {
    let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
    governor::RateLimiter::keyed(governor::Quota::per_minute(per_minute))
}

/// 429 `rate_limited` once `ip` has used its allowance on `limiter`.
pub fn check_address(limiter: &AddressLimiter, ip: IpAddr) -> Result<(), ApiError> {
    limiter.check_key(&ip).map_err(|not_until| {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        rate_limited(wait, "too many requests from this address")
    })
}

/// 429 `rate_limited` with `Retry-After` (whole seconds, at least 1).
pub fn rate_limited(wait: Duration, what: &str) -> ApiError {
    let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("{what}; retry in {seconds} s"),
    )
    .with_details(json!({ "retry_after_seconds": seconds }))
}

/// Entries the failure table keeps before it drops lapsed ones.
const FAILURE_TABLE_SOFT_CAP: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    since: Instant,
}

/// Failed sign-ins per account (by normalized email, known or not, so a
/// throttled answer says nothing about whether the account exists; wrong
/// current passwords on `POST /v1/me/password` count under `user:<id>`): after
/// `max` failures within `window` of the first, the account's sign-ins are
/// answered 429 until the window ends. A successful sign-in clears it.
#[derive(Debug)]
pub struct AccountFailures {
    max: u32,
    window: Duration,
    table: Mutex<HashMap<[u8; 32], Failures>>,
}

impl AccountFailures {
    pub fn new(max: u32, window: Duration) -> Self {
        Self {
            max: max.max(1),
            window,
            table: Mutex::new(HashMap::new()),
        }
    }

    fn key(account: &str) -> [u8; 32] {
        Sha256::digest(account.as_bytes()).into()
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Failures>> {
        // A panic while holding this lock cannot leave a half-written entry.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// 429 while the account has used its failures in the current window.
    pub fn check(&self, account: &str) -> Result<(), ApiError> {
        self.check_at(account, Instant::now())
    }

    fn check_at(&self, account: &str, now: Instant) -> Result<(), ApiError> {
        let table = self.table();
        match table.get(&Self::key(account)) {
            Some(f) if f.count >= self.max => {
                let elapsed = now.saturating_duration_since(f.since);
                if elapsed < self.window {
                    return Err(rate_limited(
                        self.window - elapsed,
                        "too many failed sign-ins for this account",
                    ));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    pub fn record_failure(&self, account: &str) {
        self.record_failure_at(account, Instant::now());
    }

    fn record_failure_at(&self, account: &str, now: Instant) {
        let mut table = self.table();
        if table.len() >= FAILURE_TABLE_SOFT_CAP {
            let window = self.window;
            table.retain(|_, f| now.saturating_duration_since(f.since) < window);
        }
        let entry = table.entry(Self::key(account)).or_insert(Failures {
            count: 0,
            since: now,
        });
        if now.saturating_duration_since(entry.since) >= self.window {
            *entry = Failures {
                count: 0,
                since: now,
            };
        }
        entry.count = entry.count.saturating_add(1);
    }

    pub fn clear(&self, account: &str) {
        self.table().remove(&Self::key(account));
    }
}

/// Everything the credential endpoints are throttled by.
#[derive(Debug)]
pub struct SignInThrottle {
    pub per_address: AddressLimiter,
    pub per_account: AccountFailures,
}

impl SignInThrottle {
    pub fn new(per_minute: u32, max_failures: u32, window: Duration) -> Self {
        Self {
            per_address: address_limiter(per_minute),
            per_account: AccountFailures::new(max_failures, window),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_throttled_after_its_failures_until_the_window_ends() {
        let failures = AccountFailures::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(failures.check_at("a@x.io", t0).is_ok());
            failures.record_failure_at("a@x.io", t0);
        }
        let err = failures
            .check_at("a@x.io", t0 + Duration::from_secs(10))
            .unwrap_err();
        assert_eq!((err.status.as_u16(), err.code), (429, "rate_limited"));
        assert_eq!(err.details.unwrap()["retry_after_seconds"], 50);
        assert!(failures.check_at("b@x.io", t0).is_ok(), "other accounts");
        assert!(failures
            .check_at("a@x.io", t0 + Duration::from_secs(60))
            .is_ok());
        // A new failure after the window starts a new count.
        failures.record_failure_at("a@x.io", t0 + Duration::from_secs(61));
        assert!(failures
            .check_at("a@x.io", t0 + Duration::from_secs(62))
            .is_ok());
    }

    #[test]
    fn a_success_clears_the_failures() {
        let failures = AccountFailures::new(2, Duration::from_secs(60));
        failures.record_failure("a@x.io");
        failures.record_failure("a@x.io");
        assert!(failures.check("a@x.io").is_err());
        failures.clear("a@x.io");
        assert!(failures.check("a@x.io").is_ok());
    }
}
