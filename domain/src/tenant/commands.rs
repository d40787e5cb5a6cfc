use uuid::Uuid;

use crate::values::{Slug, TenantName, TenantSettings};

#[derive(Debug, Clone, PartialEq)]
pub enum TenantCommand {
    CreateTenant {
        tenant_id: Uuid,
        name: TenantName,
        slug: Slug,
        settings: TenantSettings,
    },
    /// Change the name and/or merge-patch the settings; absent parts stay.
    UpdateTenant {
        name: Option<TenantName>,
        settings_patch: Option<TenantSettings>,
    },
    SuspendTenant {
        reason: String,
    },
    ReactivateTenant,
    ArchiveTenant,
}
