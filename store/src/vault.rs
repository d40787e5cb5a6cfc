//! The vault's tables: wrapped data keys (with their tombstones) and the
//! append-only log of plaintext resolves.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

pub(crate) async fn insert_data_key(
    tx: &mut PgConnection,
    id: Uuid,
    tenant_id: Uuid,
    master_key_id: &str,
    wrapped: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO data_keys (id, tenant_id, master_key_id, wrapped) VALUES ($1, $2, $3, $4)",
        id,
        tenant_id,
        master_key_id,
        wrapped
    )
    .execute(tx)
    .await?;
    Ok(())
}

/// Crypto-shred: drop the key material, keep the tombstone.
pub(crate) async fn destroy_data_key(tx: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE data_keys SET wrapped = NULL, master_key_id = NULL, destroyed_at = now() \
          WHERE id = $1 AND destroyed_at IS NULL",
        id
    )
    .execute(tx)
    .await?;
    Ok(())
}

/// Crypto-shred every live key of these people (their tombstones stay).
pub(crate) async fn destroy_subject_keys(
    tx: &mut PgConnection,
    subjects: &[Uuid],
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE data_keys SET wrapped = NULL, master_key_id = NULL, destroyed_at = now() \
          WHERE subject = ANY($1) AND destroyed_at IS NULL",
        subjects
    )
    .execute(tx)
    .await?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum RotateError<E: std::error::Error + 'static> {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("data key {id}: {source}")]
    Rewrap { id: Uuid, source: E },
}

#[derive(Debug, FromRow)]
pub struct AccessRow {
    pub id: Uuid,
    pub actor: Value,
    pub request_id: Option<String>,
    pub accessed_at: DateTime<Utc>,
}

/// The vault's tables: [`crate::Store::vault`].
#[derive(Clone, Copy)]
pub struct Vault<'a> {
    pub(crate) pool: &'a PgPool,
}

impl Vault<'_> {
    /// A person's live data key (its id and wrapped material), if any.
    pub async fn subject_key(&self, subject: Uuid) -> Result<Option<(Uuid, Vec<u8>)>, sqlx::Error> {
        let row = sqlx::query!(
            "SELECT id, wrapped AS \"wrapped!\" FROM data_keys \
              WHERE subject = $1 AND wrapped IS NOT NULL",
            subject
        )
        .fetch_optional(self.pool)
        .await?;
        Ok(row.map(|r| (r.id, r.wrapped)))
    }

    /// Keep a new live data key for a person, unless a racing writer kept
    /// one first: then that one is answered, and the new one is dropped.
    pub async fn keep_subject_key(
        &self,
        subject: Uuid,
        id: Uuid,
        master_key_id: &str,
        wrapped: &[u8],
    ) -> Result<(Uuid, Vec<u8>), sqlx::Error> {
        let inserted = sqlx::query!(
            "INSERT INTO data_keys (id, subject, master_key_id, wrapped) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (subject) WHERE subject IS NOT NULL AND wrapped IS NOT NULL DO NOTHING",
            id,
            subject,
            master_key_id,
            wrapped
        )
        .execute(self.pool)
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok((id, wrapped.to_vec()));
        }
        self.subject_key(subject)
            .await?
            .ok_or_else(|| sqlx::Error::Protocol(format!("no live data key of {subject}")))
    }

    /// A live data key's wrapped material; `None` when destroyed or unknown.
    pub async fn wrapped_data_key(&self, id: Uuid) -> Result<Option<Vec<u8>>, sqlx::Error> {
        let wrapped: Option<Option<Vec<u8>>> =
            sqlx::query_scalar!("SELECT wrapped FROM data_keys WHERE id = $1", id)
                .fetch_optional(self.pool)
                .await?;
        Ok(wrapped.flatten())
    }

    /// Master key ids that still wrap a live data key.
    pub async fn master_key_ids_in_use(&self) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar!(
            "SELECT DISTINCT master_key_id AS \"master_key_id!\" FROM data_keys \
              WHERE wrapped IS NOT NULL AND master_key_id IS NOT NULL ORDER BY 1"
        )
        .fetch_all(self.pool)
        .await
    }

    /// Re-wrap up to `batch` live data keys not yet under the master key
    /// `active_id`, in one transaction, with `rewrap` (the vault's crypto: the
    /// wrapped key in, the key wrapped under the active master out). Rows are
    /// locked with SKIP LOCKED, so two rotations can run at once; an
    /// interrupted one leaves every key wrapped by one master key or the other,
    /// and a re-run carries on.
    pub async fn rewrap_batch<E: std::error::Error + 'static>(
        &self,
        active_id: &str,
        batch: i64,
        rewrap: impl Fn(Uuid, &[u8]) -> Result<Vec<u8>, E>,
    ) -> Result<u64, RotateError<E>> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query!(
            "SELECT id, wrapped AS \"wrapped!\" FROM data_keys \
              WHERE wrapped IS NOT NULL AND master_key_id <> $1 \
              ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED",
            active_id,
            batch
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut done = 0;
        for row in rows {
            let (id, wrapped) = (row.id, row.wrapped);
            let rewrapped =
                rewrap(id, &wrapped).map_err(|source| RotateError::Rewrap { id, source })?;
            sqlx::query!(
"UPDATE data_keys SET wrapped = $2, master_key_id = $3, rewrapped_at = now() WHERE id = $1",
id,
&rewrapped,
active_id
)
            .execute(&mut *tx)
            .await?;
            done += 1;
        }
        tx.commit().await?;
        Ok(done)
    }

    pub async fn record_access(
        &self,
        tenant_id: Uuid,
        key_id: Uuid,
        actor: &Value,
        request_id: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query!(
            "INSERT INTO llm_key_accesses (id, tenant_id, key_id, actor, request_id) \
             VALUES ($1, $2, $3, $4, $5)",
            Uuid::now_v7(),
            tenant_id,
            key_id,
            actor,
            request_id
        )
        .execute(self.pool)
        .await?;
        Ok(())
    }

    /// A key's resolves, oldest first, after the cursor.
    pub async fn accesses(
        &self,
        tenant_id: Uuid,
        key_id: Uuid,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<crate::page::Page<AccessRow>, sqlx::Error> {
        let rows = sqlx::query_as!(
            AccessRow,
            "SELECT id, actor, request_id, accessed_at FROM llm_key_accesses \
              WHERE tenant_id = $1 AND key_id = $2 AND ($3::uuid IS NULL OR id > $3) \
              ORDER BY id LIMIT $4",
            tenant_id,
            key_id,
            after,
            limit + 1
        )
        .fetch_all(self.pool)
        .await?;
        Ok(crate::page::Page::from_rows(rows, limit, |r| r.id))
    }
}
