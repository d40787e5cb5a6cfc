//! A database that cannot be reached is an outage, not a bug. Requests
//! that need it are answered 503 `service_unavailable` with `Retry-After`
//! (see `ApiError::unavailable`), and the outage is logged twice in all:
//! once when the first request finds the database gone, and once when a
//! watcher finds it back, with how long it lasted and how many requests
//! were refused meanwhile. `/readyz` says 503 for the whole time.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};

/// What a client is told to wait before retrying, in seconds.
pub const RETRY_AFTER_SECONDS: u64 = 5;

/// How often the watcher asks a database it lost whether it is back.
const PROBE_EVERY: Duration = Duration::from_millis(500);

/// Whether an error means the database cannot be reached (or is shutting
/// down, or has no connection left for us), as opposed to a query that
/// went wrong.
pub fn is_unreachable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 08: connection exception; 57P01-57P03: the server is shutting
            // down, crashed, or not accepting connections yet; 53300: too
            // many connections.
            code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}

#[derive(Debug)]
struct Current {
    since: Instant,
    refused: u64,
}

/// This instance's view of the database's availability.
#[derive(Debug, Default)]
pub struct Outages {
    current: Mutex<Option<Current>>,
    started: Notify,
}

impl Outages {
    fn current(&self) -> std::sync::MutexGuard<'_, Option<Current>> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A request was refused because the database cannot be reached: the
    /// first of an outage is logged with its cause, later ones are counted.
    pub fn refused(&self, cause: &str) {
        let mut current = self.current();
        match current.as_mut() {
            Some(outage) => outage.refused += 1,
            None => {
                *current = Some(Current {
                    since: Instant::now(),
                    refused: 1,
                });
                tracing::error!(
                    error = %cause,
                    "the database cannot be reached; answering 503 service_unavailable until it is back"
                );
                self.started.notify_one();
            }
        }
    }

    /// Wait for outages and, during each, probe the database until it
    /// answers; then log the outage's end and forget it.
    pub async fn watch(&self, store: crate::store::Store, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = self.started.notified() => {}
                _ = shutdown.changed() => return,
            }
            loop {
                if store.ping().await.is_ok() {
                    if let Some(outage) = self.current().take() {
                        tracing::warn!(
                            lasted_ms = outage.since.elapsed().as_millis() as u64,
                            requests_refused = outage.refused,
                            "the database is reachable again"
                        );
                    }
                    break;
                }
                tokio::select! {
                    _ = tokio::time::sleep(PROBE_EVERY) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }
    }
}
