//! The command executor: load an aggregate from its events, let it decide,
//! and append the new events in one transaction together with their
//! uniqueness claims and any side writes (credentials, sessions).
//!
//! Why not postgres-es's repository: see docs/adr/0001-own-event-repository.md.

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use futures_util::future::BoxFuture;
use serde_json::Value;
use sqlx::{PgConnection, PgPool, Row};
use tenantry_domain::{
    ClaimChange, ClaimScope, CodecError, EventCodec, EventMetadata, UniqueClaims,
};
use tenantry_projections::Checkpoint;

use crate::error::ApiError;

/// How often a command is re-run against fresh state after losing an
/// optimistic-concurrency race before answering 409 `concurrent_update`.
/// Every command here is a pure decision on the aggregate's state, so a
/// re-run is always safe.
pub const MAX_ATTEMPTS: usize = 4;

/// Extra writes that must commit atomically with a command's events.
pub type SideEffect<'s> =
    &'s (dyn for<'c> Fn(&'c mut PgConnection) -> BoxFuture<'c, Result<(), ApiError>> + Send + Sync);

#[derive(Debug)]
pub enum CommandError<E> {
    /// The aggregate refused the command.
    Domain(E),
    /// Another aggregate already holds this unique value.
    Claimed(ClaimScope),
    /// Lost the optimistic-concurrency race `MAX_ATTEMPTS` times.
    Concurrency,
    /// A side effect refused (for example a refresh token rotated meanwhile).
    Refused(ApiError),
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
    /// The aggregate's state after the command.
    pub aggregate: A,
    pub events: Vec<A::Event>,
    /// Global position of the last appended event; `None` when the command
    /// was a no-op. Wait for projections to pass it to read your writes.
    pub checkpoint: Option<Checkpoint>,
}

#[derive(Clone)]
pub struct EventStore {
    pool: PgPool,
    locks: std::sync::Arc<AggregateLocks>,
}

/// One async mutex per aggregate in this process. Commands on the same
/// aggregate queue here instead of racing to the database and losing
/// optimistic-concurrency retries (which answered 409 `concurrent_update`
/// to busy tenants); the retry loop still guards against other processes.
#[derive(Default)]
struct AggregateLocks {
    map: std::sync::Mutex<std::collections::HashMap<AggregateKey, WeakLock>>,
}

