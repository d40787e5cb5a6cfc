//! Permissions as data: the fixed catalogue of permission names, sets of
//! them, the built-in roles and the names of custom ones.
//!
//! The catalogue is append-only: stored events name permissions, so a name
//! once shipped is never renamed or removed. `docs/PERMISSIONS.md` documents
//! each one.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::values::ValueError;

macro_rules! permissions {
    ($($variant:ident => $name:literal),+ $(,)?) => {
        /// One permission of the catalogue.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Permission {
            $($variant),+
        }

        impl Permission {
            /// Every permission, in catalogue order.
            pub const ALL: &'static [Permission] = &[$(Permission::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Permission::$variant => $name),+
                }
            }
        }
    };
}

permissions! {
    TenantRead => "tenant.read",
    TenantManage => "tenant.manage",
    MembersRead => "members.read",
    MembersManage => "members.manage",
    RolesManage => "roles.manage",
    InvitationsManage => "invitations.manage",
    ApiKeysManage => "apikeys.manage",
    LlmKeysRead => "llm_keys.read",
    LlmKeysManage => "llm_keys.manage",
    LlmKeysUse => "llm_keys.use",
    BillingRead => "billing.read",
    BillingManage => "billing.manage",
    UsageRead => "usage.read",
    UsageWrite => "usage.write",
    AgentsRead => "agents.read",
    AgentsManage => "agents.manage",
    ApprovalsRequest => "approvals.request",
    ApprovalsDecide => "approvals.decide",
    AuditRead => "audit.read",
    WebhooksManage => "webhooks.manage",
    ApprovalsManage => "approvals.manage",
}

impl Permission {
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|p| p.as_str() == raw)
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of permissions. Serializes as a list of names in catalogue order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PermissionSet(u32);

impl PermissionSet {
    pub const EMPTY: Self = Self(0);

    pub fn all() -> Self {
        Self::of(Permission::ALL)
    }

    pub fn of(permissions: &[Permission]) -> Self {
        Self(permissions.iter().fold(0, |acc, p| acc | p.bit()))
    }

    /// Parse a list of names; the error names every unknown one.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, ValueError> {
        let mut set = Self::EMPTY;
        let mut unknown = Vec::new();
        for name in names {
            match Permission::parse(name.as_ref()) {
                Some(p) => set = set.with(p),
                None => unknown.push(name.as_ref().to_string()),
            }
        }
        if unknown.is_empty() {
            return Ok(set);
        }
        // Name a few, each shortened: the answer must not echo a huge input.
        let mut named: Vec<String> = unknown
            .iter()
            .take(5)
            .map(|n| match n.char_indices().nth(64) {
                Some((cut, _)) => format!("{}…", &n[..cut]),
                None => n.clone(),
            })
            .collect();
        if unknown.len() > named.len() {
            named.push(format!("and {} more", unknown.len() - named.len()));
        }
        Err(ValueError::new(
            "unknown_permission",
            format!(
                "unknown permission(s): {}; see docs/PERMISSIONS.md for the catalogue",
                named.join(", ")
            ),
        ))
    }

    pub fn contains(self, p: Permission) -> bool {
        self.0 & p.bit() != 0
    }

    pub fn with(self, p: Permission) -> Self {
        Self(self.0 | p.bit())
    }

    pub fn without(self, p: Permission) -> Self {
        Self(self.0 & !p.bit())
    }

    pub fn is_subset_of(self, other: Self) -> bool {
        self.0 & !other.0 == 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The members of `self` missing from `other`.
    pub fn minus(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL
            .iter()
            .copied()
            .filter(move |p| self.contains(*p))
    }

    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Permission::as_str).collect()
    }
}

impl fmt::Debug for PermissionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.names()).finish()
    }
}

impl Serialize for PermissionSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.names().serialize(s)
    }
}

impl<'de> Deserialize<'de> for PermissionSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let names = Vec::<String>::deserialize(d)?;
        Self::parse(&names).map_err(serde::de::Error::custom)
    }
}

/// The roles every tenant has. They cannot be changed or deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuiltinRole {
    Owner,
    Admin,
    Operator,
    Viewer,
    Auditor,
}

