//! The catch-up projector runtime.
//!
//! Each projection has one row in `projection_checkpoints`. A batch runs in
//! one transaction: lock the checkpoint row `FOR UPDATE` (the fence), read the
//! next events after it, apply them, move the checkpoint, commit. Read-model
//! rows and checkpoint commit together, so a crash loses or repeats nothing.
//!
//! Across processes one instance per projection is active: the leader holds
//! a session advisory lock. The fence makes a stale leader harmless: two
//! batches never interleave on one checkpoint, and each starts from the
//! checkpoint the previous one committed.
//!
//! Leaders wake on this process's appends (after commit), on `LISTEN
//! tenantry_events` (other processes'), and poll as a fallback.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use sqlx::postgres::{PgListener, PgPool};
use sqlx::{Connection, PgConnection, Row};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use crate::log::{headers_after, read_after, Checkpoint, EventHeader, StoredEvent, Written};

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("event at position {position} cannot be projected: {reason}")]
    Decode { position: i64, reason: String },
    #[error(
        "after {waited_secs} s, events committed before this started are still behind a \
         transaction that was open before them (on any database of this server); end it and retry"
    )]
    HorizonHeld { waited_secs: u64 },
}

impl ProjectionError {
    pub fn decode(event: &StoredEvent, reason: impl std::fmt::Display) -> Self {
        Self::Decode {
            position: event.position,
            reason: reason.to_string(),
        }
    }
}

/// A read model fed from the event log.
pub trait Projection: Send + Sync + 'static {
    /// Stable name: the checkpoint row's key and the CLI's argument.
    fn name(&self) -> &'static str;

    /// Whether the projection reads events of this type at all. Stretches
    /// of the log it does not read cost it no transaction, and a command's
    /// response does not wait for it. Default: every event.
    fn reads(&self, _aggregate_type: &str, _event_type: &str) -> bool {
        true
    }

    /// Whether the projection reads any event of this aggregate type: an
    /// append of this process to another aggregate type does not wake it.
    fn reads_aggregate(&self, _aggregate_type: &str) -> bool {
        true
    }

    /// Apply a batch of events, in log order, inside the batch transaction.
    /// Events the projection does not care about are ignored.
    fn apply_batch<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        events: &'a [StoredEvent],
    ) -> BoxFuture<'a, Result<(), ProjectionError>>;

    /// Remove every row of the read model (for a rebuild).
    fn reset<'a>(&'a self, tx: &'a mut PgConnection) -> BoxFuture<'a, Result<(), sqlx::Error>>;
}

/// Applies one event to a read model inside the batch transaction.
pub type ApplyFn =
    for<'a> fn(&'a mut PgConnection, &'a StoredEvent) -> BoxFuture<'a, Result<(), ProjectionError>>;

/// Applies a whole batch (the events the projection reads, in log order)
/// to a read model inside the batch transaction.
pub type ApplyBatchFn = for<'a> fn(
    &'a mut PgConnection,
    Vec<&'a StoredEvent>,
) -> BoxFuture<'a, Result<(), ProjectionError>>;

/// How a [`TableProjection`] writes its read model.
#[derive(Clone, Copy)]
pub enum Apply {
    /// One event at a time: a statement (a round trip) per event it cares about.
    EachEvent(ApplyFn),
    /// The whole batch at once: a read model that folds a batch in memory
    /// and writes each changed row once, so a rebuild costs a few round
    /// trips per batch instead of one per event.
    Batch(ApplyBatchFn),
}

/// A projection into plain tables: its name, the tables it owns (emptied on
/// a rebuild), the events it reads and how it applies them. Every built-in
/// read model is one.
pub struct TableProjection {
    pub name: &'static str,
    pub tables: &'static [&'static str],
    /// `(aggregate type, event type)` pairs; `"*"` as the event type reads
    /// every event of the aggregate type. Only these events reach `apply`.
    pub reads: &'static [(&'static str, &'static str)],
    pub apply: Apply,
}

pub(crate) fn reads_event(reads: &[(&str, &str)], aggregate_type: &str, event_type: &str) -> bool {
    reads
        .iter()
        .any(|(a, e)| *a == aggregate_type && (*e == "*" || *e == event_type))
}

