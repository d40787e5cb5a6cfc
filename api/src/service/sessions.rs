//! Opening a session for someone who just proved who they are.

use chrono::Utc;
use tenantry_domain::session::{Session, SessionCommand};
use uuid::Uuid;

use crate::credentials::{random_token, token_hash};
use crate::error::ApiError;
use crate::responses::TokenPairOut;
use crate::state::AppState;
use tenantry_store::SideWrite;

/// Start a session for a user who just proved who they are (sign-in, or
/// accepting an invitation as a new user): a `SignInSucceeded` event, the
/// session row and a refresh token, and the token pair.
pub async fn open_session(
    state: &AppState,
    session_id: Uuid,
    user_id: Uuid,
    meta: &tenantry_domain::EventMetadata,
) -> Result<TokenPairOut, ApiError> {
    let refresh = random_token();
    let expires_at = Utc::now() + state.config.refresh_token_ttl;
    state
        .store
        .execute_with::<Session>(
            session_id.into(),
            SessionCommand::SignIn {
                user_id: user_id.into(),
            },
            meta,
            &[SideWrite::StartSession {
                session_id,
                user_id,
                expires_at,
                refresh_hash: token_hash(&refresh),
            }],
        )
        .await?;
    token_pair(state, user_id, session_id, refresh)
}

pub fn token_pair(
    state: &AppState,
    user_id: Uuid,
    session_id: Uuid,
    refresh_token: String,
) -> Result<TokenPairOut, ApiError> {
    Ok(TokenPairOut {
        access_token: state.jwt.issue(user_id, session_id)?,
        refresh_token,
        token_type: "Bearer".to_string(),
        expires_in: state.jwt.ttl.as_secs(),
    })
}
