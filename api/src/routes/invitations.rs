//! Invitations: tenant admins invite by email; the invitee follows the
//! link, creates an account or signs in, and joins with the given role.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenantry_domain::access::{Permission, RoleName};
use tenantry_domain::tenant::{InvitationStatus, TenantCommand};
use tenantry_domain::values::Email;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::error::{ApiError, Validation};
use crate::extract::{
    json_from_bytes, status_filter, Context, InvitationPath, Json, ListOut, PageParams, Query,
    TokenPath,
};
use crate::guard::{authenticate, Access, Principal, TenantScope};
use crate::middleware::SecretResponse;
use crate::responses::InvitationOut;
use crate::routes::Route;
use crate::service::invitations::{
    self, accept, accept_url, by_token, not_found, AcceptedOut, SignUp,
};
use crate::service::tenants::run_tenant_command;
use crate::state::AppState;

pub fn routes() -> Vec<Route> {
    use Access::Tenant as In;
    let manage = In(Permission::InvitationsManage);
    const LIST: &str = "/v1/tenants/{tid}/invitations";
    const ONE: &str = "/v1/tenants/{tid}/invitations/{invitation_id}";
    vec![
        Route::post(LIST, manage, post_invitation)
            .summary("Invite an email to a role; the token and link are shown only here")
            .body::<InvitationIn>()
            .answers::<IssuedOut>(StatusCode::CREATED)
            .errors(&[
                "already_member",
                "invitation_pending",
                "unknown_role",
                "role_escalation",
                "owner_required",
                "seat_limit_reached",
                "tenant_archived",
            ]),
        Route::get(LIST, manage, list_invitations)
            .summary("The tenant's invitations, optionally by status")
            .query::<InvitationListParams>()
            .answers_page::<InvitationOut>()
            .errors(&["invalid_limit", "invalid_cursor", "invalid_status"]),
        Route::get(ONE, manage, get_invitation)
            .summary("One invitation, with its email's delivery status")
            .answers::<InvitationOut>(StatusCode::OK)
            .errors(&["invitation_not_found"]),
        Route::delete(ONE, manage, delete_invitation)
            .summary("Revoke a pending invitation")
            .no_content()
            .errors(&[
                "invitation_not_found",
                "invitation_not_pending",
                "tenant_archived",
            ]),
        Route::post(
            "/v1/tenants/{tid}/invitations/{invitation_id}/resend",
            manage,
            resend_invitation,
        )
        .summary("A new token and expiry; the old link stops working")
        .answers::<IssuedOut>(StatusCode::OK)
        .errors(&[
            "invitation_not_found",
            "invitation_not_pending",
            "concurrent_update",
            "tenant_archived",
        ]),
        Route::get("/v1/invitations/{token}", Access::Throttled, get_public)
            .summary("What an invitee sees before accepting")
            .answers::<PublicInvitationOut>(StatusCode::OK)
            .errors(&[
                "invitation_not_found",
                "invitation_expired",
                "invitation_revoked",
                "invitation_used",
            ]),
        Route::post(
            "/v1/invitations/{token}/accept",
            Access::Throttled,
            accept_invitation,
        )
        .summary("Accept: signed in as the invited email, or sign up with name and password")
        .optional_body::<SignUp>()
        .answers::<AcceptedOut>(StatusCode::OK)
        .errors(&[
            "invitation_not_found",
            "invitation_expired",
            "invitation_revoked",
            "invitation_used",
            "invitation_email_mismatch",
            "sign_in_required",
            "invalid_token",
            "user_token_required",
            "already_member",
            "seat_limit_reached",
            "tenant_archived",
            "tenant_suspended",
            "user_deactivated",
        ]),
    ]
}

/// Create and resend answers: the one place the token and link appear.
#[derive(Serialize, utoipa::ToSchema)]
struct IssuedOut {
    #[serde(flatten)]
    invitation: InvitationOut,
    accept_url: String,
    #[schema(value_type = String)]
    token: Zeroizing<String>,
}

