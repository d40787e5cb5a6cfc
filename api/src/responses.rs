//! Response bodies more than one route (or a worker) answers with: built
//! from read-model rows, never from a request.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenantry_domain::access::{role_permissions, PermissionSet};
use tenantry_domain::tenant::TenantStatus;
use tenantry_projections::access::MembershipRow;
use tenantry_projections::invitations::InvitationRow;
use tenantry_projections::users::UserRow;
use uuid::Uuid;

#[derive(Serialize, Deserialize, Debug, utoipa::ToSchema)]
pub struct UserOut {
    pub id: Uuid,
    /// `null` once the person is erased (`status: erased`).
    pub email: Option<String>,
    pub name: Option<String>,
    pub status: String,
    pub is_platform_admin: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<UserRow> for UserOut {
    fn from(r: UserRow) -> Self {
        Self {
            id: r.id,
            email: r.email,
            name: r.name,
            status: r.status,
            is_platform_admin: r.is_platform_admin,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// One of a user's tenants, with what their role lets them do there.
#[derive(Serialize, Deserialize, Debug, utoipa::ToSchema)]
pub struct MembershipOut {
    pub tenant_id: Uuid,
    pub name: String,
    pub slug: String,
    #[schema(value_type = String)]
    pub status: TenantStatus,
    pub role: String,
    #[schema(value_type = Vec<String>)]
    pub permissions: PermissionSet,
    pub joined_at: chrono::DateTime<chrono::Utc>,
}

impl From<MembershipRow> for MembershipOut {
    fn from(r: MembershipRow) -> Self {
        // Stored names come from decoded events, so they always parse.
        let permissions =
            role_permissions(&r.role, r.custom_permissions.as_deref()).unwrap_or_default();
        Self {
            tenant_id: r.tenant_id,
            name: r.tenant_name,
            slug: r.tenant_slug,
            status: r.tenant_status,
            role: r.role,
            permissions,
            joined_at: r.joined_at,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct InvitationOut {
    id: Uuid,
    /// `null` once the person with this address is erased.
    email: Option<String>,
    role: String,
    status: String,
    invited_by: Option<Uuid>,
    invited_by_name: Option<String>,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    /// Delivery of the latest email: `pending`, `sent`, `failed`,
    /// `superseded`, `erased` (not sent: its person was erased).
    email_status: Option<String>,
    email_attempts: Option<i32>,
}

impl From<InvitationRow> for InvitationOut {
    fn from(r: InvitationRow) -> Self {
        Self {
            id: r.id,
            email: r.email,
            role: r.role,
            status: r.status,
            invited_by: r.invited_by,
            invited_by_name: r.invited_by_name,
            created_at: r.created_at,
            expires_at: r.expires_at,
            email_status: r.email_status,
            email_attempts: r.email_attempts,
        }
    }
}

#[derive(Serialize, Deserialize, Debug, utoipa::ToSchema)]
pub struct TokenPairOut {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: String,
    pub expires_in: u64,
}
