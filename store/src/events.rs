//! The command executor: load an aggregate from its events, let it decide,
//! and append the new events in one transaction together with their
//! uniqueness claims and any side writes (credentials, sessions).
//!
//! Why not postgres-es's repository: see docs/adr/0001-own-event-repository.md.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use tenantry_domain::{
    AggregateRoot, ClaimChange, ClaimScope, CodecError, EventCodec, EventMetadata, UniqueClaims,
};
use uuid::Uuid;

use crate::log::{Checkpoint, Written};

/// How often a command is re-run against fresh state after losing an
/// optimistic-concurrency race before answering 409 `concurrent_update`.
/// Every command here is a pure decision on the aggregate's state, so a
/// re-run is always safe.
pub const MAX_ATTEMPTS: usize = 4;

/// A write to a side table that commits atomically with a command's
/// events (and only when the command appended some). Side writes are data,
/// so no caller ever holds a database connection: the store applies them
/// inside the append transaction.
#[derive(Debug, Clone)]
pub enum SideWrite {
    /// A password hash for a user (set or replace).
    SetPassword {
        user_id: Uuid,
        hash: String,
    },
    /// A new session and its first refresh token (only its SHA-256).
    StartSession {
        session_id: Uuid,
        user_id: Uuid,
        expires_at: DateTime<Utc>,
        refresh_hash: Vec<u8>,
    },
    /// An impersonation session (no refresh token).
    StartImpersonation {
        session_id: Uuid,
        user_id: Uuid,
        admin_id: Uuid,
        expires_at: DateTime<Utc>,
    },
    /// Trade a refresh token in for a new one; refused with
    /// [`Refusal::RefreshTokenReused`] when it was already traded in.
    RotateRefreshToken {
        session_id: Uuid,
        old_hash: Vec<u8>,
        new_hash: Vec<u8>,
    },
    RevokeSession {
        session_id: Uuid,
        reason: &'static str,
    },
    RevokeUserSessions {
        user_id: Uuid,
        reason: &'static str,
    },
    InsertApiKey(crate::api_keys::NewKey),
    RevokeApiKey {
        key_id: Uuid,
    },
    /// The live token of an invitation (its SHA-256), replacing any other.
    SetInvitationToken {
        invitation_id: Uuid,
        tenant_id: Uuid,
        token_hash: Vec<u8>,
    },
    InsertDataKey {
        id: Uuid,
        tenant_id: Uuid,
        master_key_id: String,
        wrapped: Vec<u8>,
    },
    /// Crypto-shred a data key (its tombstone stays).
    DestroyDataKey {
        id: Uuid,
    },
    /// Erase a person: destroy every data key of the subjects (their own,
    /// their address's), and make the email outbox forget the address
    /// (pending emails to it are not sent).
    ErasePerson {
        subjects: Vec<Uuid>,
        email_hash: String,
    },
    /// Take usage record ids (with their content hashes); refused with
    /// [`Refusal::UsageIdTaken`] when a racing batch took one first.
    TakeUsageIds {
        tenant_id: Uuid,
        batch_id: Uuid,
        ids: Vec<String>,
        hashes: Vec<Vec<u8>>,
    },
}

/// Why a side write refused, undoing the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The refresh token was traded in already (by a racing refresh).
    RefreshTokenReused,
    /// A usage record id was taken by another batch in the meantime.
    UsageIdTaken,
}

/// A group's side writes as few statements: the usage ids all the
/// group's batches take are taken in one (all or none, like the group).
enum Step<'a> {
    Write(&'a SideWrite),
    TakeUsageIds {
        tenant_id: Uuid,
        batches: Vec<Uuid>,
        ids: Vec<String>,
        hashes: Vec<Vec<u8>>,
    },
}

fn coalesce(side: &[SideWrite]) -> Vec<Step<'_>> {
    let mut steps: Vec<Step<'_>> = Vec::with_capacity(side.len());
    for write in side {
        let SideWrite::TakeUsageIds {
            tenant_id,
            batch_id,
            ids,
            hashes,
        } = write
        else {
            steps.push(Step::Write(write));
            continue;
        };
        let same_tenant = steps.iter_mut().find_map(|s| match s {
            Step::TakeUsageIds {
                tenant_id: t,
                batches,
                ids,
                hashes,
            } if t == tenant_id => Some((batches, ids, hashes)),
            _ => None,
        });
        match same_tenant {
            Some((batches, taken, taken_hashes)) => {
                batches.extend(std::iter::repeat_n(*batch_id, ids.len()));
                taken.extend(ids.iter().cloned());
                taken_hashes.extend(hashes.iter().cloned());
            }
            None => steps.push(Step::TakeUsageIds {
                tenant_id: *tenant_id,
                batches: vec![*batch_id; ids.len()],
                ids: ids.clone(),
                hashes: hashes.clone(),
            }),
        }
    }
    steps
}

impl Step<'_> {
    async fn apply<E>(&self, tx: &mut PgConnection) -> Result<(), CommandError<E>> {
        match self {
            Self::Write(write) => write.apply(tx).await,
            Self::TakeUsageIds {
                tenant_id,
                batches,
                ids,
                hashes,
            } => {
                if !crate::usage::take(tx, *tenant_id, batches, ids, hashes).await? {
                    return Err(CommandError::Refused(Refusal::UsageIdTaken));
                }
                Ok(())
            }
        }
    }
}

