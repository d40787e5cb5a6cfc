//! Tenantry's event store (it plays the part the design gave postgres-es;
//! see docs/adr/0001-own-event-repository.md).
//!
//! - [`events`]: the command executor, its per-aggregate state cache, the
//!   append with its uniqueness claims and [`SideWrite`]s, in one transaction.
//! - [`log`]: reading the log in its global order (the projectors' input).
//! - the side tables written with the events or read by the guard:
//!   [`sessions`] (credentials, sessions, refresh tokens), [`api_keys`],
//!   [`invitations`] (token hashes), [`vault`] (data keys and the provider-key
//!   access log), [`idempotency`].
//! - [`db`]: creating the database, the pool and the migrator; [`page`]: keyset pages.
//!
//! Architecture invariant: this crate knows no HTTP. Its errors are typed
//! (`CommandError`, `sqlx::Error`, `RotateError`); what they mean to a client
//! is decided in the API crate.

pub mod api_keys;
pub mod audit;
pub mod chain;
pub mod db;
pub mod events;
pub mod idempotency;
pub mod invitations;
pub mod log;
pub mod outbox;
pub mod page;
pub mod reconciliations;
pub mod sessions;
pub mod usage;
pub mod vault;

pub use events::{CommandError, Committed, Refusal, SideWrite};
pub use log::{Checkpoint, StoredEvent, Written};

use events::CommandExecutor;
use sqlx::PgPool;
use tenantry_domain::{
    AggregateRoot, ClaimScope, EventCodec, EventMetadata, PlanId, UniqueClaims, UserId,
};

/// The write side's storage as the application sees it: the command
/// executor and each side table's reads, behind one value. No caller holds
/// a pool or a connection; writes go through commands and their
/// [`SideWrite`]s.
///
/// Backends: this is the seam a second storage backend plugs into. Today
/// the one implementation is Postgres; an embedded backend becomes a
/// private enum inside `Store` (and each handle), chosen at run time from
/// the database URL, so nothing above this crate changes (see
/// docs/adr/0003-store-boundary.md for why a concrete type and not a trait).
#[derive(Clone)]
pub struct Store {
    commands: CommandExecutor,
    /// What this store's announcements carry, so its own process can tell
    /// them from other processes'.
    instance: std::sync::Arc<str>,
}

impl Store {
    pub fn new(pool: PgPool) -> Self {
        Self {
            commands: CommandExecutor::new(pool),
            instance: uuid::Uuid::now_v7().to_string().into(),
        }
    }

    /// The payload of this store's `NOTIFY tenantry_events`: unique to
    /// the process (the projectors of the process that announced already
    /// woke at the commit).
    pub fn announcement(&self) -> &str {
        &self.instance
    }

    fn pool(&self) -> &PgPool {
        self.commands.pool()
    }

    /// An aggregate's current state and the sequence of its last event.
    pub async fn load<A>(&self, id: A::Id) -> Result<(A, i64), CommandError<A::Error>>
    where
        A: AggregateRoot + Clone + 'static,
        A::Event: EventCodec,
    {
        self.commands.load::<A>(id).await
    }

    /// An aggregate as this process last knew it when nothing was appended
    /// to it since (`CommandExecutor::load_recent`), else loaded.
    pub async fn load_recent<A>(&self, id: A::Id) -> Result<(A, i64), CommandError<A::Error>>
    where
        A: AggregateRoot + Clone + 'static,
        A::Event: EventCodec,
    {
        self.commands.load_recent::<A>(id).await
    }

    /// This process now hears of every append from the log: the follower
    /// that reads it calls [`Self::heard_append`] for each.
    pub fn hear_appends(&self) {
        self.commands.hear_appends();
    }

    /// An append read from the log (any process's).
    pub fn heard_append(&self, aggregate_type: &str, aggregate_id: &str) {
        self.commands.heard_append(aggregate_type, aggregate_id);
    }

    /// Run a command on the aggregate `id` and append what it decides.
    pub async fn execute<A>(
        &self,
        id: A::Id,
        command: A::Command,
        metadata: &EventMetadata,
    ) -> Result<Committed<A>, CommandError<A::Error>>
    where
        A: AggregateRoot<Services = ()> + Clone + 'static,
        A::Command: Clone + Send + Sync,
        A::Error: Send,
        A::Event: EventCodec + UniqueClaims,
    {
        self.commands.run::<A>(id, command, metadata, &[]).await
    }

    /// As [`Store::execute`], with side writes committed in the same
    /// transaction as the events (only when the command appended some).
    pub async fn execute_with<A>(
        &self,
        id: A::Id,
        command: A::Command,
        metadata: &EventMetadata,
        side: &[SideWrite],
    ) -> Result<Committed<A>, CommandError<A::Error>>
    where
        A: AggregateRoot<Services = ()> + Clone + 'static,
        A::Command: Clone + Send + Sync,
        A::Error: Send,
        A::Event: EventCodec + UniqueClaims,
    {
        self.commands.run::<A>(id, command, metadata, side).await
    }

    /// Changes after every commit of this process that appended events:
    /// the projectors of this process wake on it at once.
    pub fn appends(&self) -> tokio::sync::watch::Receiver<u64> {
        self.commands.appends()
    }

    /// How many commands wait in an aggregate's queue behind the group
    /// being appended (operations and tests).
    pub fn queued_commands<A: AggregateRoot>(&self, id: A::Id) -> usize {
        self.commands.queued(A::TYPE, &id.to_string())
    }

