//! Sessions: signing in, opening a session for someone who just proved who
//! they are, refreshing and revoking.

use chrono::Utc;
use tenantry_domain::session::{RevokeReason, Session, SessionCommand, SignInFailure};
use tenantry_domain::user::User;
use tenantry_domain::values::Email;
use tenantry_domain::{Actor, SessionId, PLATFORM_TENANT};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::credentials::{random_token, token_hash, verify_password, Caller};
use crate::error::ApiError;
use crate::extract::Context;
use crate::responses::TokenPairOut;
use crate::state::AppState;
use crate::store::{self, SideWrite};

fn invalid_credentials() -> ApiError {
    ApiError::unauthorized("invalid_credentials", "the email or password is wrong")
}

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

/// Check an email's password and open a session, or record why not.
///
/// Failed attempts count against the account (`TENANTRY_SIGN_IN_MAX_FAILURES`)
/// whether or not it exists. What a failure records is bounded: the reason,
/// the user when the address is theirs, else only a keyed hash of it.
pub async fn sign_in(
    state: &AppState,
    ctx: &Context,
    email: &Email,
    password: Zeroizing<String>,
) -> Result<TokenPairOut, ApiError> {
    let throttle = &state.sign_in_throttle;
    // The account's failures are counted by the address's hash: not even
    // memory keeps the address.
    let email_hash = state.personal.email_hash(email);
    let account = email_hash.as_str();
    throttle.per_account.check(account)?;
    let user_id = state
        .store
        .user_by_email_hash(account)
        .await?
        .map(Uuid::from);
    let stored = match user_id {
        Some(id) => state.store.sessions().password_hash(id).await?,
        None => None,
    };
    let password_ok = verify_password(password, stored).await?;
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
    crate::metrics::record_sign_in(match failure {
        None => "success",
        Some(SignInFailure::UnknownEmail) => "unknown_email",
        Some(SignInFailure::WrongPassword) => "wrong_password",
        Some(SignInFailure::UserDeactivated) => "user_deactivated",
    });
    if let Some(reason) = failure {
        throttle.per_account.record_failure(account);
        let email_hash = user_id.is_none().then(|| account.to_string());
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
    throttle.per_account.clear(account);
    let user_id = user_id.ok_or_else(invalid_credentials)?;
    open_session(state, attempt_id, user_id, &meta).await
}

/// Trade a refresh token for a new pair. A token already traded in means it
/// was stolen or replayed: the whole session is revoked.
pub async fn refresh(
    state: &AppState,
    ctx: &Context,
    refresh_token: &str,
) -> Result<TokenPairOut, ApiError> {
    let presented = token_hash(refresh_token);
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
        revoke_for_reuse(state, session_key, &meta).await?;
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
        Ok(_) => token_pair(state, found.user_id, session_id, refresh),
        // Lost a race with another refresh of the same token: that is reuse too.
        Err(e @ store::CommandError::Refused(store::Refusal::RefreshTokenReused)) => {
            revoke_for_reuse(state, session_key, &meta).await?;
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

pub async fn revoke(
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

/// The longest an impersonation token lives.
pub const IMPERSONATION_TTL: std::time::Duration = std::time::Duration::from_secs(3600);

/// Start impersonating a user (not a platform admin, not deactivated):
/// an access token for their account, marked with the admin, and its expiry.
pub async fn start_impersonation(
    state: &AppState,
    ctx: &Context,
    admin: &Caller,
    user_id: Uuid,
    reason: String,
) -> Result<(String, chrono::DateTime<Utc>), ApiError> {
    let (user, _) = state
        .store
        .load::<User>(user_id.into())
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
    let admin_id = admin.user_id;
    let command = SessionCommand::StartImpersonation {
        admin_id: admin_id.into(),
        user_id: user_id.into(),
        reason,
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
    Ok((access_token, expires_at))
}

/// End the impersonation this token belongs to; the token stops working.
pub async fn end_impersonation(
    state: &AppState,
    ctx: &Context,
    caller: &Caller,
) -> Result<(), ApiError> {
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
    Ok(())
}