impl SideWrite {
    async fn apply<E>(&self, tx: &mut PgConnection) -> Result<(), CommandError<E>> {
        use crate::{api_keys, invitations, sessions, vault};
        match self {
            Self::SetPassword { user_id, hash } => {
                sessions::set_password(tx, *user_id, hash).await?
            }
            Self::StartSession {
                session_id,
                user_id,
                expires_at,
                refresh_hash,
            } => {
                sessions::start_session(tx, *session_id, *user_id, *expires_at, refresh_hash)
                    .await?
            }
            Self::StartImpersonation {
                session_id,
                user_id,
                admin_id,
                expires_at,
            } => {
                sessions::start_impersonation(tx, *session_id, *user_id, *admin_id, *expires_at)
                    .await?
            }
            Self::RotateRefreshToken {
                session_id,
                old_hash,
                new_hash,
            } => {
                if !sessions::rotate_refresh_token(tx, old_hash).await? {
                    return Err(CommandError::Refused(Refusal::RefreshTokenReused));
                }
                sessions::add_refresh_token(tx, *session_id, new_hash).await?;
            }
            Self::TakeUsageIds {
                tenant_id,
                batch_id,
                ids,
                hashes,
            } => {
                let batches = vec![*batch_id; ids.len()];
                if !crate::usage::take(tx, *tenant_id, &batches, ids, hashes).await? {
                    return Err(CommandError::Refused(Refusal::UsageIdTaken));
                }
            }
            Self::RevokeSession { session_id, reason } => {
                sessions::revoke_session(tx, *session_id, reason).await?
            }
            Self::RevokeUserSessions { user_id, reason } => {
                sessions::revoke_user_sessions(tx, *user_id, reason).await?;
            }
            Self::InsertApiKey(key) => api_keys::insert(tx, key).await?,
            Self::RevokeApiKey { key_id } => api_keys::revoke(tx, *key_id).await?,
            Self::SetInvitationToken {
                invitation_id,
                tenant_id,
                token_hash,
            } => invitations::set_token(tx, *invitation_id, *tenant_id, token_hash).await?,
            Self::InsertDataKey {
                id,
                tenant_id,
                master_key_id,
                wrapped,
            } => vault::insert_data_key(tx, *id, *tenant_id, master_key_id, wrapped).await?,
            Self::DestroyDataKey { id } => vault::destroy_data_key(tx, *id).await?,
            Self::ErasePerson {
                subjects,
                email_hash,
            } => {
                vault::destroy_subject_keys(tx, subjects).await?;
                crate::outbox::forget_recipient(tx, email_hash).await?;
            }
        }
        Ok(())
    }
}

#[derive(Debug)]
pub enum CommandError<E> {
    /// The aggregate refused the command.
    Domain(E),
    /// Another aggregate already holds this unique value.
    Claimed(ClaimScope),
    /// Lost the optimistic-concurrency race `MAX_ATTEMPTS` times.
    Concurrency,
    /// A side write refused (a refresh token traded in meanwhile).
    Refused(Refusal),
    Codec(CodecError),
    Database(sqlx::Error),
}

impl<E> From<sqlx::Error> for CommandError<E> {
    fn from(e: sqlx::Error) -> Self {
        Self::Database(e)
    }
}

/// What a successful command produced.
pub struct Committed<A: Aggregate> {
    pub events: Vec<A::Event>,
    /// Where the events landed and their types; `None` when the command was
    /// a no-op. `AppState::settle` waits on it to read your writes.
    pub written: Option<Written>,
}

