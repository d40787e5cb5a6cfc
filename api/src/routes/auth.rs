//! Sign-in, token refresh and sign-out.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use tenantry_domain::session::{RevokeReason, Session, SessionCommand, SignInFailure};
use tenantry_domain::user::User;
use tenantry_domain::values::{check_password_not_too_long, Email};
use tenantry_domain::{Actor, SessionId, PLATFORM_TENANT};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::credentials::{random_token, token_hash, verify_password, Caller};
use crate::error::ApiError;
use crate::extract::{ClientIp, Context, Json};
use crate::guard::Access;
use crate::middleware::SecretResponse;
use crate::responses::TokenPairOut;
use crate::routes::Route;
use crate::service::sessions::{open_session, token_pair};
use crate::state::AppState;
use crate::store;
use crate::throttle::check_address;
use tenantry_store::SideWrite;

pub fn routes() -> Vec<Route> {
    vec![
        Route::post("/v1/auth/login", Access::Public, post_login),
        Route::post("/v1/auth/refresh", Access::Public, post_refresh),
        Route::post("/v1/auth/logout", Access::User, post_logout),
    ]
}

#[derive(Deserialize)]
pub struct LoginIn {
    email: String,
    password: Zeroizing<String>,
}

fn invalid_credentials() -> ApiError {
    ApiError::unauthorized("invalid_credentials", "the email or password is wrong")
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
    let email = Email::parse(&body.email)
        .map_err(|e| ApiError::invalid_field("email", e))?
        .normalized();
    check_password_not_too_long(&body.password)
        .map_err(|e| ApiError::invalid_field("password", e))?;
    throttle.per_account.check(&email)?;
    let user_id = state.store.user_by_email(&email).await?.map(Uuid::from);
    let stored = match user_id {
        Some(id) => state.store.sessions().password_hash(id).await?,
        None => None,
    };
    let password_ok = verify_password(body.password, stored).await?;
    let user = match user_id {
        Some(id) => Some(
            state
                .store
                .load::<User>(id.into())
                .await
                .map_err(ApiError::from)?
                .0,
        ),
        None => None,
    };
    let failure = match (&user, password_ok) {
        (None, _) => Some(SignInFailure::UnknownEmail),
        (Some(_), false) => Some(SignInFailure::WrongPassword),
        (Some(u), true) if !u.is_active() => Some(SignInFailure::UserDeactivated),
        _ => None,
    };
    let attempt_id = Uuid::now_v7();
    let actor = user_id.map_or(Actor::Anonymous, |id| Actor::User { id });
    let meta = ctx.metadata(PLATFORM_TENANT, actor);
    if let Some(reason) = failure {
        throttle.per_account.record_failure(&email);
        let email_hash = user_id.is_none().then(|| state.email_hasher.hash(&email));
        state
            .store
            .execute::<Session>(
                attempt_id.into(),
                SessionCommand::RecordFailedSignIn { reason, email_hash },
                &meta,
            )
            .await?;
        return Err(invalid_credentials());
    }
    throttle.per_account.clear(&email);
    let user_id = user_id.ok_or_else(invalid_credentials)?;
    Ok((
        SecretResponse,
        axum::Json(open_session(&state, attempt_id, user_id, &meta).await?),
    ))
}

#[derive(Deserialize)]
pub struct RefreshIn {
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
    let presented = token_hash(&body.refresh_token);
    let invalid = || {
        ApiError::unauthorized(
            "invalid_refresh_token",
            "the refresh token is invalid, expired or revoked",
        )
    };
    let found = state
        .store
        .sessions()
        .find_refresh_token(&presented)
        .await?
        .ok_or_else(invalid)?;
    let meta = ctx.metadata(PLATFORM_TENANT, Actor::User { id: found.user_id });
    let session_key = SessionId::from(found.session_id);
    if found.revoked || found.expired {
        return Err(invalid());
    }
    if found.rotated {
        revoke_for_reuse(&state, session_key, &meta).await?;
        return Err(ApiError::unauthorized(
            "refresh_token_reused",
            "this refresh token was already used; the session is revoked",
        ));
    }
    let refresh = random_token();
    let new_hash = token_hash(&refresh);
    let session_id = found.session_id;
    let result = state
        .store
        .execute_with::<Session>(
            session_key,
            SessionCommand::Refresh,
            &meta,
            &[SideWrite::RotateRefreshToken {
                session_id,
                old_hash: presented.clone(),
                new_hash,
            }],
        )
        .await;
    match result {
        Ok(_) => Ok((
            SecretResponse,
            axum::Json(token_pair(&state, found.user_id, session_id, refresh)?),
        )),
        // Lost a race with another refresh of the same token: that is reuse too.
        Err(e @ store::CommandError::Refused(store::Refusal::RefreshTokenReused)) => {
            revoke_for_reuse(&state, session_key, &meta).await?;
            Err(e.into())
        }
        Err(e) => Err(e.into()),
    }
}

async fn revoke_for_reuse(
    state: &AppState,
    session_id: SessionId,
    meta: &tenantry_domain::EventMetadata,
) -> Result<(), ApiError> {
    tracing::warn!(%session_id, "refresh token reuse; revoking the session");
    revoke(state, session_id, RevokeReason::RefreshTokenReuse, meta).await
}

async fn revoke(
    state: &AppState,
    session_id: SessionId,
    reason: RevokeReason,
    meta: &tenantry_domain::EventMetadata,
) -> Result<(), ApiError> {
    let label = match reason {
        RevokeReason::Logout => "logout",
        RevokeReason::RefreshTokenReuse => "refresh_token_reuse",
        RevokeReason::UserDeactivated => "user_deactivated",
    };
    let result = state
        .store
        .execute_with::<Session>(
            session_id,
            SessionCommand::Revoke { reason },
            meta,
            &[SideWrite::RevokeSession {
                session_id: session_id.as_uuid(),
                reason: label,
            }],
        )
        .await;
    match result {
        // Already revoked (by a racing request or deactivation): nothing left to do.
        Ok(_) | Err(store::CommandError::Domain(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// End the caller's session: its refresh token and access token stop
/// working at once.
async fn post_logout(
    State(state): State<AppState>,
    ctx: Context,
    caller: Caller,
) -> Result<StatusCode, ApiError> {
    let meta = ctx.metadata(PLATFORM_TENANT, caller.actor());
    revoke(
        &state,
        caller.session_id.into(),
        RevokeReason::Logout,
        &meta,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
