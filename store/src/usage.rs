//! The usage side table: each ingested record's client id and a hash of
//! its content, per tenant, written with the batch's event
//! ([`crate::events::SideWrite::TakeUsageIds`]).

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// [`crate::Store::usage_ids`].
pub struct UsageIds<'a> {
    pub(crate) pool: &'a PgPool,
}

impl UsageIds<'_> {
    /// Of these ids, the ones the tenant has recorded, with their content
    /// hashes.
    pub async fn recorded(
        &self,
        tenant_id: Uuid,
        ids: &[String],
    ) -> Result<Vec<(String, Vec<u8>)>, sqlx::Error> {
        let rows = sqlx::query!(
            "SELECT id, content_hash FROM usage_ids WHERE tenant_id = $1 AND id = ANY($2)",
            tenant_id,
            ids
        )
        .fetch_all(self.pool)
        .await?;
        Ok(rows.into_iter().map(|r| (r.id, r.content_hash)).collect())
    }
}

/// Take the ids, each for its batch; false when one was taken already
/// (a racing batch).
pub(crate) async fn take(
    tx: &mut PgConnection,
    tenant_id: Uuid,
    batches: &[Uuid],
    ids: &[String],
    hashes: &[Vec<u8>],
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query!(
        "INSERT INTO usage_ids (tenant_id, id, content_hash, batch_id) \
         SELECT $1, id, hash, batch FROM UNNEST($2::uuid[], $3::text[], $4::bytea[]) \
             AS t(batch, id, hash) \
         ON CONFLICT DO NOTHING",
        tenant_id,
        batches,
        ids,
        hashes
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Ok(inserted == ids.len() as u64)
}
