//! Support impersonation: a platform admin signs in as a user to see what
//! they see. The token lives at most an hour and cannot be refreshed; every
//! event written with it names the user as actor and the admin as
//! impersonator.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::credentials::Caller;
use crate::error::ApiError;
use crate::extract::{Context, Json};
use crate::guard::{Access, PlatformAdmin};
use crate::middleware::SecretResponse;
use crate::routes::Route;
use crate::service::sessions;
use crate::state::AppState;

pub fn routes() -> Vec<Route> {
    vec![
        Route::post(
            "/v1/admin/impersonate",
            Access::PlatformAdmin,
            post_impersonate,
        )
        .summary("Start impersonating a user; answers their access token")
        .body::<ImpersonateIn>()
        .answers::<ImpersonationOut>(StatusCode::OK)
        .errors(&[
            "user_not_found",
            "cannot_impersonate_admin",
            "user_deactivated",
            "invalid_reason",
        ]),
        Route::post(
            "/v1/admin/stop-impersonation",
            Access::User,
            post_stop_impersonation,
        )
        .summary("End the impersonation this token belongs to")
        .no_content()
        .errors(&["not_impersonating"]),
    ]
}

#[derive(Deserialize, utoipa::ToSchema)]
struct ImpersonateIn {
    user_id: Uuid,
    #[schema(min_length = 1, max_length = 500)]
    reason: String,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ImpersonationOut {
    access_token: String,
    token_type: &'static str,
    expires_at: DateTime<Utc>,
}

/// Start impersonating a user (not a platform admin, not deactivated).
async fn post_impersonate(
    State(state): State<AppState>,
    ctx: Context,
    PlatformAdmin(admin): PlatformAdmin,
    Json(body): Json<ImpersonateIn>,
) -> Result<(SecretResponse, axum::Json<ImpersonationOut>), ApiError> {
    let (access_token, expires_at) =
        sessions::start_impersonation(&state, &ctx, &admin, body.user_id, body.reason).await?;
    Ok((
        SecretResponse,
        axum::Json(ImpersonationOut {
            access_token,
            token_type: "Bearer",
            expires_at,
        }),
    ))
}

/// End the impersonation this token belongs to; the token stops working.
async fn post_stop_impersonation(
    State(state): State<AppState>,
    ctx: Context,
    caller: Caller,
) -> Result<StatusCode, ApiError> {
    sessions::end_impersonation(&state, &ctx, &caller).await?;
    Ok(StatusCode::NO_CONTENT)
}
