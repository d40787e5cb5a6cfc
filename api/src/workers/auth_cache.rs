//! Keeps the guard's cache true to every process's commits: follows the
//! log's headers (woken with the projectors: this process's commits and
//! other processes' notifications), drops what depended on each appended
//! aggregate at once (sessions and keys live in side tables written with
//! the events), and again once the projections have applied the events
//! (tenant status, roles and the platform admin flag are read from read
//! models). It also tells the store of each append, so that
//! `Store::load_recent` answers from memory what nobody changed.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::state::AppState;
use crate::store::{Checkpoint, Written};

/// Headers read per round.
const BATCH: i64 = 500;

/// How long to wait for the projections before dropping entries a second
/// time anyway.
const PROJECTIONS_WAIT: Duration = Duration::from_secs(5);

pub fn start(state: AppState, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut wake = state.projector.wake();
        // Entries are filled from now on: only later events can outdate them.
        let mut position = loop {
            match state.store.head().await {
                Ok(head) => break head.unwrap_or(Checkpoint::ZERO),
                Err(e) => {
                    tracing::debug!(error = %e, "auth cache: cannot read the log's head; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = shutdown.changed() => return,
                    }
                }
            }
        };
        state.store.hear_appends();
        let mut retry = Duration::from_millis(2);
        loop {
            if *shutdown.borrow() {
                return;
            }
            match follow(&state, position).await {
                Ok(Some(reached)) => {
                    position = reached;
                    continue;
                }
                Ok(None) => {}
                Err(e) => tracing::debug!(error = %e, "auth cache: reading the log failed"),
            }
            // Committed events still behind the read horizon: look again soon.
            let held_back = matches!(state.store.head().await, Ok(Some(head)) if head > position);
            let pause = if held_back {
                retry = (retry * 2).min(Duration::from_millis(250));
                retry
            } else {
                retry = Duration::from_millis(2);
                state.config.projector_poll
            };
            tokio::select! {
                _ = wake.changed() => {}
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => return,
            }
        }
    })
}

/// Read and apply one batch after `after`; `None` when there was nothing.
async fn follow(state: &AppState, after: Checkpoint) -> Result<Option<Checkpoint>, sqlx::Error> {
    let headers = state.store.headers_after(after, BATCH).await?;
    let Some(last) = headers.last() else {
        return Ok(None);
    };
    let reached = last.checkpoint()?;
    for h in &headers {
        state.store.heard_append(&h.aggregate_type, &h.aggregate_id);
        state
            .auth_cache
            .invalidate(&h.aggregate_type, &h.aggregate_id);
    }
    // Once the projections reading them have applied the batch, again.
    let mut kinds: Vec<&str> = headers.iter().map(|h| h.aggregate_type.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    for kind in kinds {
        let Some(aggregate_type) = ["tenant", "user", "session", "api_key", "billing"]
            .into_iter()
            .find(|k| *k == kind)
        else {
            continue;
        };
        let written = Written {
            checkpoint: reached,
            aggregate_type,
            aggregate_id: String::new(),
            event_types: headers
                .iter()
                .filter(|h| h.aggregate_type == kind)
                .map(|h| h.event_type.clone())
                .collect(),
        };
        state.projector.wait_for(&written, PROJECTIONS_WAIT).await;
    }
    for h in &headers {
        state
            .auth_cache
            .invalidate(&h.aggregate_type, &h.aggregate_id);
    }
    Ok(Some(reached))
}
