//! A tenant's live event stream (`GET /v1/tenants/{tid}/events/stream`,
//! `docs/AUDIT.md`): the tenant's events as they commit, in its chain's
//! order, from a sequence the client names.
//!
//! Gapless and without duplicates by construction: the stream reads the
//! chain by sequence (`tenant_sequence > after`), and a tenant's sequence
//! is handed out under its chain's head row, so sequence n + 1 cannot
//! commit before n. It wakes on this process's commits and other
//! processes' notifications, and reads once a heartbeat anyway.
//!
//! Every heartbeat it asks the guard again whether the caller may still
//! read the tenant (`guard::still_allowed`), with the request's own
//! credentials: a revoked or expired session or key, a tenant no longer
//! visible to the caller, or a permission taken away ends it.

use std::collections::VecDeque;
use std::time::Duration;

use axum::http::HeaderMap;
use tenantry_store::audit::{AuditedEvent, EventFilter};
use tokio::sync::watch;
use tokio::time::Instant;
use uuid::Uuid;

use crate::guard::{self, Access};
use crate::state::AppState;
use crate::streams::Slot;

/// Events read at once.
const PAGE: i64 = 200;

/// What the stream sends.
pub enum Item {
    /// The first thing sent: how long a client should wait before it
    /// reconnects.
    Opened {
        retry: Duration,
    },
    Event(Box<AuditedEvent>),
    /// Nothing happened for a heartbeat, and the caller may still read.
    Heartbeat,
    /// The last thing sent, and why: `max_age` and `shutting_down` (resume
    /// with `Last-Event-ID`), `unavailable` (the database; resume later),
    /// or the error code the caller would get now (`invalid_token`,
    /// `tenant_not_found`, `missing_permission`).
    End {
        reason: String,
        message: String,
    },
}

/// Who opened the stream and what they may read.
pub struct Opener {
    pub tenant_id: Uuid,
    /// The request's headers: its credentials, asked about again.
    pub headers: HeaderMap,
    pub path: &'static str,
    pub access: Access,
    /// Send events after this sequence.
    pub after: i64,
    /// Counts against the bounds until the stream ends.
    pub slot: Slot,
}

struct Live {
    state: AppState,
    opener: Opener,
    pending: VecDeque<AuditedEvent>,
    wake: watch::Receiver<u64>,
    closing: watch::Receiver<bool>,
    heartbeat: Duration,
    next_check: Instant,
    ends_at: Instant,
    heartbeat_due: bool,
    opened: bool,
    done: bool,
}

/// The stream of what to send, until one of the ends in [`Item::End`].
pub fn live(state: AppState, opener: Opener) -> impl futures_util::Stream<Item = Item> {
    let heartbeat = state.config.stream_heartbeat;
    let now = Instant::now();
    let live = Live {
        wake: state.projector.wake(),
        closing: state.streams.closing(),
        heartbeat,
        next_check: now + heartbeat,
        ends_at: now + state.config.stream_max_age,
        state,
        opener,
        pending: VecDeque::new(),
        heartbeat_due: false,
        opened: false,
        done: false,
    };
    futures_util::stream::unfold(live, Live::next)
}

impl Live {
    async fn next(mut self) -> Option<(Item, Self)> {
        if self.done {
            return None;
        }
        if !self.opened {
            self.opened = true;
            let retry = self.heartbeat;
            return Some((Item::Opened { retry }, self));
        }
        loop {
            if let Some(event) = self.pending.pop_front() {
                self.opener.after = event.event.tenant_sequence;
                return Some((Item::Event(Box::new(event)), self));
            }
            if *self.closing.borrow() {
                return self.end(
                    "shutting_down",
                    "the server is shutting down; resume with Last-Event-ID",
                );
            }
            let now = Instant::now();
            if now >= self.ends_at {
                return self.end(
                    "max_age",
                    "this stream reached its longest life; resume with Last-Event-ID",
                );
            }
            if now >= self.next_check {
                self.next_check = now + self.heartbeat;
                let o = &self.opener;
                if let Err(e) =
                    guard::still_allowed(&self.state, &o.headers, o.path, o.access, o.tenant_id)
                        .await
                {
                    let (reason, message) = (e.code.to_string(), e.message.clone());
                    return self.end(&reason, &message);
                }
                if std::mem::take(&mut self.heartbeat_due) {
                    return Some((Item::Heartbeat, self));
                }
            }
            // Seen before the read: a commit after it changes it again.
            self.wake.borrow_and_update();
            let page = self
                .state
                .store
                .audit()
                .chain_page(
                    self.opener.tenant_id,
                    &EventFilter::default(),
                    self.opener.after,
                    None,
                    PAGE,
                )
                .await;
            match page {
                Ok(events) if !events.is_empty() => {
                    self.pending.extend(events);
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "an event stream could not read the log");
                    return self.end(
                        "unavailable",
                        "the events could not be read; resume later with Last-Event-ID",
                    );
                }
            }
            let wait_until = self.next_check.min(self.ends_at);
            tokio::select! {
                woken = self.wake.changed() => {
                    if woken.is_err() {
                        return self.end("shutting_down", "the server is shutting down; resume with Last-Event-ID");
                    }
                }
                _ = self.closing.changed() => {}
                _ = tokio::time::sleep_until(wait_until) => {
                    self.heartbeat_due = true;
                }
            }
        }
    }

    fn end(mut self, reason: &str, message: &str) -> Option<(Item, Self)> {
        self.done = true;
        let item = Item::End {
            reason: reason.to_string(),
            message: message.to_string(),
        };
        Some((item, self))
    }
}