    /// Call `listener` with the aggregate type and id of every commit of
    /// this process that appends events, right after it commits and before
    /// the command returns (an in-process cache drops what it held).
    pub fn on_commit(&self, listener: impl Fn(&'static str, &str) + Send + Sync + 'static) {
        self.commands.add_listener(std::sync::Arc::new(listener));
    }

    /// The newest committed event's place in the global order.
    pub async fn head(&self) -> Result<Option<Checkpoint>, sqlx::Error> {
        log::head(self.pool()).await
    }

    /// Up to `limit` event headers after `after` in global order, from
    /// finished transactions only.
    pub async fn headers_after(
        &self,
        after: Checkpoint,
        limit: i64,
    ) -> Result<Vec<log::EventHeader>, sqlx::Error> {
        let mut conn = self.pool().acquire().await?;
        log::headers_after(&mut conn, after, limit).await
    }

    /// Tell other processes that events were appended: `NOTIFY
    /// tenantry_events`, in a statement of its own, never inside an append
    /// (a transaction that notifies holds the cluster's notify lock through
    /// its commit, which serialized every append commit).
    pub async fn announce(&self) -> Result<(), sqlx::Error> {
        sqlx::query!("SELECT pg_notify('tenantry_events', $1)", &*self.instance)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Announce this process's appends to the others until `shutdown`:
    /// one notification per burst (appends made while one is being sent are
    /// covered by the next), so a busy process sends at most one at a time.
    pub async fn run_notifier(&self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut appends = self.appends();
        loop {
            tokio::select! {
                changed = appends.changed() => if changed.is_err() { return },
                _ = shutdown.changed() => return,
            }
            appends.borrow_and_update();
            if let Err(e) = self.announce().await {
                tracing::debug!(error = %e, "cannot announce appends; other processes will poll");
            }
        }
    }

    /// The plan holding a key, if any.
    pub async fn plan_by_key(&self, key: &str) -> Result<Option<PlanId>, sqlx::Error> {
        let owner = events::claim_owner(self.pool(), ClaimScope::PlanKey, key).await?;
        Ok(owner
            .and_then(|id| id.parse::<uuid::Uuid>().ok())
            .map(PlanId::from))
    }

    /// The agent slots a tenant's live agents hold (`AgentSlot` claims).
    pub async fn agent_slots(&self, tenant_id: uuid::Uuid) -> Result<Vec<u32>, sqlx::Error> {
        let prefix = format!("{tenant_id}:");
        let values =
            events::claimed_with_prefix(self.pool(), ClaimScope::AgentSlot, &prefix).await?;
        Ok(values
            .iter()
            .filter_map(|v| v.strip_prefix(&prefix)?.parse().ok())
            .collect())
    }

    /// The installation's value of `name`: kept as `value` when it has none
    /// yet, and the kept one answered either way.
    pub async fn installation_value(&self, name: &str, value: &str) -> Result<String, sqlx::Error> {
        sqlx::query!(
            "INSERT INTO installation (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            name,
            value
        )
        .execute(self.pool())
        .await?;
        sqlx::query_scalar!("SELECT value FROM installation WHERE name = $1", name)
            .fetch_one(self.pool())
            .await
    }

    /// The user holding an email, found by the email's keyed hash.
    pub async fn user_by_email_hash(
        &self,
        email_hash: &str,
    ) -> Result<Option<UserId>, sqlx::Error> {
        let owner = events::claim_owner(self.pool(), ClaimScope::UserEmail, email_hash).await?;
        owner
            .map(|id| {
                id.parse::<uuid::Uuid>()
                    .map(UserId::from)
                    .map_err(|e| sqlx::Error::Decode(format!("claim owner {id:?}: {e}").into()))
            })
            .transpose()
    }

    pub fn sessions(&self) -> sessions::Sessions<'_> {
        sessions::Sessions { pool: self.pool() }
    }

    /// The chains as auditors read and verify them.
    pub fn audit(&self) -> audit::Audit<'_> {
        audit::Audit { pool: self.pool() }
    }

    pub fn api_keys(&self) -> api_keys::ApiKeys<'_> {
        api_keys::ApiKeys { pool: self.pool() }
    }

    pub fn invitation_tokens(&self) -> invitations::InvitationTokens<'_> {
        invitations::InvitationTokens { pool: self.pool() }
    }

    pub fn vault(&self) -> vault::Vault<'_> {
        vault::Vault { pool: self.pool() }
    }

    pub fn idempotency(&self) -> idempotency::Idempotency<'_> {
        idempotency::Idempotency { pool: self.pool() }
    }

    pub fn outbox(&self) -> outbox::Outbox<'_> {
        outbox::Outbox { pool: self.pool() }
    }

    pub fn usage_ids(&self) -> usage::UsageIds<'_> {
        usage::UsageIds { pool: self.pool() }
    }

    pub fn reconciliations(&self) -> reconciliations::Reconciliations<'_> {
        reconciliations::Reconciliations { pool: self.pool() }
    }

    /// The pool's open connections and, of those, the idle ones.
    pub fn pool_connections(&self) -> (u32, usize) {
        (self.pool().size(), self.pool().num_idle())
    }

    /// Close the connections (at shutdown): the read models share them.
    pub async fn close(&self) {
        self.pool().close().await
    }

    /// The database answers: one round trip.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(self.pool()).await?;
        Ok(())
    }

    /// How many of this build's migrations the database has applied.
    pub async fn applied_migrations(&self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
            .fetch_one(self.pool())
            .await
    }
}