#[derive(Clone)]
pub(crate) struct CommandExecutor {
    pool: PgPool,
    /// Bumped after every commit that appended events.
    appended: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
    /// Called after every commit that appended events, before the command
    /// returns, with the aggregate's type and id.
    on_commit: std::sync::Arc<std::sync::RwLock<Vec<CommitListener>>>,
    slots: std::sync::Arc<AggregateSlots>,
    /// Whether every append reaches [`Self::heard_append`].
    hearing: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// Told of each commit that appended events: the aggregate's type and id.
pub type CommitListener = std::sync::Arc<dyn Fn(&'static str, &str) + Send + Sync>;

/// How many aggregates' states this process keeps between commands.
const CACHED_AGGREGATES: usize = 4096;

/// One slot per recently used aggregate in this process: an async mutex
/// that commands on the aggregate queue on, holding the aggregate's state
/// as of the last command here.
///
/// - **The queue:** commands on one aggregate wait here instead of racing
///   to the database and losing optimistic-concurrency retries (which
///   answered 409 `concurrent_update` to busy tenants).
/// - **The state:** the next command reads only the events after the
///   cached version (normally none) instead of the whole stream. Events
///   are immutable and each aggregate's sequence is gapless, so the cached
///   state plus the newer events is exactly the state a full load gives,
///   whatever other processes appended meanwhile; the optimistic check on
///   append still decides any race with them.
#[derive(Default)]
struct AggregateSlots {
    map: std::sync::Mutex<std::collections::HashMap<AggregateKey, SlotEntry>>,
    /// Every aggregate type a slot was made for (a handful).
    kinds: std::sync::Mutex<Vec<&'static str>>,
}

type AggregateKey = (&'static str, String);

struct SlotEntry {
    slot: std::sync::Arc<SlotCell>,
    last_used: std::time::Instant,
}

/// One aggregate's cached state, and the commands waiting for it.
struct SlotCell {
    state: tokio::sync::Mutex<Slot>,
    /// `Pending<A>` of the key's aggregate type, in arrival order.
    queue: std::sync::Mutex<std::collections::VecDeque<Box<dyn std::any::Any + Send>>>,
    /// A task is working off the queue.
    draining: std::sync::atomic::AtomicBool,
    /// A copy of the state as of a recent version, for loads while a
    /// command holds `state` (they catch up from it instead of replaying
    /// the whole stream).
    published: std::sync::Mutex<Slot>,
    /// Appends to the aggregate this process heard of from the log
    /// ([`CommandExecutor::heard_append`]).
    heard: std::sync::atomic::AtomicU64,
    /// The value of `heard` when the published copy was last read from
    /// the database; another value (or none yet): it may be behind.
    read_at: std::sync::atomic::AtomicU64,
}

impl Default for SlotCell {
    fn default() -> Self {
        Self {
            state: tokio::sync::Mutex::default(),
            queue: std::sync::Mutex::default(),
            draining: std::sync::atomic::AtomicBool::default(),
            published: std::sync::Mutex::default(),
            heard: std::sync::atomic::AtomicU64::new(0),
            read_at: std::sync::atomic::AtomicU64::new(u64::MAX),
        }
    }
}

impl SlotCell {
    /// A copy of the published state, if it is of this type.
    fn published<A: Aggregate + Clone + 'static>(&self) -> Option<(A, i64)> {
        let published = self.published.lock().unwrap_or_else(|e| e.into_inner());
        let (state, version) = published.0.as_ref()?;
        state.downcast_ref::<A>().map(|a| (a.clone(), *version))
    }

    fn publish<A: Aggregate + Clone + 'static>(&self, state: &A, version: i64) {
        let mut published = self.published.lock().unwrap_or_else(|e| e.into_inner());
        if published.0.as_ref().is_none_or(|(_, v)| *v < version) {
            published.put(state.clone(), version);
        }
    }
}

/// A command waiting in its aggregate's queue, and where its answer goes.
struct Pending<A: AggregateRoot> {
    id: A::Id,
    command: A::Command,
    metadata: EventMetadata,
    metadata_json: Value,
    side: Vec<SideWrite>,
    reply: tokio::sync::oneshot::Sender<Result<Committed<A>, CommandError<A::Error>>>,
}

/// At most this many commands are decided and appended together.
const MAX_GROUP: usize = 64;

/// An aggregate's state and the sequence of its last event, type-erased:
/// the key's aggregate type names the concrete type.
#[derive(Default)]
struct Slot(Option<(Box<dyn std::any::Any + Send>, i64)>);

impl Slot {
    fn take<A: Aggregate + 'static>(&mut self) -> Option<(A, i64)> {
        let (state, version) = self.0.take()?;
        state.downcast::<A>().ok().map(|a| (*a, version))
    }

    fn put<A: Aggregate + 'static>(&mut self, aggregate: A, version: i64) {
        self.0 = Some((Box::new(aggregate), version));
    }

    fn peek<A: Aggregate + 'static>(&self) -> Option<(&A, i64)> {
        let (state, version) = self.0.as_ref()?;
        state.downcast_ref::<A>().map(|a| (a, *version))
    }
}

impl AggregateSlots {
    /// The slot of an aggregate, if this process keeps one.
    fn find(&self, kind: &str, id: &str) -> Option<std::sync::Arc<SlotCell>> {
        let kind = *self
            .kinds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|k| **k == kind)?;
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&(kind, id.to_string()))
            .map(|entry| entry.slot.clone())
    }

    fn get(&self, kind: &'static str, id: &str) -> std::sync::Arc<SlotCell> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        let key = (kind, id.to_string());
        if let Some(entry) = map.get_mut(&key) {
            entry.last_used = now;
            return entry.slot.clone();
        }
        if map.len() >= CACHED_AGGREGATES {
            evict_least_recently_used(&mut map);
        }
        {
            let mut kinds = self.kinds.lock().unwrap_or_else(|e| e.into_inner());
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        let slot = std::sync::Arc::new(SlotCell::default());
        map.insert(
            key,
            SlotEntry {
                slot: slot.clone(),
                last_used: now,
            },
        );
        slot
    }
}

/// Drop the least recently used half of the slots nobody is using; a slot
/// in use stays, so the map may briefly exceed its capacity.
fn evict_least_recently_used(map: &mut std::collections::HashMap<AggregateKey, SlotEntry>) {
    let mut idle: Vec<(std::time::Instant, AggregateKey)> = map
        .iter()
        .filter(|(_, e)| std::sync::Arc::strong_count(&e.slot) == 1)
        .map(|(k, e)| (e.last_used, k.clone()))
        .collect();
    idle.sort_unstable_by_key(|(at, _)| *at);
    let evict = idle.len().div_ceil(2);
    for (_, key) in idle.into_iter().take(evict) {
        map.remove(&key);
    }
}

/// `tenantry_commands_total{aggregate, outcome}`: `applied` (events
/// appended), `unchanged` (a no-op), `refused` (the aggregate said no),
/// `conflict` (lost the optimistic race every attempt), `failed` (any other
/// error: a taken unique value, a refused side write, the database).
fn count_command(aggregate: &'static str, outcome: &'static str) {
    metrics::counter!("tenantry_commands_total", "aggregate" => aggregate, "outcome" => outcome)
        .increment(1);
}

fn is_unique_violation(err: &sqlx::Error, constraint: &str) -> bool {
    match err {
        sqlx::Error::Database(db) => {
            db.code().as_deref() == Some("23505") && db.constraint() == Some(constraint)
        }
        _ => false,
    }
}

