//! `Idempotency-Key` records: the first response to a (caller, key) pair is
//! stored and replayed for a retry with the same request.

use sqlx::{FromRow, PgPool};

pub enum Reservation {
    /// First use of the key: run the request, then `complete` or `release`.
    New,
    /// The key was used with another request.
    Mismatch,
    /// The first request with this key is still running.
    InProgress,
    Replay(StoredResponse),
}

#[derive(Debug, FromRow)]
pub struct StoredResponse {
    pub status: i16,
    pub response_body: Vec<u8>,
    pub content_type: Option<String>,
}

#[derive(FromRow)]
struct Existing {
    request_hash: Vec<u8>,
    status: Option<i16>,
    response_body: Option<Vec<u8>>,
    content_type: Option<String>,
}

/// `Idempotency-Key` records: [`crate::Store::idempotency`].
#[derive(Clone, Copy)]
pub struct Idempotency<'a> {
    pub(crate) pool: &'a PgPool,
}

impl Idempotency<'_> {
    pub async fn reserve(
        &self,
        caller: &str,
        key: &str,
        request_hash: &[u8],
    ) -> Result<Reservation, sqlx::Error> {
        let inserted = sqlx::query!(
"INSERT INTO idempotency_keys (caller, key, request_hash) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
caller,
key,
request_hash
)
        .execute(self.pool)
        .await?;
        if inserted.rows_affected() == 1 {
            return Ok(Reservation::New);
        }
        let existing = sqlx::query_as!(
            Existing,
            "SELECT request_hash, status, response_body, content_type FROM idempotency_keys WHERE caller = $1 AND key = $2",
            caller,
            key
        )
        .fetch_optional(self.pool)
        .await?;
        Ok(match existing {
            // Released between our insert and select: treat as in progress; a retry will run it.
            None => Reservation::InProgress,
            Some(e) if e.request_hash != request_hash => Reservation::Mismatch,
            Some(Existing {
                status: Some(status),
                response_body: Some(response_body),
                content_type,
                ..
            }) => Reservation::Replay(StoredResponse {
                status,
                response_body,
                content_type,
            }),
            Some(_) => Reservation::InProgress,
        })
    }

    pub async fn complete(
        &self,
        caller: &str,
        key: &str,
        status: u16,
        body: &[u8],
        content_type: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query!(
"UPDATE idempotency_keys SET status = $3, response_body = $4, content_type = $5 WHERE caller = $1 AND key = $2",
caller,
key,
status as i16,
body,
content_type
)
        .execute(self.pool)
        .await?;
        Ok(())
    }

    /// Forget a reservation whose request failed in a way a retry may fix.
    pub async fn release(&self, caller: &str, key: &str) -> Result<(), sqlx::Error> {
        sqlx::query!(
            "DELETE FROM idempotency_keys WHERE caller = $1 AND key = $2",
            caller,
            key
        )
        .execute(self.pool)
        .await?;
        Ok(())
    }
}
