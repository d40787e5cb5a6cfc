//! Metadata carried by every event: whose stream it belongs to and who caused it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The pseudo-tenant whose stream holds platform-level events (users, sessions).
pub const PLATFORM_TENANT: Uuid = Uuid::nil();

/// Who caused an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Actor {
    User { id: Uuid },
    ApiKey { id: Uuid },
    System { name: String },
    Anonymous,
}

impl Actor {
    pub fn system(name: &str) -> Self {
        Self::System {
            name: name.to_string(),
        }
    }

    /// A short, stable label for logs and idempotency scoping (`user:<id>`).
    pub fn label(&self) -> String {
        match self {
            Self::User { id } => format!("user:{id}"),
            Self::ApiKey { id } => format!("api_key:{id}"),
            Self::System { name } => format!("system:{name}"),
            Self::Anonymous => "anonymous".to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMetadata {
    pub tenant_id: Uuid,
    pub actor: Actor,
    /// The platform operator acting on behalf of `actor`, when impersonating.
    pub impersonator: Option<Actor>,
    pub request_id: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

impl EventMetadata {
    pub fn new(
        tenant_id: Uuid,
        actor: Actor,
        request_id: Option<String>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            tenant_id,
            actor,
            impersonator: None,
            request_id,
            occurred_at: now,
        }
    }

    /// The same causation, filed under another tenant's stream.
    pub fn for_tenant(&self, tenant_id: Uuid) -> Self {
        Self {
            tenant_id,
            ..self.clone()
        }
    }
}
