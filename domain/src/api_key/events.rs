use crate::access::PermissionSet;
use crate::claims::UniqueClaims;
use crate::values::Label;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum ApiKeyEvent {
    ApiKeyCreated {
        key_id: Uuid,
        name: Label,
        prefix: String,
        permissions: PermissionSet,
        expires_at: Option<DateTime<Utc>>,
    },
    ApiKeyRevoked {},
}

crate::stored_event!(ApiKeyEvent);
impl UniqueClaims for ApiKeyEvent {}
