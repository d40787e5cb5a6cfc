//! Support impersonation: a platform admin signs in as a user to see what
//! they see. The token lives at most an hour and cannot be refreshed; every
//! event written with it names the user as actor and the admin as
//! impersonator.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenantry_domain::session::{Session, SessionCommand};
use tenantry_domain::user::User;
use tenantry_domain::PLATFORM_TENANT;
use uuid::Uuid;

use crate::credentials::Caller;
use crate::error::ApiError;
use crate::extract::{Context, Json};
use crate::guard::{Access, PlatformAdmin};
use crate::middleware::SecretResponse;
use crate::routes::Route;
use crate::state::AppState;
use tenantry_store::SideWrite;

pub fn routes() -> Vec<Route> {
    vec![
        Route::post(
            "/v1/admin/impersonate",
            Access::PlatformAdmin,
            post_impersonate,
        ),
        Route::post(
            "/v1/admin/stop-impersonation",
            Access::User,
            post_stop_impersonation,
        ),
    ]
}

/// The longest an impersonation token lives.
pub const IMPERSONATION_TTL: Duration = Duration::from_secs(3600);

#[derive(Deserialize)]
struct ImpersonateIn {
    user_id: Uuid,
    reason: String,
}

#[derive(Serialize)]
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
    let (user, _) = state
        .store
        .load::<User>(body.user_id.into())
        .await
        .map_err(ApiError::from)?;
    if user.id.is_none() {
        return Err(ApiError::not_found("user_not_found", "user not found"));
    }
    if user.platform_admin {
        return Err(ApiError::forbidden(
            "cannot_impersonate_admin",
            "platform admins cannot be impersonated",
        ));
    }
    if !user.is_active() {
        return Err(ApiError::conflict(
            "user_deactivated",
            "a deactivated user cannot be impersonated",
        ));
    }
    let session_id = Uuid::now_v7();
    let expires_at =
        Utc::now() + chrono::Duration::from_std(IMPERSONATION_TTL).map_err(ApiError::internal)?;
    let (user_id, admin_id) = (body.user_id, admin.user_id);
    let command = SessionCommand::StartImpersonation {
        admin_id: admin_id.into(),
        user_id: user_id.into(),
        reason: body.reason,
        expires_at,
    };
    let meta = ctx.metadata(PLATFORM_TENANT, admin.actor());
    state
        .store
        .execute_with::<Session>(
            session_id.into(),
            command,
            &meta,
            &[SideWrite::StartImpersonation {
                session_id,
                user_id,
                admin_id,
                expires_at,
            }],
        )
        .await?;
    tracing::info!(%user_id, %admin_id, "impersonation started");
    let access_token = state
        .jwt
        .issue_for(user_id, session_id, IMPERSONATION_TTL)?;
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
    if caller.impersonator.is_none() {
        return Err(ApiError::conflict(
            "not_impersonating",
            "this token is not an impersonation token",
        ));
    }
    let session_id = caller.session_id;
    let meta = ctx.metadata(PLATFORM_TENANT, caller.actor());
    state
        .store
        .execute_with::<Session>(
            session_id.into(),
            SessionCommand::EndImpersonation,
            &meta,
            &[SideWrite::RevokeSession {
                session_id,
                reason: "impersonation_ended",
            }],
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