pub(crate) fn reset_tables<'a>(
    tables: &'static [&'static str],
    tx: &'a mut PgConnection,
) -> BoxFuture<'a, Result<(), sqlx::Error>> {
    Box::pin(async move {
        for table in tables {
            sqlx::query(&format!("DELETE FROM {table}"))
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    })
}

impl Projection for TableProjection {
    fn name(&self) -> &'static str {
        self.name
    }

    fn reads(&self, aggregate_type: &str, event_type: &str) -> bool {
        reads_event(self.reads, aggregate_type, event_type)
    }

    fn reads_aggregate(&self, aggregate_type: &str) -> bool {
        self.reads.iter().any(|(a, _)| *a == aggregate_type)
    }

    fn apply_batch<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        events: &'a [StoredEvent],
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        let events: Vec<&StoredEvent> = events
            .iter()
            .filter(|e| Projection::reads(self, &e.aggregate_type, &e.event_type))
            .collect();
        match self.apply {
            Apply::Batch(apply) => apply(tx, events),
            Apply::EachEvent(apply) => Box::pin(async move {
                for event in events {
                    apply(&mut *tx, event).await?;
                }
                Ok(())
            }),
        }
    }

    fn reset<'a>(&'a self, tx: &'a mut PgConnection) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        reset_tables(self.tables, tx)
    }
}

#[derive(Debug, Clone)]
pub struct ProjectorConfig {
    pub batch_size: i64,
    /// How often a leader looks for events without a notification, and a
    /// follower tries to become leader.
    pub poll_interval: Duration,
    /// The payload this process's own `NOTIFY tenantry_events` carries: its
    /// appends already woke the projectors, so the echo is ignored.
    pub own_announcement: Option<String>,
}

impl Default for ProjectorConfig {
    fn default() -> Self {
        Self {
            batch_size: 500,
            poll_interval: Duration::from_secs(1),
            own_announcement: None,
        }
    }
}

async fn ensure_checkpoint_row(pool: &PgPool, name: &str) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO projection_checkpoints (name) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(name)
        .execute(pool)
        .await?;
    Ok(())
}