impl CommandExecutor {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            appended: std::sync::Arc::new(tokio::sync::watch::channel(0).0),
            on_commit: std::sync::Arc::default(),
            slots: std::sync::Arc::default(),
            hearing: std::sync::Arc::default(),
        }
    }

    /// From now on this process hears of every append (its own and other
    /// processes') through [`Self::heard_append`]: what
    /// [`Self::load_recent`] needs to answer from memory.
    pub(crate) fn hear_appends(&self) {
        self.hearing
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// An append to the aggregate was read from the log: a state this
    /// process read before may be behind.
    pub(crate) fn heard_append(&self, aggregate_type: &str, aggregate_id: &str) {
        if let Some(cell) = self.slots.find(aggregate_type, aggregate_id) {
            cell.heard.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// As [`Self::load`], without asking the database when nothing was
    /// appended to the aggregate since this process last read it: its own
    /// commands keep the cached state, and it hears of every other append
    /// from the log (once [`Self::hear_appends`] was called; until then, a
    /// load). For aggregates that rarely change and are read on every hot
    /// request (a tenant's limits, an agent, the price book): the state may
    /// trail another process's append by as long as hearing of it takes.
    pub async fn load_recent<A>(&self, id: A::Id) -> Result<(A, i64), CommandError<A::Error>>
    where
        A: AggregateRoot + Clone + 'static,
        A::Event: EventCodec,
    {
        use std::sync::atomic::Ordering::SeqCst;
        if !self.hearing.load(SeqCst) {
            return self.load::<A>(id).await;
        }
        let cell = self.slots.get(A::TYPE, &id.to_string());
        let heard = cell.heard.load(SeqCst);
        if cell.read_at.load(SeqCst) == heard {
            if let Some(known) = cell.published::<A>() {
                return Ok(known);
            }
        }
        let loaded = self.load::<A>(id).await?;
        // What the next call answers with (a load while a command holds the
        // slot does not publish what it read).
        cell.publish(&loaded.0, loaded.1);
        // An append heard of during the load leaves `heard` past this.
        cell.read_at.store(heard, SeqCst);
        Ok(loaded)
    }

    pub(crate) fn add_listener(&self, listener: CommitListener) {
        self.on_commit
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(listener);
    }

    fn listeners(&self) -> Vec<CommitListener> {
        self.on_commit
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How many commands wait in an aggregate's queue (not counting the
    /// group being appended).
    pub(crate) fn queued(&self, aggregate_type: &'static str, aggregate_id: &str) -> usize {
        self.slots
            .get(aggregate_type, aggregate_id)
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// A receiver that changes after every commit that appended events.
    pub(crate) fn appends(&self) -> tokio::sync::watch::Receiver<u64> {
        self.appended.subscribe()
    }

    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Load an aggregate and the sequence of its last event. Starts from
    /// this process's cached state when no command holds the aggregate.
    pub async fn load<A>(&self, id: A::Id) -> Result<(A, i64), CommandError<A::Error>>
    where
        A: AggregateRoot + Clone + 'static,
        A::Event: EventCodec,
    {
        let aggregate_id = &id.to_string();
        let cell = self.slots.get(A::TYPE, aggregate_id);
        let Ok(mut slot) = cell.state.try_lock() else {
            // A command holds it: from the published copy.
            return self
                .catch_up::<A>(aggregate_id, cell.published::<A>())
                .await;
        };
        let (aggregate, version) = self.catch_up::<A>(aggregate_id, slot.take()).await?;
        cell.publish(&aggregate, version);
        slot.put(aggregate.clone(), version);
        Ok((aggregate, version))
    }

    /// Bring `from` (or a new aggregate) up to date with the stored events.
    async fn catch_up<A>(
        &self,
        aggregate_id: &str,
        from: Option<(A, i64)>,
    ) -> Result<(A, i64), CommandError<A::Error>>
    where
        A: Aggregate,
        A::Event: EventCodec,
    {
        let (mut aggregate, mut version) = from.unwrap_or_default();
        let rows = sqlx::query!(
            "SELECT sequence, event_type, event_version, payload FROM events \
              WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3 ORDER BY sequence",
            A::TYPE,
            aggregate_id,
            version
        )
        .fetch_all(&self.pool)
        .await?;
        for row in rows {
            let event = A::Event::decode(&row.event_type, row.event_version, row.payload)
                .map_err(CommandError::Codec)?;
            aggregate.apply(event);
            version = row.sequence;
        }
        Ok((aggregate, version))
    }

    /// Run a command: queue it on its aggregate and wait for its answer.
    ///
    /// A task per busy aggregate works the queue off in groups: the
    /// commands waiting together are decided one after another on the
    /// in-memory state and their events appended in one statement (one
    /// transaction when there are claims or side writes), each caller
    /// answered with its own result; a refused command in a group does not
    /// fail the others. The task is not the caller's, so a caller that goes
    /// away cannot cancel a group others wait on.
    ///
    /// `side` is written inside the same transaction as the append, only
    /// when the command produced events.
    pub(crate) async fn run<A>(
        &self,
        id: A::Id,
        command: A::Command,
        metadata: &EventMetadata,
        side: &[SideWrite],
    ) -> Result<Committed<A>, CommandError<A::Error>>
    where
        A: AggregateRoot<Services = ()> + Clone + 'static,
        A::Command: Clone,
        A::Event: EventCodec + UniqueClaims,
        A::Command: Send + Sync,
        A::Error: Send,
    {
        let metadata_json = serde_json::to_value(metadata)
            .map_err(|e| CommandError::Database(sqlx::Error::Encode(Box::new(e))))?;
        let cell = self.slots.get(A::TYPE, &id.to_string());
        let (reply, answer) = tokio::sync::oneshot::channel();
        cell.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(Box::new(Pending::<A> {
                id,
                command,
                metadata: metadata.clone(),
                metadata_json,
                side: side.to_vec(),
                reply,
            }));
        if !cell
            .draining
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            let executor = self.clone();
            tokio::spawn(async move { executor.drain::<A>(cell).await });
        }
        answer.await.unwrap_or_else(|_| {
            Err(CommandError::Database(sqlx::Error::Protocol(
                "the command's group ended without an answer".into(),
            )))
        })
    }

    /// Work off an aggregate's queue, a group at a time, until it is empty.
    async fn drain<A>(&self, cell: std::sync::Arc<SlotCell>)
    where
        A: AggregateRoot<Services = ()> + Clone + 'static,
        A::Command: Clone,
        A::Event: EventCodec + UniqueClaims,
        A::Command: Send + Sync,
        A::Error: Send,
    {
        loop {
            let mut slot = cell.state.lock().await;
            loop {
                let group: Vec<Pending<A>> = {
                    let mut queue = cell.queue.lock().unwrap_or_else(|e| e.into_inner());
                    let n = queue.len().min(MAX_GROUP);
                    queue
                        .drain(..n)
                        .filter_map(|p| p.downcast::<Pending<A>>().ok().map(|p| *p))
                        .collect()
                };
                if group.is_empty() {
                    break;
                }
                self.run_group(&cell, &mut slot, group).await;
                if let Some((state, version)) = slot.peek::<A>() {
                    cell.publish(state, version);
                }
            }
            drop(slot);
            cell.draining
                .store(false, std::sync::atomic::Ordering::Release);
            // A command queued after the last look found the flag still set
            // and left the work to this task: take it back, unless another
            // task already did.
            let queued = !cell
                .queue
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_empty();
            if !queued
                || cell
                    .draining
                    .swap(true, std::sync::atomic::Ordering::AcqRel)
            {
                return;
            }
        }
    }

    /// Decide a group and append what it decided. A group of one takes the
    /// single-command path. A group whose append fails for any reason but a
    /// lost race (a taken unique value, a refused side write, the database)
    /// is run again one command at a time, so each caller gets its own
    /// outcome.
    async fn run_group<A>(&self, cell: &SlotCell, slot: &mut Slot, mut group: Vec<Pending<A>>)
    where
        A: AggregateRoot<Services = ()> + Clone + 'static,
        A::Command: Clone,
        A::Event: EventCodec + UniqueClaims,
        A::Command: Send + Sync,
        A::Error: Send,
    {
        if group.len() == 1 {
            let p = group.remove(0);
            self.run_alone(slot, p).await;
            return;
        }
        let aggregate_id = group[0].id.to_string();
        // Decided on this process's cached state when it has one, as a
        // command alone is: an append at a stale version loses the
        // optimistic race and is decided again; refusals and no-ops are
        // confirmed against the log before they are answered.
        let cached = slot.take::<A>();
        let mut confirmed = cached.is_none();
        let read = match cached {
            Some(state) => Ok(state),
            None => self.catch_up::<A>(&aggregate_id, None).await,
        };
        let mut state = match read {
            Ok(s) => Some(s),
            Err(e) => {
                let message = format!("{e:?}");
                for p in group {
                    let _ = p
                        .reply
                        .send(Err(CommandError::Database(sqlx::Error::Protocol(
                            message.clone(),
                        ))));
                }
                return;
            }
        };
        for _ in 0..MAX_ATTEMPTS {
            let Some((mut aggregate, version)) = state.take() else {
                break;
            };
            let before = (!confirmed).then(|| aggregate.clone());
            // Each command's outcome: refused, unchanged, or its events.
            let mut decided: Vec<Result<Vec<A::Event>, A::Error>> = Vec::with_capacity(group.len());
            let mut rows: Vec<NewRow> = Vec::new();
            let mut claims = Vec::new();
            let mut side = Vec::new();
            let mut encode_failed = None;
            for p in &group {
                let sink = EventSink::<A>::default();
                let outcome = aggregate.handle(p.command.clone(), &(), &sink).await;
                let events = sink.collect().await;
                if let Err(e) = outcome {
                    decided.push(Err(e));
                    continue;
                }
                if !events.is_empty() {
                    let chain = (p.metadata.tenant_id == tenantry_domain::PLATFORM_TENANT)
                        .then(|| aggregate.platform_chain(p.id, &p.metadata.actor))
                        .flatten();
                    let first = version + 1 + rows.len() as i64;
                    if let Err(e) = push_rows::<A>(
                        &mut rows,
                        &mut claims,
                        &events,
                        first,
                        &p.metadata,
                        &p.metadata_json,
                        chain,
                    ) {
                        encode_failed = Some(e);
                    }
                    side.extend(p.side.iter().cloned());
                }
                decided.push(Ok(events));
            }
            if let Some(e) = encode_failed {
                for p in group {
                    let _ = p.reply.send(Err(CommandError::Codec(e.clone())));
                }
                return;
            }
            let appends_nothing = decided.iter().any(|d| d.as_ref().is_ok_and(Vec::is_empty));
            if let Some(before) =
                before.filter(|_| appends_nothing || decided.iter().any(Result::is_err))
            {
                // Not confirmed by an append: is the cached state the log's?
                match self
                    .catch_up::<A>(&aggregate_id, Some((before, version)))
                    .await
                {
                    Ok(latest) if latest.1 != version => {
                        confirmed = true;
                        state = Some(latest);
                        continue;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let message = format!("{e:?}");
                        for p in group {
                            let _ =
                                p.reply
                                    .send(Err(CommandError::Database(sqlx::Error::Protocol(
                                        message.clone(),
                                    ))));
                        }
                        return;
                    }
                }
            }
            if rows.is_empty() {
                slot.put(aggregate, version);
                for (p, outcome) in group.into_iter().zip(decided) {
                    count_command(
                        A::TYPE,
                        if outcome.is_err() {
                            "refused"
                        } else {
                            "unchanged"
                        },
                    );
                    let _ = p.reply.send(match outcome {
                        Err(e) => Err(CommandError::Domain(e)),
                        Ok(events) => Ok(Committed {
                            events,
                            written: None,
                        }),
                    });
                }
                return;
            }
            match self
                .append_rows::<A::Error>(A::TYPE, &aggregate_id, &rows, claims, &side)
                .await
            {
                Ok(positions) => {
                    // Published before anyone is answered: a caller's next
                    // `load_recent` sees what its command appended.
                    cell.publish(&aggregate, version + rows.len() as i64);
                    slot.put(aggregate, version + rows.len() as i64);
                    for listener in self.listeners() {
                        listener(A::TYPE, &aggregate_id);
                    }
                    self.appended.send_modify(|n| *n = n.wrapping_add(1));
                    let mut next = 0;
                    for (p, outcome) in group.into_iter().zip(decided) {
                        let answer = match outcome {
                            Err(e) => {
                                count_command(A::TYPE, "refused");
                                Err(CommandError::Domain(e))
                            }
                            Ok(events) if events.is_empty() => {
                                count_command(A::TYPE, "unchanged");
                                Ok(Committed {
                                    events,
                                    written: None,
                                })
                            }
                            Ok(events) => {
                                count_command(A::TYPE, "applied");
                                next += events.len();
                                Ok(Committed {
                                    written: Some(Written {
                                        checkpoint: positions[next - 1],
                                        aggregate_type: A::TYPE,
                                        aggregate_id: aggregate_id.clone(),
                                        event_types: events
                                            .iter()
                                            .map(DomainEvent::event_type)
                                            .collect(),
                                    }),
                                    events,
                                })
                            }
                        };
                        let _ = p.reply.send(answer);
                    }
                    metrics::histogram!("tenantry_command_group_size", "aggregate" => A::TYPE)
                        .record(positions.len() as f64);
                    return;
                }
                Err(CommandError::Database(e)) if is_unique_violation(&e, "events_pkey") => {
                    metrics::counter!("tenantry_command_conflicts_total", "aggregate" => A::TYPE)
                        .increment(1);
                    match self.catch_up::<A>(&aggregate_id, None).await {
                        Ok(latest) => {
                            confirmed = true;
                            state = Some(latest);
                        }
                        Err(_) => break,
                    }
                }
                // Nothing committed, and one of them cannot: find out which,
                // one by one.
                Err(CommandError::Claimed(_) | CommandError::Refused(_)) => {
                    for p in group {
                        self.run_alone(slot, p).await;
                    }
                    return;
                }
                // Not committed, or not known to be: nobody is told it was,
                // and nothing is re-run on a guess.
                Err(e) => {
                    let message = format!("{e:?}");
                    for p in group {
                        count_command(A::TYPE, "failed");
                        let _ = p
                            .reply
                            .send(Err(CommandError::Database(sqlx::Error::Protocol(
                                message.clone(),
                            ))));
                    }
                    return;
                }
            }
        }
        for p in group {
            count_command(A::TYPE, "conflict");
            let _ = p.reply.send(Err(CommandError::Concurrency));
        }
    }

    /// One command on its own, answered.
    async fn run_alone<A>(&self, slot: &mut Slot, p: Pending<A>)
    where
        A: AggregateRoot<Services = ()> + 'static,
        A::Command: Clone,
        A::Event: EventCodec + UniqueClaims,
    {
        let result = self
            .run_one::<A>(
                slot,
                p.id,
                p.command,
                &p.metadata,
                &p.metadata_json,
                &p.side,
            )
            .await;
        let _ = p.reply.send(result);
    }

    /// One command. The state comes from this process's cache when it has
    /// one, without asking the log: a command that appends is checked by
    /// the append itself (a stale state appends at a taken sequence and
    /// loses the optimistic race, then runs again on a reloaded state). A
    /// refusal or a no-op appends nothing, so it is confirmed against the
    /// log before it is answered.
    async fn run_one<A>(
        &self,
        slot: &mut Slot,
        id: A::Id,
        command: A::Command,
        metadata: &EventMetadata,
        metadata_json: &Value,
        side: &[SideWrite],
    ) -> Result<Committed<A>, CommandError<A::Error>>
    where
        A: AggregateRoot<Services = ()> + 'static,
        A::Command: Clone,
        A::Event: EventCodec + UniqueClaims,
    {
        let aggregate_id = &id.to_string();
        // The state to decide on, and whether it was just read from the log.
        let mut state = slot.take::<A>().map(|(a, v)| (a, v, false));
        for _ in 0..MAX_ATTEMPTS {
            let (mut aggregate, version, fresh) = match state.take() {
                Some(cached) => cached,
                None => {
                    let (a, v) = self.catch_up::<A>(aggregate_id, None).await?;
                    (a, v, true)
                }
            };
            let sink = EventSink::<A>::default();
            // `decide` refuses before anything is applied: the state stays good.
            let decided = aggregate.handle(command.clone(), &(), &sink).await;
            let events = sink.collect().await;
            if decided.is_err() || events.is_empty() {
                if !fresh {
                    let (latest, latest_version) = self
                        .catch_up::<A>(aggregate_id, Some((aggregate, version)))
                        .await?;
                    if latest_version != version {
                        state = Some((latest, latest_version, true));
                        continue;
                    }
                    aggregate = latest;
                }
                slot.put(aggregate, version);
                let outcome = if decided.is_err() {
                    "refused"
                } else {
                    "unchanged"
                };
                count_command(A::TYPE, outcome);
                return match decided {
                    Err(e) => Err(CommandError::Domain(e)),
                    Ok(()) => Ok(Committed {
                        events,
                        written: None,
                    }),
                };
            }
            // Platform-scope events join their person's chain; a tenant's
            // join the tenant's.
            let chain = (metadata.tenant_id == tenantry_domain::PLATFORM_TENANT)
                .then(|| aggregate.platform_chain(id, &metadata.actor))
                .flatten();
            let mut rows = Vec::with_capacity(events.len());
            let mut claims = Vec::new();
            push_rows::<A>(
                &mut rows,
                &mut claims,
                &events,
                version + 1,
                metadata,
                metadata_json,
                chain,
            )
            .map_err(CommandError::Codec)?;
            match self
                .append_rows::<A::Error>(A::TYPE, aggregate_id, &rows, claims, side)
                .await
            {
                Ok(positions) => {
                    // `handle` applied the events: this is the state at the new version.
                    slot.put(aggregate, version + events.len() as i64);
                    let written = Written {
                        checkpoint: positions[positions.len() - 1],
                        aggregate_type: A::TYPE,
                        aggregate_id: aggregate_id.to_string(),
                        event_types: events.iter().map(DomainEvent::event_type).collect(),
                    };
                    count_command(A::TYPE, "applied");
                    for listener in self.listeners() {
                        listener(A::TYPE, aggregate_id);
                    }
                    self.appended.send_modify(|n| *n = n.wrapping_add(1));
                    return Ok(Committed {
                        events,
                        written: Some(written),
                    });
                }
                // Another process appended first: reload from the log.
                Err(CommandError::Database(e)) if is_unique_violation(&e, "events_pkey") => {
                    metrics::counter!("tenantry_command_conflicts_total", "aggregate" => A::TYPE)
                        .increment(1);
                    tracing::debug!(
                        aggregate = A::TYPE,
                        aggregate_id,
                        "optimistic conflict; retrying"
                    );
                    continue;
                }
                // Not committed, or not known to be: the slot stays empty.
                Err(e) => {
                    count_command(A::TYPE, "failed");
                    return Err(e);
                }
            }
        }
        count_command(A::TYPE, "conflict");
        Err(CommandError::Concurrency)
    }

    /// Append rows of one aggregate. With neither uniqueness claims nor
    /// side writes this is one statement (its own transaction, one round
    /// trip); otherwise one transaction holds the events, claims and
    /// writes. Answers each row's place in the global order, in row order.
    async fn append_rows<E>(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        rows: &[NewRow],
        claims: Vec<ClaimChange>,
        side: &[SideWrite],
    ) -> Result<Vec<Checkpoint>, CommandError<E>> {
        let mut columns = NewEvents::default();
        for row in rows {
            columns.tenant_id.push(row.tenant_id);
            columns.sequence.push(row.sequence);
            columns.event_type.push(row.event_type.clone());
            columns.event_version.push(row.event_version);
            columns.payload.push(row.payload.clone());
            columns.metadata.push(row.metadata.clone());
            columns.chain.push(row.chain);
            columns.content_hash.push(
                crate::chain::Content {
                    chain_id: row.chain,
                    tenant_id: row.tenant_id,
                    aggregate_type,
                    aggregate_id,
                    sequence: row.sequence,
                    event_type: &row.event_type,
                    event_version: row.event_version,
                    payload: &row.payload,
                    metadata: &row.metadata,
                }
                .hash()
                .to_vec(),
            );
        }
        let insert = sqlx::query_as!(
            Appended,
            "INSERT INTO events (tenant_id, aggregate_type, aggregate_id, sequence, event_type, \
                                 event_version, payload, metadata, chain_id, content_hash) \
             SELECT e.tenant_id, $1, $2, e.sequence, e.event_type, e.event_version, e.payload, \
                    e.metadata, e.chain_id, e.content_hash \
               FROM UNNEST($3::uuid[], $4::bigint[], $5::text[], $6::int[], $7::jsonb[], \
                           $8::jsonb[], $9::uuid[], $10::bytea[]) \
                    WITH ORDINALITY AS e(tenant_id, sequence, event_type, event_version, payload, \
                                         metadata, chain_id, content_hash, n) \
              ORDER BY e.n \
             RETURNING tx_id::text AS \"tx_id!\", position",
            aggregate_type,
            aggregate_id,
            &columns.tenant_id,
            &columns.sequence,
            &columns.event_type,
            &columns.event_version,
            &columns.payload,
            &columns.metadata,
            &columns.chain as &[Option<uuid::Uuid>],
            &columns.content_hash
        );
        let appended = if claims.is_empty() && side.is_empty() {
            insert.fetch_all(&self.pool).await?
        } else {
            let mut tx = self.pool.begin().await?;
            let appended = insert.fetch_all(&mut *tx).await?;
            for change in claims {
                apply_claim::<E>(&mut tx, aggregate_id, change).await?;
            }
            for write in coalesce(side) {
                write.apply(&mut tx).await?;
            }
            tx.commit().await?;
            appended
        };
        checkpoints(appended)
    }
}

/// Encode a command's events as rows from sequence `first`, and collect
/// their uniqueness claims.
fn push_rows<A>(
    rows: &mut Vec<NewRow>,
    claims: &mut Vec<ClaimChange>,
    events: &[A::Event],
    first: i64,
    metadata: &EventMetadata,
    metadata_json: &Value,
    chain: Option<uuid::Uuid>,
) -> Result<(), CodecError>
where
    A: Aggregate,
    A::Event: EventCodec + UniqueClaims,
{
    for (i, event) in events.iter().enumerate() {
        let (event_type, event_version, payload) = event.encode()?;
        rows.push(NewRow {
            tenant_id: metadata.tenant_id,
            sequence: first + i as i64,
            event_type,
            event_version,
            payload,
            metadata: metadata_json.clone(),
            chain,
        });
        claims.extend(event.claim_changes());
    }
    Ok(())
}

/// One event to append.
struct NewRow {
    tenant_id: uuid::Uuid,
    sequence: i64,
    event_type: String,
    event_version: i32,
    payload: Value,
    metadata: Value,
    chain: Option<uuid::Uuid>,
}

/// Events to append, as the columns `UNNEST` takes.
#[derive(Default)]
struct NewEvents {
    tenant_id: Vec<uuid::Uuid>,
    sequence: Vec<i64>,
    event_type: Vec<String>,
    event_version: Vec<i32>,
    payload: Vec<Value>,
    metadata: Vec<Value>,
    chain: Vec<Option<uuid::Uuid>>,
    /// Each event's content hash (chain format 2, `crate::chain`).
    content_hash: Vec<Vec<u8>>,
}

/// Where an appended event landed.
struct Appended {
    tx_id: String,
    position: i64,
}

/// The appended rows' places in the global order, in the order they were
/// given (positions are taken in insert order within the statement).
fn checkpoints<E>(rows: Vec<Appended>) -> Result<Vec<Checkpoint>, CommandError<E>> {
    let mut out = rows
        .iter()
        .map(|row| Checkpoint::from_parts(&row.tx_id, row.position))
        .collect::<Result<Vec<_>, _>>()?;
    out.sort_unstable();
    Ok(out)
}

async fn apply_claim<E>(
    tx: &mut PgConnection,
    owner: &str,
    change: ClaimChange,
) -> Result<(), CommandError<E>> {
    match change {
        ClaimChange::Claim { scope, value } => {
            let result = sqlx::query!(
                "INSERT INTO unique_claims (scope, value, owner_id) VALUES ($1, $2, $3)",
                scope.as_str(),
                &value,
                owner
            )
            .execute(&mut *tx)
            .await;
            match result {
                Ok(_) => Ok(()),
                Err(e) if is_unique_violation(&e, "unique_claims_pkey") => {
                    Err(CommandError::Claimed(scope))
                }
                Err(e) => Err(e.into()),
            }
        }
        ClaimChange::Release { scope, value } => {
            sqlx::query!(
                "DELETE FROM unique_claims WHERE scope = $1 AND value = $2 AND owner_id = $3",
                scope.as_str(),
                &value,
                owner
            )
            .execute(&mut *tx)
            .await?;
            Ok(())
        }
    }
}

/// Who holds a unique value, if anyone (for example the user id of an email).
/// The claimed values of a scope that start with `prefix`.
pub(crate) async fn claimed_with_prefix(
    pool: &PgPool,
    scope: ClaimScope,
    prefix: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT value FROM unique_claims WHERE scope = $1 AND starts_with(value, $2)",
        scope.as_str(),
        prefix
    )
    .fetch_all(pool)
    .await
}

pub(crate) async fn claim_owner(
    pool: &PgPool,
    scope: ClaimScope,
    value: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT owner_id FROM unique_claims WHERE scope = $1 AND value = $2",
        scope.as_str(),
        value
    )
    .fetch_optional(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(tenant_id: Uuid, batch_id: Uuid, ids: &[&str]) -> SideWrite {
        SideWrite::TakeUsageIds {
            tenant_id,
            batch_id,
            ids: ids.iter().map(|s| s.to_string()).collect(),
            hashes: ids.iter().map(|s| s.as_bytes().to_vec()).collect(),
        }
    }

    /// A group's batches of one tenant take their ids in one statement,
    /// each id with its own batch; other writes stay as they are, in order.
    #[test]
    fn a_groups_usage_ids_are_taken_together_per_tenant() {
        let (t1, t2) = (Uuid::now_v7(), Uuid::now_v7());
        let (b1, b2, b3) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let other = SideWrite::RevokeApiKey {
            key_id: Uuid::now_v7(),
        };
        let side = [
            take(t1, b1, &["a", "b"]),
            other,
            take(t2, b2, &["c"]),
            take(t1, b3, &["d"]),
        ];
        let steps = coalesce(&side);
        assert_eq!(steps.len(), 3);
        match &steps[0] {
            Step::TakeUsageIds {
                tenant_id,
                batches,
                ids,
                hashes,
            } => {
                assert_eq!(*tenant_id, t1);
                assert_eq!(batches, &[b1, b1, b3]);
                assert_eq!(ids, &["a", "b", "d"]);
                assert_eq!(hashes[2], b"d".to_vec());
            }
            Step::Write(_) => panic!("the first step takes t1's ids"),
        }
        assert!(matches!(
            steps[1],
            Step::Write(SideWrite::RevokeApiKey { .. })
        ));
        assert!(matches!(
            &steps[2],
            Step::TakeUsageIds { tenant_id, ids, .. } if *tenant_id == t2 && ids == &["c"]
        ));
    }
}
