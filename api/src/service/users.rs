//! Registering users and reading them back.

use tenantry_domain::user::{User, UserCommand, UserError, UserStatus};
use tenantry_domain::values::{check_password_policy, Email, PersonName, Reason};
use tenantry_domain::{EventMetadata, PLATFORM_TENANT};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::credentials::{hash_password, verify_password, Caller};
use crate::error::{ApiError, Validation};
use crate::extract::Context;
use crate::personal::{Field, PersonalData};
use crate::responses::UserOut;
use crate::state::AppState;
use crate::store::Store;
use tenantry_domain::ClaimScope;
use tenantry_store::{CommandError, SideWrite};

/// Why a registration did not happen.
#[derive(Debug)]
pub enum RegisterError {
    /// Another user holds the email (perhaps registered a moment ago by a
    /// racing request): callers decide what that means to them.
    EmailTaken,
    /// Anything else, as the API answers it.
    Refused(ApiError),
}

impl From<RegisterError> for ApiError {
    fn from(err: RegisterError) -> Self {
        match err {
            RegisterError::EmailTaken => {
                CommandError::<UserError>::Claimed(ClaimScope::UserEmail).into()
            }
            RegisterError::Refused(e) => e,
        }
    }
}

impl From<ApiError> for RegisterError {
    fn from(err: ApiError) -> Self {
        Self::Refused(err)
    }
}

impl From<crate::credentials::CredentialError> for RegisterError {
    fn from(err: crate::credentials::CredentialError) -> Self {
        Self::Refused(err.into())
    }
}

/// Validate, hash the password and register a user. Shared by the API,
/// the bootstrap admin and `tenantry admin create-platform-admin`.
pub async fn register_user(
    store: &Store,
    personal: &PersonalData,
    email: &str,
    name: &str,
    password: Zeroizing<String>,
    platform_admin: bool,
    meta: &EventMetadata,
) -> Result<(Uuid, Option<tenantry_projections::Written>), RegisterError> {
    let mut v = Validation::default();
    let email = v.check("email", Email::parse(email));
    let name = v.check("name", PersonName::parse(name));
    v.check("password", check_password_policy(&password));
    v.finish()?;
    let (Some(email), Some(name)) = (email, name) else {
        return Err(ApiError::internal("validation passed without values").into());
    };
    let hash = hash_password(password).await?;
    let user_id = Uuid::now_v7();
    let [sealed_email, sealed_name] = personal
        .seal(
            store,
            user_id,
            [(Field::Email, email.as_str()), (Field::Name, name.as_str())],
        )
        .await?;
    let command = UserCommand::RegisterUser {
        user_id: user_id.into(),
        email: sealed_email,
        email_hash: personal.email_hash(&email),
        name: sealed_name,
        platform_admin,
    };
    let committed = store
        .execute_with::<User>(
            user_id.into(),
            command,
            meta,
            &[SideWrite::SetPassword { user_id, hash }],
        )
        .await
        .map_err(|e| match e {
            CommandError::Claimed(ClaimScope::UserEmail) => RegisterError::EmailTaken,
            other => RegisterError::Refused(other.into()),
        })?;
    Ok((user_id, committed.written))
}

/// A user as the API shows it.
pub async fn user_out(state: &AppState, id: Uuid) -> Result<UserOut, ApiError> {
    state
        .reads
        .users()
        .get(id)
        .await?
        .map(UserOut::from)
        .ok_or_else(|| ApiError::not_found("user_not_found", "user not found"))
}

/// Run a command on a user as `by`, revoking every session of a user it
/// deactivates in the same transaction; then wait for the read models.
pub async fn run_user_command(
    state: &AppState,
    ctx: &Context,
    by: &Caller,
    id: Uuid,
    command: UserCommand,
) -> Result<(), ApiError> {
    let meta = ctx.metadata(PLATFORM_TENANT, by.actor());
    let side = if command == UserCommand::DeactivateUser {
        vec![SideWrite::RevokeUserSessions {
            user_id: id,
            reason: "user_deactivated",
        }]
    } else {
        Vec::new()
    };
    let committed = state
        .store
        .execute_with::<User>(id.into(), command, &meta, &side)
        .await?;
    state.settle(committed.written.as_ref()).await;
    Ok(())
}