impl BuiltinRole {
    pub const ALL: [Self; 5] = [
        Self::Owner,
        Self::Admin,
        Self::Operator,
        Self::Viewer,
        Self::Auditor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Operator => "operator",
            Self::Viewer => "viewer",
            Self::Auditor => "auditor",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == raw)
    }

    pub fn permissions(self) -> PermissionSet {
        use Permission::*;
        match self {
            // `llm_keys.use` is held by no role: only API keys carry it.
            Self::Owner | Self::Admin => PermissionSet::all().without(LlmKeysUse),
            Self::Operator => PermissionSet::of(&[
                TenantRead,
                MembersRead,
                LlmKeysRead,
                BillingRead,
                UsageRead,
                UsageWrite,
                AgentsRead,
                ApprovalsRequest,
                ApprovalsDecide,
            ]),
            Self::Viewer => PermissionSet::of(&[
                TenantRead,
                MembersRead,
                LlmKeysRead,
                BillingRead,
                UsageRead,
                AgentsRead,
            ]),
            Self::Auditor => {
                PermissionSet::of(&[TenantRead, MembersRead, BillingRead, UsageRead, AuditRead])
            }
        }
    }
}

/// What a role grants: a built-in role's fixed set, or a custom role's
/// stored names (`None`: a custom role that no longer exists grants nothing).
pub fn role_permissions(
    role: &str,
    custom: Option<&[String]>,
) -> Result<PermissionSet, ValueError> {
    match BuiltinRole::parse(role) {
        Some(builtin) => Ok(builtin.permissions()),
        None => custom.map_or(Ok(PermissionSet::EMPTY), PermissionSet::parse),
    }
}

/// What a platform admin holds in every tenant: everything a role can hold.
pub fn platform_admin_permissions() -> PermissionSet {
    PermissionSet::all().without(Permission::LlmKeysUse)
}

/// A role's name: built-in or custom. Custom names are 2 to 40 characters
/// of `a-z`, `0-9`, `_` and `-`, starting with a letter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RoleName(String);

impl RoleName {
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let ok = (2..=40).contains(&raw.len())
            && raw.starts_with(|c: char| c.is_ascii_lowercase())
            && raw
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if ok {
            Ok(Self(raw.to_string()))
        } else {
            Err(ValueError::new(
                "invalid_role_name",
                "a role name is 2 to 40 characters of a-z, 0-9, '_' and '-', starting with a letter",
            ))
        }
    }

    pub fn owner() -> Self {
        Self(BuiltinRole::Owner.as_str().to_string())
    }

    pub fn builtin(role: BuiltinRole) -> Self {
        Self(role.as_str().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn as_builtin(&self) -> Option<BuiltinRole> {
        BuiltinRole::parse(&self.0)
    }

    pub fn is_owner(&self) -> bool {
        self.as_builtin() == Some(BuiltinRole::Owner)
    }
}

impl fmt::Display for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_has_twenty_one_distinct_names_that_parse_back() {
        assert_eq!(Permission::ALL.len(), 21);
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Some(*p));
        }
        assert_eq!(PermissionSet::all().iter().count(), 21);
    }

    #[test]
    fn unknown_names_are_refused_by_name() {
        let err = PermissionSet::parse(&["tenant.read", "root", "members.nuke"]).unwrap_err();
        assert_eq!(err.code, "unknown_permission");
        assert!(err.message.contains("root, members.nuke"));
    }

    #[test]
    fn sets_serialize_as_names_in_catalogue_order() {
        let set = PermissionSet::of(&[Permission::AuditRead, Permission::TenantRead]);
        let json = serde_json::to_value(set).unwrap();
        assert_eq!(json, serde_json::json!(["tenant.read", "audit.read"]));
        let back: PermissionSet = serde_json::from_value(json).unwrap();
        assert_eq!(back, set);
    }

    #[test]
    fn no_builtin_role_holds_llm_keys_use_and_owner_equals_admin() {
        for role in BuiltinRole::ALL {
            assert!(!role.permissions().contains(Permission::LlmKeysUse));
        }
        assert_eq!(
            BuiltinRole::Owner.permissions(),
            BuiltinRole::Admin.permissions()
        );
        assert!(BuiltinRole::Viewer
            .permissions()
            .is_subset_of(BuiltinRole::Operator.permissions()));
    }

    #[test]
    fn role_names_follow_the_pattern() {
        assert!(RoleName::parse("support-lead").is_ok());
        for bad in ["A", "x", "Support", "1ops", "ops lead", &"a".repeat(41)] {
            assert!(RoleName::parse(bad).is_err(), "{bad}");
        }
    }
}
