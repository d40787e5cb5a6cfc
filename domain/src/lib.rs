//! Tenantry's domain core: aggregates, their commands, events and errors, and
//! the value types that make invalid states unrepresentable.
//!
//! Architecture invariant: this crate does no IO. It knows nothing of SQL,
//! HTTP or the clock; time and ids come in through commands and metadata.

pub mod access;
pub mod agent;
pub mod api_key;
pub mod approval;
pub mod approval_policy;
pub mod billing;
pub mod claims;
pub mod codec;
pub mod ids;
pub mod llm_key;
pub mod metadata;
pub mod plan;
pub mod price_book;
pub mod session;
pub mod tenant;
pub mod usage;
pub mod user;
pub mod values;

pub use claims::{ClaimChange, ClaimScope, UniqueClaims};
pub use codec::{CodecError, EventCodec};
pub use ids::{
    AgentId, AggregateRoot, ApiKeyId, ApprovalId, InvitationId, LedgerId, LlmKeyId, PlanId,
    PriceBookId, SessionId, TenantId, UserId,
};
pub use metadata::{Actor, EventMetadata, PLATFORM_TENANT};
pub mod error;
pub use error::{DomainError, ErrorKind};

/// Write decided events to the sink, applying each in turn: the body of
/// every aggregate's `handle`, whose logic lives in its pure `decide`.
pub async fn emit<A: cqrs_es::Aggregate>(
    aggregate: &mut A,
    events: Vec<A::Event>,
    sink: &cqrs_es::event_sink::EventSink<A>,
) {
    for event in events {
        sink.write(event, aggregate).await;
    }
}

/// Implement cqrs-es's `Aggregate` for a type with an inherent pure
/// `decide(&self, command) -> Result<Vec<Event>, Error>` and
/// `evolve(&mut self, event)`: every aggregate here is exactly that. `$id`
/// is the typed id that addresses the aggregate's stream; the type's
/// inherent `chain_of(&self, id, actor)` is its `AggregateRoot::platform_chain`.
#[macro_export]
macro_rules! aggregate {
    ($ty:ty, $name:literal, $id:ty, $command:ty, $event:ty, $error:ty) => {
        impl $crate::ids::AggregateRoot for $ty {
            type Id = $id;

            fn platform_chain(&self, id: $id, actor: &$crate::Actor) -> Option<uuid::Uuid> {
                self.chain_of(id, actor)
            }
        }

        impl cqrs_es::Aggregate for $ty {
            const TYPE: &'static str = $name;
            type Command = $command;
            type Event = $event;
            type Error = $error;
            type Services = ();

            async fn handle(
                &mut self,
                command: $command,
                _services: &(),
                sink: &cqrs_es::event_sink::EventSink<Self>,
            ) -> Result<(), $error> {
                let events = self.decide(command)?;
                $crate::emit(self, events, sink).await;
                Ok(())
            }

            fn apply(&mut self, event: $event) {
                self.evolve(event)
            }
        }
    };
}

/// Implement `DomainEvent` and `EventCodec` for an event enum stored under
/// its variant names, every type at version 1; with `own_codec` the enum
/// implements `EventCodec` itself to declare newer versions and upcasters.
#[macro_export]
macro_rules! stored_event {
    ($ty:ty) => {
        $crate::stored_event!($ty, own_codec);
        impl $crate::codec::EventCodec for $ty {}
    };
    // The type implements `EventCodec` itself (versions above 1, upcasters).
    ($ty:ty, own_codec) => {
        impl cqrs_es::DomainEvent for $ty {
            fn event_type(&self) -> String {
                $crate::codec::variant_name(self)
            }
            fn event_version(&self) -> String {
                <Self as $crate::codec::EventCodec>::current_version(
                    &cqrs_es::DomainEvent::event_type(self),
                )
                .to_string()
            }
        }
    };
}
