//! A user's memberships across tenants.

use uuid::Uuid;

use crate::error::ApiError;
use crate::responses::MembershipOut;
use crate::state::AppState;

/// A user's memberships, for `/v1/me` and the admin's user view.
pub async fn memberships_of(
    state: &AppState,
    user_id: Uuid,
) -> Result<Vec<MembershipOut>, ApiError> {
    Ok(state
        .reads
        .access()
        .memberships(user_id)
        .await?
        .into_iter()
        .map(MembershipOut::from)
        .collect())
}