/// The committed checkpoint of a projection.
pub async fn stored_checkpoint(pool: &PgPool, name: &str) -> Result<Checkpoint, sqlx::Error> {
    let row = sqlx::query(
        "SELECT tx_id::text AS tx_id, position FROM projection_checkpoints WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(pool)
    .await?;
    match row {
        Some(row) => Checkpoint::from_parts(row.get("tx_id"), row.get("position")),
        None => Ok(Checkpoint::ZERO),
    }
}

/// Run one batch. `seen` is where this process has already read the log
/// to for this projection (at least its stored checkpoint).
///
/// It first reads up to `batch_size` events after `seen` without a
/// transaction. When the projection reads none of them, that is the whole
/// batch: nothing is written and the checkpoint stays where it is stored
/// (those events need nothing, so re-reading them after a restart is
/// harmless). Otherwise it applies a batch in one transaction under the
/// checkpoint row's lock (the fence), from the later of the stored
/// checkpoint and `seen`, and moves the checkpoint with it.
///
/// Returns how many events it read and how far it has read.
pub async fn run_batch(
    pool: &PgPool,
    projection: &dyn Projection,
    batch_size: i64,
    seen: Checkpoint,
) -> Result<(usize, Checkpoint), ProjectionError> {
    let ahead = {
        let mut conn = pool.acquire().await?;
        headers_after(&mut conn, seen, batch_size).await?
    };
    run_batch_over(pool, projection, batch_size, seen, &ahead).await
}

/// [`run_batch`] with the headers after `seen` already read (by the
/// shared [`Tail`]).
async fn run_batch_over(
    pool: &PgPool,
    projection: &dyn Projection,
    batch_size: i64,
    seen: Checkpoint,
    ahead: &[EventHeader],
) -> Result<(usize, Checkpoint), ProjectionError> {
    let Some(last) = ahead.last() else {
        return Ok((0, seen));
    };
    if !ahead
        .iter()
        .any(|e| projection.reads(&e.aggregate_type, &e.event_type))
    {
        return Ok((ahead.len(), last.checkpoint()?));
    }
    let name = projection.name();
    let lock = "SELECT tx_id::text AS tx_id, position FROM projection_checkpoints WHERE name = $1 FOR UPDATE";
    let mut tx = pool.begin().await?;
    let row = match sqlx::query(lock)
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?
    {
        Some(row) => row,
        // First batch ever for this projection: create its checkpoint row.
        None => {
            tx.rollback().await?;
            ensure_checkpoint_row(pool, name).await?;
            tx = pool.begin().await?;
            sqlx::query(lock).bind(name).fetch_one(&mut *tx).await?
        }
    };
    // Events between the stored checkpoint and `seen` were read here and
    // need nothing from this projection; another leader may have gone further.
    let start = Checkpoint::from_parts(row.get("tx_id"), row.get("position"))?.max(seen);
    let events = read_after(&mut tx, start, batch_size).await?;
    let Some(last) = events.last() else {
        tx.rollback().await?;
        return Ok((0, start));
    };
    let end = last.checkpoint()?;
    projection.apply_batch(&mut tx, &events).await?;
    sqlx::query(
        "UPDATE projection_checkpoints SET tx_id = $2::text::xid8, position = $3, updated_at = now() \
          WHERE name = $1",
    )
    .bind(name)
    .bind(end.tx_id.to_string())
    .bind(end.position)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((events.len(), end))
}

/// Apply batches until the projection has caught up with the log.
pub async fn catch_up(
    pool: &PgPool,
    projection: &dyn Projection,
    batch_size: i64,
) -> Result<Checkpoint, ProjectionError> {
    // Every event committed before now, however long an older transaction
    // (anywhere on the server: the horizon is cluster-wide) keeps it behind
    // the horizon. Stopping at the first empty batch would report a rebuild
    // done while the newest events are still unread.
    let head = crate::log::head(pool).await?;
    let started = std::time::Instant::now();
    let mut seen = stored_checkpoint(pool, projection.name()).await?;
    loop {
        let (read, reached) = run_batch(pool, projection, batch_size, seen).await?;
        seen = reached;
        if read > 0 {
            continue;
        }
        if head.is_none_or(|head| reached >= head) {
            return Ok(reached);
        }
        if started.elapsed() > CATCH_UP_PATIENCE {
            return Err(ProjectionError::HorizonHeld {
                waited_secs: started.elapsed().as_secs(),
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How long [`catch_up`] waits for a transaction older than its start to
/// end before it gives up.
const CATCH_UP_PATIENCE: Duration = Duration::from_secs(120);

/// Empty the read model and replay the whole log into it. Safe while a
/// server runs: the reset takes the same fence as every batch.
pub async fn rebuild(
    pool: &PgPool,
    projection: &dyn Projection,
    batch_size: i64,
) -> Result<Checkpoint, ProjectionError> {
    let name = projection.name();
    ensure_checkpoint_row(pool, name).await?;
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT 1 FROM projection_checkpoints WHERE name = $1 FOR UPDATE")
        .bind(name)
        .execute(&mut *tx)
        .await?;
    projection.reset(&mut tx).await?;
    sqlx::query(
        "UPDATE projection_checkpoints SET tx_id = '0', position = 0, updated_at = now() WHERE name = $1",
    )
    .bind(name)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    catch_up(pool, projection, batch_size).await
}

/// The log's tail as the projectors of this process last read it: one
/// read per wake-up serves every projection (each used to read the headers
/// after its own position and the log's head for itself, two queries per
/// projection per commit).
struct Tail {
    wake: watch::Receiver<u64>,
    last: tokio::sync::Mutex<Option<TailRead>>,
}

struct TailRead {
    /// The wake-up count read just before the read: everything appended
    /// before that wake-up was committed when it was read.
    generation: u64,
    from: Checkpoint,
    headers: Vec<EventHeader>,
    checkpoints: Vec<Checkpoint>,
    /// The read stopped at its limit: more may follow its last header.
    full: bool,
    head: Option<Checkpoint>,
}

/// What [`Tail::after`] answers: the headers after a position (in order),
/// whether more may follow them, and the log's head when they were read.
struct Ahead {
    headers: Vec<EventHeader>,
    more: bool,
    head: Option<Checkpoint>,
}

impl Tail {
    fn new(wake: watch::Receiver<u64>) -> Self {
        Self {
            wake,
            last: tokio::sync::Mutex::new(None),
        }
    }

    /// The headers after `seen` (at most `limit`), from the last read when
    /// it was made after wake-up `fresh_as_of` and covers `seen`, else
    /// read now (`None`: always read now).
    async fn after(
        &self,
        pool: &PgPool,
        seen: Checkpoint,
        limit: i64,
        fresh_as_of: Option<u64>,
    ) -> Result<Ahead, sqlx::Error> {
        let mut last = self.last.lock().await;
        if let (Some(wanted), Some(read)) = (fresh_as_of, last.as_ref()) {
            if read.generation >= wanted && read.from <= seen {
                let start = read.checkpoints.partition_point(|c| *c <= seen);
                let rest = &read.headers[start..];
                // Past the end of a read that stopped at its limit, only a
                // new read knows what follows.
                if !(rest.is_empty() && read.full) {
                    return Ok(Ahead {
                        headers: rest.iter().take(limit as usize).cloned().collect(),
                        more: read.full || rest.len() > limit as usize,
                        head: read.head,
                    });
                }
            }
        }
        let generation = *self.wake.borrow();
        let headers = {
            let mut conn = pool.acquire().await?;
            headers_after(&mut conn, seen, limit).await?
        };
        let head = crate::log::head(pool).await?;
        let checkpoints = headers
            .iter()
            .map(EventHeader::checkpoint)
            .collect::<Result<Vec<_>, _>>()?;
        let full = headers.len() as i64 >= limit;
        *last = Some(TailRead {
            generation,
            from: seen,
            headers: headers.clone(),
            checkpoints,
            full,
            head,
        });
        Ok(Ahead {
            headers,
            more: full,
            head,
        })
    }
}

fn advisory_key(name: &str) -> String {
    format!("tenantry.projection.{name}")
}

/// The projectors of one server process.
#[derive(Clone)]
pub struct ProjectorRuntime {
    pool: PgPool,
    projectors: Arc<Vec<Projector>>,
    wake: watch::Receiver<u64>,
    wakes: Arc<Wakes>,
}

/// Who to wake when events may have been appended.
struct Wakes {
    /// Counts every wake-up (the generation a read of the tail is fresh as of).
    all: watch::Sender<u64>,
    /// Each projection's own signal.
    each: Vec<(Arc<dyn Projection>, Arc<tokio::sync::Notify>)>,
}

impl Wakes {
    /// Wake the projections that read `aggregate_type` (`None`: unknown,
    /// another process's append: all of them).
    fn wake(&self, aggregate_type: Option<&str>) {
        self.all.send_modify(|c| *c = c.wrapping_add(1));
        for (projection, signal) in &self.each {
            if aggregate_type.is_none_or(|t| projection.reads_aggregate(t)) {
                signal.notify_one();
            }
        }
    }
}

/// A running projection and its leader's progress.
struct Projector {
    projection: Arc<dyn Projection>,
    progress: watch::Receiver<Progress>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Progress {
    checkpoint: Checkpoint,
    leader: bool,
}

/// How many events after a checkpoint [`ProjectorRuntime::lag`] looks at.
pub const LAG_SCAN: i64 = 10_000;

/// One projection's distance behind the log, as [`ProjectorRuntime::lag`]
/// measures it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectionLag {
    pub name: &'static str,
    /// This process leads it.
    pub leader: bool,
    /// Events it reads that it has not applied yet (at most `LAG_SCAN`).
    pub events: u64,
    /// The age of the oldest of them; 0 when there are none.
    pub seconds: f64,
}

/// Handles to the running projector tasks; await [`ProjectorTasks::join`]
/// after signalling shutdown.
pub struct ProjectorTasks {
    handles: Vec<JoinHandle<()>>,
}

impl ProjectorTasks {
    pub async fn join(self) {
        for handle in self.handles {
            if let Err(e) = handle.await {
                error!(error = %e, "projector task ended abnormally");
            }
        }
    }
}

impl ProjectorRuntime {
    /// Start one task per projection plus the LISTEN task. They stop when
    /// `shutdown` turns true.
    ///
    /// Leaders wake on [`ProjectorRuntime::appended`] (this process's
    /// appends, after each commit: only the projections that read the
    /// aggregate type), on `NOTIFY tenantry_events` (other processes'
    /// appends: all of them), and poll as a fallback.
    pub fn start(
        pool: PgPool,
        projections: Vec<Arc<dyn Projection>>,
        config: ProjectorConfig,
        shutdown: watch::Receiver<bool>,
    ) -> (Self, ProjectorTasks) {
        let (wake_tx, wake_rx) = watch::channel(0u64);
        let wakes = Arc::new(Wakes {
            all: wake_tx,
            each: projections
                .iter()
                .map(|p| (p.clone(), Arc::new(tokio::sync::Notify::new())))
                .collect(),
        });
        let mut handles = vec![tokio::spawn(listen(
            pool.clone(),
            wakes.clone(),
            config.own_announcement.clone(),
            shutdown.clone(),
        ))];
        let tail = Arc::new(Tail::new(wake_rx.clone()));
        let mut projectors = Vec::new();
        for (projection, signal) in &wakes.each {
            let (tx, rx) = watch::channel(Progress::default());
            projectors.push(Projector {
                projection: projection.clone(),
                progress: rx,
            });
            handles.push(tokio::spawn(lead(
                pool.clone(),
                tail.clone(),
                projection.clone(),
                config.clone(),
                tx,
                Woken {
                    signal: signal.clone(),
                    generation: wake_rx.clone(),
                },
                shutdown.clone(),
            )));
        }
        let runtime = Self {
            pool,
            projectors: Arc::new(projectors),
            wake: wake_rx,
            wakes,
        };
        (runtime, ProjectorTasks { handles })
    }

    /// This process appended events of `aggregate_type` (called right
    /// after the commit): wake the projections that read it.
    pub fn appended(&self, aggregate_type: &str) {
        self.wakes.wake(Some(aggregate_type));
    }

    /// How far each projection is behind the log: the events it has yet to
    /// apply (counted over at most `LAG_SCAN` events after its checkpoint)
    /// and the age of the oldest of them. Measured from this process's
    /// position where it leads, else from the stored checkpoint.
    pub async fn lag(&self) -> Result<Vec<ProjectionLag>, sqlx::Error> {
        let mut lags = Vec::with_capacity(self.projectors.len());
        for p in self.projectors.iter() {
            let name = p.projection.name();
            let progress = *p.progress.borrow();
            let from = if progress.leader {
                progress.checkpoint
            } else {
                stored_checkpoint(&self.pool, name).await?
            };
            let ahead = {
                let mut conn = self.pool.acquire().await?;
                headers_after(&mut conn, from, LAG_SCAN).await?
            };
            let mut unapplied = ahead
                .iter()
                .filter(|e| p.projection.reads(&e.aggregate_type, &e.event_type));
            let oldest = unapplied.next();
            let events = oldest.map_or(0, |_| 1 + unapplied.count() as u64);
            let seconds = oldest.map_or(0.0, |e| {
                (chrono::Utc::now() - e.recorded_at)
                    .num_milliseconds()
                    .max(0) as f64
                    / 1000.0
            });
            lags.push(ProjectionLag {
                name,
                leader: progress.leader,
                events,
                seconds,
            });
        }
        Ok(lags)
    }

    /// Changes whenever events may have been appended (this process's
    /// commits and other processes' notifications): for other readers of
    /// the log in this process.
    pub fn wake(&self) -> watch::Receiver<u64> {
        self.wake.clone()
    }

    /// Whether this process currently leads the named projection.
    pub fn is_leader(&self, name: &str) -> bool {
        self.projectors
            .iter()
            .any(|p| p.projection.name() == name && p.progress.borrow().leader)
    }

    /// Wait until every projection that reads any of the written events
    /// has passed them (read-your-writes). Returns false if `timeout` ran
    /// out first.
    pub async fn wait_for(&self, written: &Written, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        for p in self.projectors.iter() {
            let reads = written
                .event_types
                .iter()
                .any(|t| p.projection.reads(written.aggregate_type, t));
            if !reads {
                continue;
            }
            let name = p.projection.name();
            if !self
                .wait_one(name, p.progress.clone(), written.checkpoint, deadline)
                .await
            {
                return false;
            }
        }
        true
    }

    /// Wait until no projection has an event left to apply (a tool that
    /// reads the read models once it has caught up with the log). False if
    /// `timeout` ran out first.
    pub async fn wait_caught_up(&self, timeout: Duration) -> Result<bool, sqlx::Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut wake = self.wake.clone();
        loop {
            if self.lag().await?.iter().all(|l| l.events == 0) {
                return Ok(true);
            }
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return Ok(false),
                _ = wake.changed() => {}
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
    }

    async fn wait_one(
        &self,
        name: &str,
        mut rx: watch::Receiver<Progress>,
        target: Checkpoint,
        deadline: tokio::time::Instant,
    ) -> bool {
        loop {
            let progress = *rx.borrow_and_update();
            if progress.checkpoint >= target {
                return true;
            }
            // Another process leads this projection: its progress is in the table.
            if !progress.leader {
                if let Ok(cp) = stored_checkpoint(&self.pool, name).await {
                    if cp >= target {
                        return true;
                    }
                }
            }
            let step = tokio::time::sleep(Duration::from_millis(20));
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return false,
                _ = rx.changed() => {}
                _ = step, if !progress.leader => {}
            }
        }
    }
}

/// Forward `NOTIFY tenantry_events` (other processes' appends) to the
/// projector tasks.
async fn listen(
    pool: PgPool,
    wakes: Arc<Wakes>,
    own: Option<String>,
    mut shutdown: watch::Receiver<bool>,
) {
    while !*shutdown.borrow() {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                warn!(error = %e, "cannot LISTEN for events; polling only, retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(5)) => continue,
                    _ = shutdown.changed() => return,
                }
            }
        };
        if let Err(e) = listener.listen("tenantry_events").await {
            warn!(error = %e, "LISTEN failed; retrying");
            continue;
        }
        loop {
            tokio::select! {
                n = listener.recv() => match n {
                    // This process's own announcement: its appends woke
                    // the projectors when they committed.
                    Ok(n) if own.as_deref() == Some(n.payload()) => {}
                    Ok(_) => wakes.wake(None),
                    Err(e) => { warn!(error = %e, "event listener lost its connection"); break; }
                },
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// A projection's wake-up signal, and the count of all wake-ups (read
/// when it fires: a read of the tail made since serves).
struct Woken {
    signal: Arc<tokio::sync::Notify>,
    generation: watch::Receiver<u64>,
}

/// One projection's task: become leader, then apply batches until shutdown.
async fn lead(
    pool: PgPool,
    tail: Arc<Tail>,
    projection: Arc<dyn Projection>,
    config: ProjectorConfig,
    progress: watch::Sender<Progress>,
    woken: Woken,
    mut shutdown: watch::Receiver<bool>,
) {
    let name = projection.name();
    let mut failures = Failures::default();
    while !*shutdown.borrow() {
        let mut lock_conn = match try_lead(&pool, name).await {
            Ok(Some(conn)) => conn,
            Ok(None) => {
                debug!(projection = name, "another instance leads; waiting");
                if let Ok(cp) = stored_checkpoint(&pool, name).await {
                    progress.send_replace(Progress {
                        checkpoint: cp,
                        leader: false,
                    });
                }
                tokio::select! {
                    _ = tokio::time::sleep(config.poll_interval) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            Err(e) => {
                // Once per stretch of failures (a database outage would
                // otherwise log every poll interval).
                if failures.note_failure() {
                    warn!(projection = name, error = %e, "cannot take projector leadership; retrying quietly until it works");
                }
                tokio::select! {
                    _ = tokio::time::sleep(config.poll_interval) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
        };
        failures.recovered(name);
        info!(projection = name, "projector leading");
        progress.send_modify(|p| p.leader = true);
        // How far this leader has read the log; starts at the stored checkpoint.
        let mut seen = None;
        // While committed events wait behind the read horizon (an older
        // transaction still runs), retry soon: their wake-up has come and
        // gone, and no other may follow.
        let mut horizon_wait = HORIZON_RETRY_MIN;
        // The wake-up this leader answers: a read of the log's tail made
        // after it serves (`None`: read afresh, after a timer or a failure).
        let mut fresh_as_of = None;
        loop {
            if *shutdown.borrow() {
                break;
            }
            let from = match seen {
                Some(cp) => Ok(cp),
                None => stored_checkpoint(&pool, name).await,
            };
            let batch = match from {
                Ok(from) => match tail
                    .after(&pool, from, config.batch_size, fresh_as_of)
                    .await
                {
                    Ok(ahead) => run_batch_over(
                        &pool,
                        projection.as_ref(),
                        config.batch_size,
                        from,
                        &ahead.headers,
                    )
                    .await
                    .map(|(read, reached)| (read, reached, ahead)),
                    Err(e) => Err(e.into()),
                },
                Err(e) => Err(e.into()),
            };
            let mut head = None;
            match batch {
                Ok((read, reached, ahead)) => {
                    failures.recovered(name);
                    seen = Some(reached);
                    progress.send_replace(Progress {
                        checkpoint: reached,
                        leader: true,
                    });
                    if read as i64 >= config.batch_size || ahead.more {
                        continue;
                    }
                    head = ahead.head;
                }
                Err(e) => {
                    if failures.note_failure() {
                        error!(projection = name, error = %e, "projector batch failed; retrying quietly until it works");
                    }
                }
            }
            let held_back = match (seen, head) {
                (Some(reached), Some(head)) => head > reached,
                _ => false,
            };
            let pause = if held_back {
                let pause = horizon_wait;
                horizon_wait = (horizon_wait * 2).min(HORIZON_RETRY_MAX);
                pause
            } else {
                horizon_wait = HORIZON_RETRY_MIN;
                config.poll_interval
            };
            fresh_as_of = None;
            tokio::select! {
                _ = woken.signal.notified() => fresh_as_of = Some(*woken.generation.borrow()),
                _ = tokio::time::sleep(pause), if held_back => {}
                _ = tokio::time::sleep(pause), if !held_back => {
                    // Still holding the lock? A dropped connection releases it.
                    if lock_conn.ping().await.is_err() {
                        warn!(projection = name, "lost the leadership connection");
                        break;
                    }
                }
                _ = shutdown.changed() => {}
            }
        }
        progress.send_modify(|p| p.leader = false);
        let _ = lock_conn.close().await;
        info!(projection = name, "projector stopped leading");
    }
}

/// The first and the longest pause before a leader reads again while
/// committed events wait behind the read horizon.
const HORIZON_RETRY_MIN: Duration = Duration::from_millis(2);
const HORIZON_RETRY_MAX: Duration = Duration::from_millis(250);

/// Consecutive failures of a projector loop, so a stretch of them (a
/// database outage) is logged when it starts and when it ends, not at
/// every retry.
#[derive(Debug, Default)]
struct Failures(u64);

impl Failures {
    /// Count a failure; `true` for the first of a stretch.
    fn note_failure(&mut self) -> bool {
        self.0 += 1;
        self.0 == 1
    }

    fn recovered(&mut self, projection: &str) {
        if self.0 > 0 {
            info!(projection, failures = self.0, "projector works again");
            self.0 = 0;
        }
    }
}

/// Take the projection's advisory lock on a dedicated connection.
async fn try_lead(pool: &PgPool, name: &str) -> Result<Option<PgConnection>, sqlx::Error> {
    let mut conn = pool.acquire().await?.detach();
    let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
        .bind(advisory_key(name))
        .fetch_one(&mut conn)
        .await?;
    if got {
        Ok(Some(conn))
    } else {
        let _ = conn.close().await;
        Ok(None)
    }
}