async fn invitation_out(
    state: &AppState,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<InvitationOut, ApiError> {
    state
        .reads
        .invitations()
        .get(tenant_id, id, state.now())
        .await?
        .map(InvitationOut::from)
        .ok_or_else(not_found)
}

/// The answer to a create or resend: the one place the token and link appear.
async fn issued_out(
    state: &AppState,
    tenant_id: Uuid,
    invitation_id: Uuid,
    token: Zeroizing<String>,
) -> Result<IssuedOut, ApiError> {
    Ok(IssuedOut {
        invitation: invitation_out(state, tenant_id, invitation_id).await?,
        accept_url: accept_url(state, &token),
        token,
    })
}

#[derive(Deserialize, utoipa::ToSchema)]
struct InvitationIn {
    #[schema(format = Email, max_length = 254)]
    email: String,
    role: String,
}

/// Invite an email to a role.
async fn post_invitation(
    State(state): State<AppState>,
    ctx: Context,
    scope: TenantScope,
    Json(body): Json<InvitationIn>,
) -> Result<(StatusCode, SecretResponse, axum::Json<IssuedOut>), ApiError> {
    let mut v = Validation::default();
    let email = v.check("email", Email::parse(&body.email));
    let role = v.check("role", RoleName::parse(&body.role));
    v.finish()?;
    let (Some(email), Some(role)) = (email, role) else {
        return Err(ApiError::internal("validation passed without values"));
    };
    let (invitation_id, token) = invitations::invite(&state, &ctx, &scope, email, role).await?;
    let issued = issued_out(&state, scope.tenant_id, invitation_id, token).await?;
    Ok((StatusCode::CREATED, SecretResponse, axum::Json(issued)))
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct InvitationListParams {
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    cursor: Option<String>,
    status: Option<String>,
}

/// The tenant's invitations, optionally by status.
async fn list_invitations(
    State(state): State<AppState>,
    scope: TenantScope,
    Query(params): Query<InvitationListParams>,
) -> Result<axum::Json<ListOut<InvitationOut>>, ApiError> {
    let status = status_filter(
        params.status.as_deref(),
        &InvitationStatus::ALL,
        InvitationStatus::as_str,
    )?;
    let paging = PageParams::new(params.limit, params.cursor);
    let page = state
        .reads
        .invitations()
        .list(
            scope.tenant_id,
            status.map(InvitationStatus::as_str),
            paging.after()?,
            paging.limit()?,
            state.now(),
        )
        .await?;
    Ok(axum::Json(ListOut::from_page(page, InvitationOut::from)))
}

/// One invitation, with its email's delivery status.
async fn get_invitation(
    State(state): State<AppState>,
    scope: TenantScope,
    InvitationPath(id): InvitationPath,
) -> Result<axum::Json<InvitationOut>, ApiError> {
    Ok(axum::Json(
        invitation_out(&state, scope.tenant_id, id).await?,
    ))
}

/// Revoke a pending invitation.
async fn delete_invitation(
    State(state): State<AppState>,
    ctx: Context,
    scope: TenantScope,
    InvitationPath(invitation_id): InvitationPath,
) -> Result<StatusCode, ApiError> {
    let command = TenantCommand::RevokeInvitation {
        invitation_id: invitation_id.into(),
        now: state.now(),
    };
    let actor = scope.principal.actor();
    run_tenant_command(&state, &ctx, actor, scope.tenant_id, command).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new token and expiry; the old link stops working.
async fn resend_invitation(
    State(state): State<AppState>,
    ctx: Context,
    scope: TenantScope,
    InvitationPath(invitation_id): InvitationPath,
) -> Result<(SecretResponse, axum::Json<IssuedOut>), ApiError> {
    let token = invitations::resend(&state, &ctx, &scope, invitation_id).await?;
    let issued = issued_out(&state, scope.tenant_id, invitation_id, token).await?;
    Ok((SecretResponse, axum::Json(issued)))
}

#[derive(Serialize, utoipa::ToSchema)]
struct PublicTenant {
    id: Uuid,
    name: String,
}

#[derive(Serialize, utoipa::ToSchema)]
struct PublicInvitationOut {
    tenant: PublicTenant,
    /// `null` once the person with this address is erased.
    email: Option<String>,
    role: String,
    invited_by_name: Option<String>,
    expires_at: DateTime<Utc>,
}

/// What an invitee sees before accepting.
async fn get_public(
    State(state): State<AppState>,
    TokenPath(token): TokenPath,
) -> Result<axum::Json<PublicInvitationOut>, ApiError> {
    let (invitation_id, tenant, invitation) = by_token(&state, &token).await?;
    let tenant_id = tenant.id.ok_or_else(not_found)?;
    let row = state
        .reads
        .invitations()
        .get(tenant_id, invitation_id, state.now())
        .await?;
    Ok(axum::Json(PublicInvitationOut {
        tenant: PublicTenant {
            id: tenant_id,
            name: tenant
                .name
                .map(|n| n.as_str().to_string())
                .unwrap_or_default(),
        },
        email: row.as_ref().and_then(|r| r.email.clone()),
        role: invitation.role.as_str().to_string(),
        invited_by_name: row.and_then(|r| r.invited_by_name),
        expires_at: invitation.expires_at,
    }))
}

/// Accept: signed in as the invited email, or sign up with `{name, password}`.
async fn accept_invitation(
    State(state): State<AppState>,
    ctx: Context,
    TokenPath(token): TokenPath,
    parts: axum::http::request::Parts,
    body: axum::body::Bytes,
) -> Result<(SecretResponse, axum::Json<AcceptedOut>), ApiError> {
    // An unknown or used link is 404 or 410 before credentials are read.
    by_token(&state, &token).await?;
    let signed_in = match crate::credentials::bearer(&parts.headers) {
        Some(_) => match authenticate(&state, &parts).await? {
            Principal::User(caller) => Some(caller),
            Principal::ApiKey(_) => {
                return Err(ApiError::forbidden(
                    "user_token_required",
                    "accepting an invitation needs a person's access token",
                ))
            }
        },
        None => None,
    };
    let sign_up = if body.is_empty() {
        SignUp::default()
    } else {
        json_from_bytes(&body)?
    };
    let accepted = accept(&state, &ctx, &token, signed_in, sign_up).await?;
    Ok((SecretResponse, axum::Json(accepted)))
}
