//! The signed-in user's own account.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use tenantry_domain::user::{User, UserCommand};
use tenantry_domain::values::{check_password_policy, PersonName};
use tenantry_domain::PLATFORM_TENANT;
use zeroize::Zeroizing;

use crate::auth::{hash_password, verify_password, Caller};
use crate::error::ApiError;
use crate::extract::{Context, Json};
use crate::routes::users::{user_out, UserOut};
use crate::state::AppState;
use crate::store;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/me", get(get_me).patch(patch_me))
        .route("/me/password", post(post_password))
}

#[derive(Serialize)]
pub struct MeOut {
    user: UserOut,
    is_platform_admin: bool,
    /// The tenants the caller belongs to. Memberships arrive with the
    /// access issue; until then this list is empty.
    tenants: Vec<serde_json::Value>,
}

/// Who the caller is.
async fn get_me(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<MeOut>, ApiError> {
    let user = user_out(&state, caller.user_id).await?;
    Ok(axum::Json(MeOut {
        is_platform_admin: user.is_platform_admin,
        user,
        tenants: Vec::new(),
    }))
}

#[derive(Deserialize)]
struct MePatch {
    name: String,
}

/// Change the caller's display name.
async fn patch_me(
    State(state): State<AppState>,
    ctx: Context,
    caller: Caller,
    Json(body): Json<MePatch>,
) -> Result<axum::Json<UserOut>, ApiError> {
    let name = PersonName::parse(&body.name).map_err(|e| ApiError::invalid_field("name", e))?;
    let meta = ctx.metadata(PLATFORM_TENANT, caller.actor());
    let committed = state
        .store
        .execute::<User>(
            &caller.user_id.to_string(),
            UserCommand::ChangeName { name },
            &meta,
        )
        .await?;
    state.settle(committed.checkpoint).await;
    Ok(axum::Json(user_out(&state, caller.user_id).await?))
}

#[derive(Deserialize)]
struct PasswordIn {
    current_password: Zeroizing<String>,
    new_password: Zeroizing<String>,
}

/// Change the caller's password (the current one is required).
async fn post_password(
    State(state): State<AppState>,
    ctx: Context,
    caller: Caller,
    Json(body): Json<PasswordIn>,
) -> Result<StatusCode, ApiError> {
    check_password_policy(&body.new_password)
        .map_err(|e| ApiError::invalid_field("new_password", e))?;
    let stored = store::auth::password_hash(&state.pool, caller.user_id).await?;
    if !verify_password(body.current_password, stored).await? {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "wrong_password",
            "the current password is wrong",
        ));
    }
    let hash = hash_password(body.new_password).await?;
    let meta = ctx.metadata(PLATFORM_TENANT, caller.actor());
    let user_id = caller.user_id;
    state
        .store
        .execute_with::<User>(
            &user_id.to_string(),
            UserCommand::ChangePassword,
            &meta,
            &|tx| {
                let hash = hash.clone();
                Box::pin(async move {
                    store::auth::set_password(tx, user_id, &hash).await?;
                    Ok(())
                })
            },
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
