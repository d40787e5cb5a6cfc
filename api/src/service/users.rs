//! Registering users and reading them back.

use tenantry_domain::user::{User, UserCommand, UserError};
use tenantry_domain::values::{check_password_policy, Email, PersonName};
use tenantry_domain::EventMetadata;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::credentials::hash_password;
use crate::error::{ApiError, Validation};
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
    let command = UserCommand::RegisterUser {
        user_id: user_id.into(),
        email,
        name,
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
