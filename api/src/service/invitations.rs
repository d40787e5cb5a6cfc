//! Invitations: what the routes and the email worker share, and accepting
//! one (the use case that crosses aggregates: it may register the user,
//! seats them in the tenant, and opens their session).

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tenantry_domain::tenant::{InvitationStatus, Tenant, TenantCommand, TenantError};
use tenantry_domain::user::User;
use tenantry_domain::{Actor, PLATFORM_TENANT};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::credentials::{invitation_token, token_hash, Caller};
use crate::error::ApiError;
use crate::extract::Context;
use crate::guard::TenantScope;
use crate::personal::{Field, PersonalData};
use crate::responses::TokenPairOut;
use crate::service::sessions::open_session;
use crate::service::tenants::run_tenant_command;
use crate::service::users::{register_user, RegisterError};
use crate::state::AppState;
use crate::store::SideWrite;
use tenantry_domain::access::RoleName;
use tenantry_domain::values::Email;

/// The link an invitee follows.
pub fn accept_url(state: &AppState, token: &str) -> String {
    format!(
        "{}/invite/{token}",
        state.config.public_url.trim_end_matches('/')
    )
}

pub fn not_found() -> ApiError {
    ApiError::not_found("invitation_not_found", "invitation not found")
}

/// The invitation a token stands for, with its tenant's state; 404 for an
/// unknown token, 410 for one that can no longer be used.
pub async fn by_token(
    state: &AppState,
    token: &str,
) -> Result<(Uuid, Tenant, tenantry_domain::tenant::Invitation), ApiError> {
    let (invitation_id, tenant_id) = state
        .store
        .invitation_tokens()
        .find(&token_hash(token))
        .await?
        .ok_or_else(not_found)?;
    let (tenant, _) = state
        .store
        .load::<Tenant>(tenant_id.into())
        .await
        .map_err(ApiError::from)?;
    let invitation = tenant
        .invitations
        .get(&invitation_id)
        .cloned()
        .ok_or_else(not_found)?;
    let gone = match invitation.status_at(state.now()) {
        InvitationStatus::Pending => None,
        InvitationStatus::Accepted => Some(TenantError::InvitationUsed),
        InvitationStatus::Revoked => Some(TenantError::InvitationRevoked),
        InvitationStatus::Expired => Some(TenantError::InvitationExpired),
    };
    if let Some(err) = gone {
        return Err(ApiError::from_domain(err));
    }
    if tenant.status == tenantry_domain::tenant::TenantStatus::Archived {
        return Err(not_found());
    }
    Ok((invitation_id, tenant, invitation))
}

/// What someone accepting without signing in gives for their new account.
#[derive(Deserialize, Default, utoipa::ToSchema)]
pub struct SignUp {
    #[schema(min_length = 1, max_length = 200)]
    name: Option<String>,
    #[schema(value_type = Option<String>, min_length = 8, max_length = 256)]
    password: Option<Zeroizing<String>>,
}

#[derive(Serialize)]
pub struct AcceptedOut {
    tenant_id: Uuid,
    role: String,
    /// Only when the invitee signed up while accepting.
    #[serde(flatten)]
    session: Option<TokenPairOut>,
}

// Written out: a flattened `Option` is its fields, present or absent, which
// the derive would describe as "a token pair or null" beside the object.
impl utoipa::PartialSchema for AcceptedOut {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, SchemaFormat, Type};
        use utoipa::openapi::KnownFormat;
        let text = || ObjectBuilder::new().schema_type(Type::String);
        let session =
            "Only when the invitee signed up while accepting: the new session's token pair.";
        ObjectBuilder::new()
            .property(
                "tenant_id",
                text().format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid))),
            )
            .required("tenant_id")
            .property("role", text())
            .required("role")
            .property("access_token", text().description(Some(session)))
            .property("refresh_token", text().description(Some(session)))
            .property("token_type", text().description(Some(session)))
            .property(
                "expires_in",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0))
                    .description(Some(session)),
            )
            .into()
    }
}

impl utoipa::ToSchema for AcceptedOut {}

fn sign_in_required() -> ApiError {
    ApiError::unauthorized(
        "sign_in_required",
        "a user with this email exists: sign in and accept with your access token",
    )
}

