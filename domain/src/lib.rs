//! Tenantry's domain core: aggregates, their commands, events and errors, and
//! the value types that make invalid states unrepresentable.
//!
//! Architecture invariant: this crate does no IO. It knows nothing of SQL,
//! HTTP or the clock; time and ids come in through commands and metadata.

pub mod access;
pub mod api_key;
pub mod claims;
pub mod codec;
pub mod llm_key;
pub mod metadata;
pub mod session;
pub mod tenant;
pub mod user;
pub mod values;

pub use claims::{ClaimChange, ClaimScope, UniqueClaims};
pub use codec::{CodecError, EventCodec};
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
