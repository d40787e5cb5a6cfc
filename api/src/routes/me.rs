//! The signed-in user's own account.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tenantry_domain::user::{User, UserCommand};
use tenantry_domain::values::{check_password_policy, PersonName};
use tenantry_domain::PLATFORM_TENANT;
use zeroize::Zeroizing;

use crate::credentials::{hash_password, verify_password, Caller};
use crate::error::ApiError;
use crate::extract::{Context, Json};
use crate::guard::Access;
use crate::responses::{MembershipOut, UserOut};
use crate::routes::Route;
use crate::service::memberships::memberships_of;
use crate::service::users::user_out;
use crate::state::AppState;
use tenantry_store::SideWrite;

pub fn routes() -> Vec<Route> {
    vec![
        Route::get("/v1/me", Access::User, get_me),
        Route::patch("/v1/me", Access::User, patch_me),
        Route::post("/v1/me/password", Access::User, post_password),
    ]
}

#[derive(Serialize)]
pub struct MeOut {
    user: UserOut,
    is_platform_admin: bool,
    /// The tenants the caller belongs to, with role and permissions (the
    /// portal's tenant switcher).
    tenants: Vec<MembershipOut>,
    /// The platform admin behind this session, when it is an impersonation.
    impersonated_by: Option<ImpersonatorOut>,
}

#[derive(Serialize)]
pub struct ImpersonatorOut {
    id: uuid::Uuid,
    email: String,
    name: String,
}

/// Who the caller is.
async fn get_me(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<MeOut>, ApiError> {
    let user = user_out(&state, caller.user_id).await?;
    let impersonated_by = match caller.impersonator {
        Some(id) => {
            let admin = user_out(&state, id).await?;
            Some(ImpersonatorOut {
                id,
                email: admin.email,
                name: admin.name,
            })
        }
        None => None,
    };
    Ok(axum::Json(MeOut {
        is_platform_admin: caller.is_platform_admin,
        user,
        tenants: memberships_of(&state, caller.user_id).await?,
        impersonated_by,
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
            caller.user_id.into(),
            UserCommand::ChangeName { name },
            &meta,
        )
        .await?;
    state.settle(committed.written.as_ref()).await;
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
    if caller.impersonator.is_some() {
        return Err(ApiError::forbidden(
            "not_allowed_while_impersonating",
            "an impersonation session cannot change the user's password",
        ));
    }
    check_password_policy(&body.new_password)
        .map_err(|e| ApiError::invalid_field("new_password", e))?;
    // A stolen access token must not become a password oracle: wrong
    // current passwords count against the same per-account allowance as
    // failed sign-ins.
    let failures = &state.sign_in_throttle.per_account;
    let account = format!("user:{}", caller.user_id);
    failures.check(&account)?;
    let stored = state.store.sessions().password_hash(caller.user_id).await?;
    if !verify_password(body.current_password, stored).await? {
        failures.record_failure(&account);
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
            user_id.into(),
            UserCommand::ChangePassword,
            &meta,
            &[SideWrite::SetPassword { user_id, hash }],
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