/// Accept the invitation `token` stands for: as `signed_in` when the
/// caller is signed in (their email must be the invited one), else by
/// creating the invited email's account from `sign_up` and opening its
/// session. Of two racing accepts, one seats the invitee and the other
/// finds the invitation used.
pub async fn accept(
    state: &AppState,
    ctx: &Context,
    token: &str,
    signed_in: Option<Caller>,
    sign_up: SignUp,
) -> Result<AcceptedOut, ApiError> {
    let (invitation_id, tenant, invitation) = by_token(state, token).await?;
    let tenant_id = tenant.id.ok_or_else(not_found)?;
    let role = invitation.role.as_str().to_string();
    let accept = |user_id: Uuid, actor: Actor| async move {
        let command = TenantCommand::AcceptInvitation {
            invitation_id: invitation_id.into(),
            user_id: user_id.into(),
            now: ctx.now,
        };
        run_tenant_command(state, ctx, actor, tenant_id, command).await
    };
    if let Some(caller) = signed_in {
        let (user, _) = state
            .store
            .load::<User>(caller.user_id.into())
            .await
            .map_err(ApiError::from)?;
        if user.email_hash.as_ref() != Some(&invitation.email_hash) {
            return Err(ApiError::forbidden(
                "invitation_email_mismatch",
                "this invitation was sent to another email address",
            ));
        }
        accept(caller.user_id, caller.actor()).await?;
        return Ok(AcceptedOut {
            tenant_id,
            role,
            session: None,
        });
    }
    if state
        .store
        .user_by_email_hash(invitation.email_hash.as_str())
        .await?
        .is_some()
    {
        return Err(sign_in_required());
    }
    // The address itself is only in the read model (the log holds it
    // sealed); erased, the invitation is for nobody.
    let email = state
        .reads
        .invitations()
        .get(tenant_id, invitation_id, state.now())
        .await?
        .and_then(|i| i.email)
        .ok_or_else(not_found)?;
    let (Some(name), Some(password)) = (sign_up.name, sign_up.password) else {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "to accept without signing in, give a name and a password for the new account",
        ));
    };
    let meta = ctx.metadata(PLATFORM_TENANT, Actor::Anonymous);
    let user_id = match register_user(
        &state.store,
        &state.personal,
        &email,
        &name,
        password,
        false,
        &meta,
    )
    .await
    {
        Ok((id, checkpoint)) => {
            state.settle(checkpoint.as_ref()).await;
            id
        }
        // Another accept of this link created the account a moment ago.
        Err(RegisterError::EmailTaken) => {
            by_token(state, token).await?;
            return Err(sign_in_required());
        }
        Err(e) => return Err(e.into()),
    };
    let actor = Actor::User { id: user_id };
    accept(user_id, actor.clone()).await?;
    let session_meta = ctx.metadata(PLATFORM_TENANT, actor);
    let session = open_session(state, Uuid::now_v7(), user_id, &session_meta).await?;
    Ok(AcceptedOut {
        tenant_id,
        role,
        session: Some(session),
    })
}

fn expiry(state: &AppState) -> Result<chrono::DateTime<chrono::Utc>, ApiError> {
    Ok(state.now()
        + chrono::Duration::from_std(state.config.invitation_ttl).map_err(ApiError::internal)?)
}

/// Run an invitation command that issues a token (create, resend): the
/// token's hash is written in the command's transaction. Returns the token.
async fn issue(
    state: &AppState,
    ctx: &Context,
    scope: &TenantScope,
    invitation_id: Uuid,
    version: u32,
    command: TenantCommand,
) -> Result<Zeroizing<String>, ApiError> {
    let token = invitation_token(state.config.jwt_secret_bytes(), invitation_id, version)?;
    let tenant_id = scope.tenant_id;
    let meta = ctx.metadata(tenant_id, scope.principal.actor());
    let committed = state
        .store
        .execute_with::<Tenant>(
            tenant_id.into(),
            command,
            &meta,
            &[SideWrite::SetInvitationToken {
                invitation_id,
                tenant_id,
                token_hash: token_hash(&token),
            }],
        )
        .await?;
    state.settle(committed.written.as_ref()).await;
    Ok(token)
}

/// Invite an email to a role; returns the invitation's id and its token.
pub async fn invite(
    state: &AppState,
    ctx: &Context,
    scope: &TenantScope,
    email: Email,
    role: RoleName,
) -> Result<(Uuid, Zeroizing<String>), ApiError> {
    let email_hash = state.personal.email_hash(&email);
    let existing_user = state.store.user_by_email_hash(email_hash.as_str()).await?;
    let invitation_id = Uuid::now_v7();
    let [sealed] = state
        .personal
        .seal(
            &state.store,
            PersonalData::address_subject(&email_hash),
            [(Field::Email, email.as_str())],
        )
        .await?;
    let command = TenantCommand::Invite {
        invitation_id: invitation_id.into(),
        email: sealed,
        email_hash,
        role,
        by: scope.authority(),
        invited_by: scope.user_id().map(Into::into),
        existing_user,
        expires_at: expiry(state)?,
        now: state.now(),
        plan_seats: crate::service::billing::plan_seats(state, scope.tenant_id).await?,
    };
    let token = issue(state, ctx, scope, invitation_id, 1, command).await?;
    Ok((invitation_id, token))
}

/// A new token and expiry for an invitation; the old link stops working.
pub async fn resend(
    state: &AppState,
    ctx: &Context,
    scope: &TenantScope,
    invitation_id: Uuid,
) -> Result<Zeroizing<String>, ApiError> {
    let (tenant, _) = state
        .store
        .load::<Tenant>(scope.tenant_id.into())
        .await
        .map_err(ApiError::from)?;
    let version = tenant
        .invitations
        .get(&invitation_id)
        .map(|i| i.token_version + 1)
        .ok_or_else(not_found)?;
    let command = TenantCommand::ResendInvitation {
        invitation_id: invitation_id.into(),
        token_version: version,
        expires_at: expiry(state)?,
        now: state.now(),
    };
    issue(state, ctx, scope, invitation_id, version, command).await
}
