//! The email outbox: rows the invitations projection queues, worked off by
//! the email worker. A batch holds its rows locked (`FOR UPDATE SKIP
//! LOCKED`) in one transaction until it is finished, so two workers never
//! send the same row and a crash mid-batch leaves the rows pending.

use std::time::Duration;

use sqlx::{FromRow, PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

/// An erased person's address: their pending emails are not sent, and
/// every row to them forgets the address (and any error that could quote it).
pub(crate) async fn forget_recipient(
    tx: &mut PgConnection,
    email_hash: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE email_outbox SET recipient = NULL, last_error = NULL, \
                status = CASE WHEN status = 'pending' THEN 'erased' ELSE status END \
          WHERE recipient_hash = $1",
        email_hash
    )
    .execute(tx)
    .await?;
    Ok(())
}

/// One email to send.
#[derive(Debug, Clone, FromRow)]
pub struct OutboxRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub invitation_id: Uuid,
    pub token_version: i32,
    pub recipient: String,
    /// Attempts made before this one.
    pub attempts: i32,
}

/// What became of an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// Nothing to send any more (the invitation changed since).
    Superseded,
    /// Given up after too many attempts.
    Failed(String),
    /// Try again after the delay.
    Retry {
        error: String,
        after: Duration,
    },
}

/// Claimed rows, locked until [`OutboxBatch::finish`].
pub struct OutboxBatch {
    tx: Transaction<'static, Postgres>,
    pub rows: Vec<OutboxRow>,
}

impl OutboxBatch {
    /// Record an attempt's outcome for a row of this batch.
    pub async fn record(&mut self, row: &OutboxRow, outcome: &Outcome) -> Result<(), sqlx::Error> {
        let (status, error, delay) = match outcome {
            Outcome::Sent => ("sent", None, None),
            Outcome::Superseded => ("superseded", None, None),
            Outcome::Failed(e) => ("failed", Some(e.as_str()), None),
            Outcome::Retry { error, after } => ("pending", Some(error.as_str()), Some(*after)),
        };
        sqlx::query!(
            "UPDATE email_outbox SET status = $2, attempts = $3, last_error = $4, \
                    sent_at = CASE WHEN $2 = 'sent' THEN now() ELSE sent_at END, \
                    next_attempt_at = now() + COALESCE($5::bigint, 0) * interval '1 millisecond' \
              WHERE id = $1",
            row.id,
            status,
            row.attempts + 1,
            error,
            delay.map(|d| d.as_millis() as i64)
        )
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn finish(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

/// The outbox: [`crate::Store::outbox`].
#[derive(Clone, Copy)]
pub struct Outbox<'a> {
    pub(crate) pool: &'a PgPool,
}

/// Emails waiting to be sent, and given up on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxCounts {
    pub pending: i64,
    pub failed: i64,
}

impl Outbox<'_> {
    /// How many emails wait and how many were given up on.
    pub async fn counts(&self) -> Result<OutboxCounts, sqlx::Error> {
        let row = sqlx::query!(
            "SELECT count(*) FILTER (WHERE status = 'pending') AS \"pending!\", \
                    count(*) FILTER (WHERE status = 'failed') AS \"failed!\" \
               FROM email_outbox"
        )
        .fetch_one(self.pool)
        .await?;
        Ok(OutboxCounts {
            pending: row.pending,
            failed: row.failed,
        })
    }

    /// Claim up to `limit` due rows, oldest due first.
    pub async fn claim_due(&self, limit: i64) -> Result<OutboxBatch, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query_as!(
            OutboxRow,
            "SELECT id, tenant_id, invitation_id, token_version, recipient AS \"recipient!\", attempts \
               FROM email_outbox \
              WHERE status = 'pending' AND recipient IS NOT NULL AND next_attempt_at <= now() \
              ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED",
            limit
        )
        .fetch_all(&mut *tx)
        .await?;
        Ok(OutboxBatch { tx, rows })
    }
}
