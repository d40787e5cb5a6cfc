//! Sign-in, token refresh and sign-out.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use tenantry_domain::session::RevokeReason;
use tenantry_domain::values::{check_password_not_too_long, Email};
use tenantry_domain::PLATFORM_TENANT;
use zeroize::Zeroizing;

use crate::credentials::Caller;
use crate::error::ApiError;
use crate::extract::{ClientIp, Context, Json};
use crate::guard::Access;
use crate::middleware::SecretResponse;
use crate::responses::TokenPairOut;
use crate::routes::Route;
use crate::service::sessions;
use crate::state::AppState;
use crate::throttle::check_address;

pub fn routes() -> Vec<Route> {
    vec![
        Route::post("/v1/auth/login", Access::Public, post_login)
            .summary("Sign in with email and password")
            .body::<LoginIn>()
            .answers::<TokenPairOut>(StatusCode::OK)
            .errors(&["invalid_credentials", "rate_limited"]),
        Route::post("/v1/auth/refresh", Access::Public, post_refresh)
            .summary("Trade a refresh token for a new token pair")
            .body::<RefreshIn>()
            .answers::<TokenPairOut>(StatusCode::OK)
            .errors(&[
                "invalid_refresh_token",
                "refresh_token_reused",
                "rate_limited",
            ]),
        Route::post("/v1/auth/logout", Access::User, post_logout)
            .summary("End the caller's session")
            .no_content(),
    ]
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct LoginIn {
    #[schema(format = Email, max_length = 254)]
    email: String,
    #[schema(value_type = String, max_length = 256)]
    password: Zeroizing<String>,
}

/// Sign in with email and password; answers a token pair.
///
/// Throttled per client address and per account (failed attempts). What a
/// failure records is bounded: the reason, the user when the address is
/// theirs, else only a keyed hash of the (well-formed) address.
async fn post_login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ctx: Context,
    Json(body): Json<LoginIn>,
) -> Result<(SecretResponse, axum::Json<TokenPairOut>), ApiError> {
    let throttle = &state.sign_in_throttle;
    check_address(&throttle.per_address, ip)?;
    let email = Email::parse(&body.email).map_err(|e| ApiError::invalid_field("email", e))?;
    check_password_not_too_long(&body.password)
        .map_err(|e| ApiError::invalid_field("password", e))?;
    let pair = sessions::sign_in(&state, &ctx, &email, body.password).await?;
    Ok((SecretResponse, axum::Json(pair)))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct RefreshIn {
    #[schema(value_type = String)]
    refresh_token: Zeroizing<String>,
}

/// Trade a refresh token for a new pair. A token already traded in means it
/// was stolen or replayed: the whole session is revoked.
async fn post_refresh(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ctx: Context,
    Json(body): Json<RefreshIn>,
) -> Result<(SecretResponse, axum::Json<TokenPairOut>), ApiError> {
    check_address(&state.sign_in_throttle.per_address, ip)?;
    let pair = sessions::refresh(&state, &ctx, &body.refresh_token).await?;
    Ok((SecretResponse, axum::Json(pair)))
}

/// End the caller's session: its refresh token and access token stop
/// working at once.
async fn post_logout(
    State(state): State<AppState>,
    ctx: Context,
    caller: Caller,
) -> Result<StatusCode, ApiError> {
    let meta = ctx.metadata(PLATFORM_TENANT, caller.actor());
    sessions::revoke(
        &state,
        caller.session_id.into(),
        RevokeReason::Logout,
        &meta,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
