//! Typed identifiers. Each aggregate is addressed by its own id type, so a
//! user's id cannot be handed to a command on a tenant, and the executor
//! takes exactly the id type of the aggregate it runs a command on
//! ([`AggregateRoot::Id`]). On the wire and in stored events an id is its
//! bare UUID (`#[serde(transparent)]`): the types change no format.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new id, time-ordered (UUID v7), so ids sort by creation.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }

            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            pub const fn as_uuid(self) -> Uuid {
                self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A tenant, and the id of its event stream's `Tenant` aggregate.
    TenantId
);
id_type!(
    /// A user (a person who signs in).
    UserId
);
id_type!(
    /// A sign-in or impersonation session.
    SessionId
);
id_type!(
    /// A tenant API key.
    ApiKeyId
);
id_type!(
    /// A stored provider (LLM) key.
    LlmKeyId
);
id_type!(
    /// An invitation, inside its tenant's aggregate.
    InvitationId
);
id_type!(
    /// A billing plan.
    PlanId
);
id_type!(
    /// An AI agent of a tenant.
    AgentId
);
id_type!(
    /// The price book (there is one: `price_book::PRICE_BOOK_ID`).
    PriceBookId
);
id_type!(
    /// A tenant's ledger of one month (`usage::ledger_id`).
    LedgerId
);
id_type!(
    /// A request for approval of an agent's (or a member's) action.
    ApprovalId
);

/// An aggregate and the id type that addresses its stream.
pub trait AggregateRoot: cqrs_es::Aggregate {
    type Id: Copy + fmt::Display + Send + Sync + 'static;

    /// For platform-scope events (users, sessions): the hash chain they
    /// join, one per person, so that sign-ins of different people never
    /// wait on each other's commit and a person's history is one verifiable
    /// chain. `None`: the tenant's chain (every tenant-scope aggregate).
    /// Asked of the state after the command's events are applied.
    /// `actor` is who the command's metadata names.
    fn platform_chain(&self, id: Self::Id, actor: &crate::Actor) -> Option<Uuid>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_its_bare_uuid_on_the_wire() {
        let uuid = Uuid::now_v7();
        let id = TenantId::from(uuid);
        assert_eq!(
            serde_json::to_value(id).unwrap(),
            serde_json::json!(uuid.to_string())
        );
        assert_eq!(
            serde_json::from_value::<TenantId>(serde_json::json!(uuid)).unwrap(),
            id
        );
        assert_eq!(id.to_string(), uuid.to_string());
    }

    #[test]
    fn generated_ids_sort_by_creation() {
        let first = UserId::generate();
        let second = UserId::generate();
        assert!(first < second);
    }
}
