//! Invitation token hashes beside the log, written in the command's
//! transaction. One live token per invitation: a resend replaces it.

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

pub(crate) async fn set_token(
    tx: &mut PgConnection,
    invitation_id: Uuid,
    tenant_id: Uuid,
    token_hash: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query!(
"INSERT INTO invitation_tokens (token_hash, invitation_id, tenant_id) VALUES ($1, $2, $3) \
         ON CONFLICT (invitation_id) DO UPDATE SET token_hash = EXCLUDED.token_hash, created_at = now()",
token_hash,
invitation_id,
tenant_id
)
    .execute(tx)
    .await?;
    Ok(())
}

/// Invitation tokens: [`crate::Store::invitation_tokens`].
#[derive(Clone, Copy)]
pub struct InvitationTokens<'a> {
    pub(crate) pool: &'a PgPool,
}

impl InvitationTokens<'_> {
    /// The invitation and tenant a live token belongs to.
    pub async fn find(&self, token_hash: &[u8]) -> Result<Option<(Uuid, Uuid)>, sqlx::Error> {
        let row = sqlx::query!(
            "SELECT invitation_id, tenant_id FROM invitation_tokens WHERE token_hash = $1",
            token_hash
        )
        .fetch_optional(self.pool)
        .await?;
        Ok(row.map(|r| (r.invitation_id, r.tenant_id)))
    }
}