/// Change the caller's name: sealed under their data key; the same name
/// again records nothing (the aggregate cannot compare sealed names).
pub async fn rename(
    state: &AppState,
    ctx: &Context,
    caller: &Caller,
    name: PersonName,
) -> Result<(), ApiError> {
    let id = caller.user_id;
    let current = state.reads.users().get(id).await?.and_then(|u| u.name);
    if current.as_deref() == Some(name.as_str()) {
        return Ok(());
    }
    let [name] = state
        .personal
        .seal(&state.store, id, [(Field::Name, name.as_str())])
        .await?;
    run_user_command(state, ctx, caller, id, UserCommand::ChangeName { name }).await
}

/// Deactivate a user: sign-in stops and every session is revoked at once.
/// Refused while they are the only active owner of a tenant.
pub async fn deactivate(
    state: &AppState,
    ctx: &Context,
    admin: &Caller,
    id: Uuid,
) -> Result<(), ApiError> {
    // Like revoking one's own admin permission: it would lock the caller
    // out, perhaps the platform's only admin with them.
    if id == admin.user_id {
        return Err(ApiError::conflict(
            "cannot_deactivate_self",
            "a platform admin cannot deactivate their own account",
        ));
    }
    refuse_last_owner(state, id).await?;
    run_user_command(state, ctx, admin, id, UserCommand::DeactivateUser).await
}

/// 409 `last_owner` (naming the tenants) when the user is the last active
/// owner of a tenant: closing their account would leave it ownerless.
async fn refuse_last_owner(state: &AppState, id: Uuid) -> Result<(), ApiError> {
    let sole = state.reads.access().sole_owner_of(id).await?;
    if sole.is_empty() {
        return Ok(());
    }
    Err(ApiError::conflict(
        "last_owner",
        "this user is the last active owner of a tenant; give it another owner first",
    )
    .with_details(serde_json::json!({ "tenant_ids": sole })))
}

/// Erase a person (`docs/AUDIT.md`, "Erasure"): in one transaction,
/// `UserErased` (releasing their email's claim), every data key that sealed
/// their data destroyed (their own, their address's), the email outbox made
/// to forget the address, and every session revoked. Refused for oneself
/// and for the last active owner of a tenant, as deactivation is.
pub async fn erase(
    state: &AppState,
    ctx: &Context,
    admin: &Caller,
    id: Uuid,
    reason: Reason,
) -> Result<(), ApiError> {
    if id == admin.user_id {
        return Err(ApiError::conflict(
            "cannot_erase_self",
            "a platform admin cannot erase their own account",
        ));
    }
    let (user, _) = state
        .store
        .load::<User>(id.into())
        .await
        .map_err(ApiError::from)?;
    let Some(email_hash) = user.email_hash else {
        return Err(ApiError::from_domain(UserError::NotFound));
    };
    if user.status != UserStatus::Erased {
        refuse_last_owner(state, id).await?;
    }
    let meta = ctx.metadata(PLATFORM_TENANT, admin.actor());
    let side = [
        SideWrite::RevokeUserSessions {
            user_id: id,
            reason: "user_erased",
        },
        SideWrite::ErasePerson {
            subjects: vec![id, PersonalData::address_subject(&email_hash)],
            email_hash: email_hash.as_str().to_string(),
        },
    ];
    let committed = state
        .store
        .execute_with::<User>(id.into(), UserCommand::EraseUser { reason }, &meta, &side)
        .await?;
    state.settle(committed.written.as_ref()).await;
    Ok(())
}

/// Change the caller's password (the current one is required; not while
/// impersonating).
pub async fn change_password(
    state: &AppState,
    ctx: &Context,
    caller: &Caller,
    current_password: Zeroizing<String>,
    new_password: Zeroizing<String>,
) -> Result<(), ApiError> {
    if caller.impersonator.is_some() {
        return Err(ApiError::forbidden(
            "not_allowed_while_impersonating",
            "an impersonation session cannot change the user's password",
        ));
    }
    check_password_policy(&new_password).map_err(|e| ApiError::invalid_field("new_password", e))?;
    // A stolen access token must not become a password oracle: wrong
    // current passwords count against the same per-account allowance as
    // failed sign-ins.
    let failures = &state.sign_in_throttle.per_account;
    let account = format!("user:{}", caller.user_id);
    failures.check(&account)?;
    let stored = state.store.sessions().password_hash(caller.user_id).await?;
    if !verify_password(current_password, stored).await? {
        failures.record_failure(&account);
        return Err(ApiError::unprocessable(
            "wrong_password",
            "the current password is wrong",
        ));
    }
    let hash = hash_password(new_password).await?;
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
    Ok(())
}
