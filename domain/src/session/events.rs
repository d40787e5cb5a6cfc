use crate::claims::UniqueClaims;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{RevokeReason, SignInFailure};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum SessionEvent {
    SignInSucceeded {
        user_id: Uuid,
    },
    /// Version 2. Nothing an anonymous caller typed is kept: a known user
    /// is the event's actor, and an unknown address is recorded only as
    /// `email_hash`, a keyed hash (HMAC-SHA256) that lets an auditor count
    /// attempts on one address without the log holding it. The password
    /// never. Version 1 held the attempted email verbatim; it reads as
    /// version 2 with `email_hash: null`.
    SignInFailed {
        reason: SignInFailure,
        email_hash: Option<String>,
    },
    SessionRefreshed {},
    SessionRevoked {
        reason: RevokeReason,
    },
    ImpersonationStarted {
        admin_id: Uuid,
        user_id: Uuid,
        reason: String,
        expires_at: chrono::DateTime<chrono::Utc>,
    },
    ImpersonationEnded {
        admin_id: Uuid,
        user_id: Uuid,
    },
}

crate::stored_event!(SessionEvent, own_codec);

impl crate::codec::EventCodec for SessionEvent {
    fn current_version(event_type: &str) -> i32 {
        match event_type {
            "SignInFailed" => 2,
            _ => 1,
        }
    }

    fn upcasters() -> &'static [crate::codec::Upcaster] {
        &[crate::codec::Upcaster {
            event_type: "SignInFailed",
            from_version: 1,
            upcast: |mut data| {
                data.remove("email");
                data.insert("email_hash".into(), serde_json::Value::Null);
                data
            },
        }]
    }
}
impl UniqueClaims for SessionEvent {}