type AggregateKey = (&'static str, String);
type WeakLock = std::sync::Weak<tokio::sync::Mutex<()>>;

impl AggregateLocks {
    fn get(&self, kind: &'static str, id: &str) -> std::sync::Arc<tokio::sync::Mutex<()>> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let key = (kind, id.to_string());
        if let Some(lock) = map.get(&key).and_then(std::sync::Weak::upgrade) {
            return lock;
        }
        // Forget locks nobody holds once the map grows, so it stays small.
        if map.len() >= 1024 {
            map.retain(|_, weak| weak.strong_count() > 0);
        }
        let lock = std::sync::Arc::new(tokio::sync::Mutex::new(()));
        map.insert(key, std::sync::Arc::downgrade(&lock));
        lock
    }
}

fn is_unique_violation(err: &sqlx::Error, constraint: &str) -> bool {
    match err {
        sqlx::Error::Database(db) => {
            db.code().as_deref() == Some("23505") && db.constraint() == Some(constraint)
        }
        _ => false,
    }
}

impl EventStore {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            locks: std::sync::Arc::default(),
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Load an aggregate and the sequence of its last event.
    pub async fn load<A>(&self, aggregate_id: &str) -> Result<(A, i64), CommandError<A::Error>>
    where
        A: Aggregate,
        A::Event: EventCodec,
    {
        let rows = sqlx::query(
            "SELECT sequence, event_type, event_version, payload FROM events \
              WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence",
        )
        .bind(A::TYPE)
        .bind(aggregate_id)
        .fetch_all(&self.pool)
        .await?;
        let mut aggregate = A::default();
        let mut version = 0;
        for row in rows {
            let event_type: String = row.get("event_type");
            let event = A::Event::decode(&event_type, row.get("event_version"), row.get("payload"))
                .map_err(CommandError::Codec)?;
            aggregate.apply(event);
            version = row.get("sequence");
        }
        Ok((aggregate, version))
    }

    pub async fn execute<A>(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &EventMetadata,
    ) -> Result<Committed<A>, CommandError<A::Error>>
    where
        A: Aggregate<Services = ()>,
        A::Command: Clone,
        A::Event: EventCodec + UniqueClaims,
    {
        self.execute_with(aggregate_id, command, metadata, &|_| {
            Box::pin(async { Ok(()) })
        })
        .await
    }

    /// Run a command; `side` runs inside the same transaction as the append,
    /// only when the command produced events.
    pub async fn execute_with<A>(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &EventMetadata,
        side: SideEffect<'_>,
    ) -> Result<Committed<A>, CommandError<A::Error>>
    where
        A: Aggregate<Services = ()>,
        A::Command: Clone,
        A::Event: EventCodec + UniqueClaims,
    {
        let metadata_json = serde_json::to_value(metadata)
            .map_err(|e| CommandError::Database(sqlx::Error::Encode(Box::new(e))))?;
        let lock = self.locks.get(A::TYPE, aggregate_id);
        let _queued = lock.lock().await;
        for _ in 0..MAX_ATTEMPTS {
            let (mut aggregate, version) = self.load::<A>(aggregate_id).await?;
            let sink = EventSink::<A>::default();
            aggregate
                .handle(command.clone(), &(), &sink)
                .await
                .map_err(CommandError::Domain)?;
            let events = sink.collect().await;
            if events.is_empty() {
                return Ok(Committed {
                    aggregate,
                    events,
                    checkpoint: None,
                });
            }
            match self
                .append::<A>(aggregate_id, version, &events, &metadata_json, side)
                .await
            {
                Ok(checkpoint) => {
                    return Ok(Committed {
                        aggregate,
                        events,
                        checkpoint: Some(checkpoint),
                    })
                }
                Err(CommandError::Database(e)) if is_unique_violation(&e, "events_pkey") => {
                    tracing::debug!(
                        aggregate = A::TYPE,
                        aggregate_id,
                        "optimistic conflict; retrying"
                    );
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        Err(CommandError::Concurrency)
    }

    async fn append<A>(
        &self,
        aggregate_id: &str,
        version: i64,
        events: &[A::Event],
        metadata: &Value,
        side: SideEffect<'_>,
    ) -> Result<Checkpoint, CommandError<A::Error>>
    where
        A: Aggregate,
        A::Event: EventCodec + UniqueClaims,
    {
        let tenant_id = metadata
            .get("tenant_id")
            .and_then(Value::as_str)
            .and_then(|s| uuid::Uuid::parse_str(s).ok())
            .ok_or_else(|| {
                CommandError::Database(sqlx::Error::Protocol("metadata without tenant_id".into()))
            })?;
        let mut tx = self.pool.begin().await?;
        let mut last = Checkpoint::ZERO;
        for (i, event) in events.iter().enumerate() {
            let (event_type, event_version, payload) =
                event.encode().map_err(CommandError::Codec)?;
            let row = sqlx::query(
                "INSERT INTO events (tenant_id, aggregate_type, aggregate_id, sequence, event_type, \
                                     event_version, payload, metadata) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING tx_id::text AS tx_id, position",
            )
            .bind(tenant_id)
            .bind(A::TYPE)
            .bind(aggregate_id)
            .bind(version + 1 + i as i64)
            .bind(&event_type)
            .bind(event_version)
            .bind(&payload)
            .bind(metadata)
            .fetch_one(&mut *tx)
            .await?;
            last = Checkpoint::from_parts(row.get("tx_id"), row.get("position"))?;
            for change in event.claim_changes() {
                apply_claim::<A::Error>(&mut tx, aggregate_id, change).await?;
            }
        }
        side(&mut tx).await.map_err(CommandError::Refused)?;
        tx.commit().await?;
        Ok(last)
    }
}

async fn apply_claim<E>(
    tx: &mut PgConnection,
    owner: &str,
    change: ClaimChange,
) -> Result<(), CommandError<E>> {
    match change {
        ClaimChange::Claim { scope, value } => {
            let result = sqlx::query(
                "INSERT INTO unique_claims (scope, value, owner_id) VALUES ($1, $2, $3)",
            )
            .bind(scope.as_str())
            .bind(&value)
            .bind(owner)
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
            sqlx::query(
                "DELETE FROM unique_claims WHERE scope = $1 AND value = $2 AND owner_id = $3",
            )
            .bind(scope.as_str())
            .bind(&value)
            .bind(owner)
            .execute(&mut *tx)
            .await?;
            Ok(())
        }
    }
}

/// Who holds a unique value, if anyone (for example the user id of an email).
pub async fn claim_owner(
    pool: &PgPool,
    scope: ClaimScope,
    value: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT owner_id FROM unique_claims WHERE scope = $1 AND value = $2")
        .bind(scope.as_str())
        .bind(value)
        .fetch_optional(pool)
        .await
}

impl<E: tenantry_domain::DomainError> From<CommandError<E>> for ApiError {
    fn from(err: CommandError<E>) -> Self {
        match err {
            CommandError::Domain(e) => ApiError::from_domain(e),
            CommandError::Claimed(ClaimScope::UserEmail) => {
                ApiError::conflict("email_taken", "a user with this email already exists")
            }
            CommandError::Claimed(ClaimScope::TenantSlug) => {
                ApiError::conflict("slug_taken", "a tenant with this slug already exists")
            }
            CommandError::Claimed(ClaimScope::TenantProvider) => ApiError::conflict(
                "duplicate_provider_key",
                "the tenant already has a key for this provider; replace it with PUT",
            ),
            CommandError::Concurrency => ApiError::concurrent_update(),
            CommandError::Refused(e) => e,
            CommandError::Codec(e) => ApiError::internal(e),
            CommandError::Database(e) => e.into(),
        }
    }
}
