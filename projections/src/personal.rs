//! People's sealed data, opened for the read models that show it (users,
//! invitations, the email outbox). Events hold a person's email and name
//! sealed under the person's data key (`docs/AUDIT.md`, "Erasure"); a
//! projection finds the wrapped key in `data_keys` inside its batch
//! transaction and asks an [`Opener`] (the API's vault, which holds the
//! master keys) to open the value. A destroyed key opens nothing: the read
//! model shows the field as erased, live and after a rebuild alike.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use sqlx::PgConnection;
use tenantry_domain::values::Sealed;
use uuid::Uuid;

use crate::log::StoredEvent;
use crate::runtime::{reads_event, reset_tables, Projection, ProjectionError};

/// Opens a sealed value with the data key it names, wrapped as `data_keys`
/// keeps it. Implemented where the master keys are.
pub trait Opener: Send + Sync {
    /// The plaintext of `sealed` (of the field `field`), or why it does
    /// not open (a wrong or damaged key: never the erased case).
    fn open(
        &self,
        key_id: Uuid,
        wrapped: &[u8],
        field: &str,
        sealed: &Sealed,
    ) -> Result<String, String>;
}

/// The plaintext, or `None` when the person was erased (their key destroyed).
pub async fn open(
    tx: &mut PgConnection,
    opener: &dyn Opener,
    event: &StoredEvent,
    field: &str,
    sealed: &Sealed,
) -> Result<Option<String>, ProjectionError> {
    let key_id = sealed
        .key_id()
        .ok_or_else(|| ProjectionError::decode(event, format!("{field}: not a sealed value")))?;
    let wrapped: Option<Option<Vec<u8>>> =
        sqlx::query_scalar("SELECT wrapped FROM data_keys WHERE id = $1")
            .bind(key_id)
            .fetch_optional(&mut *tx)
            .await?;
    match wrapped {
        // A tombstone: erased.
        Some(None) => Ok(None),
        Some(Some(wrapped)) => opener
            .open(key_id, &wrapped, field, sealed)
            .map(Some)
            .map_err(|reason| ProjectionError::decode(event, format!("{field}: {reason}"))),
        None => Err(ProjectionError::decode(
            event,
            format!("{field}: its data key {key_id} is unknown"),
        )),
    }
}

/// Applies one event holding people's sealed data, opening it with the
/// opener ([`open`]).
pub type ApplyPersonalFn = for<'a> fn(
    &'a mut PgConnection,
    &'a StoredEvent,
    &'a dyn Opener,
) -> BoxFuture<'a, Result<(), ProjectionError>>;

/// A projection into plain tables whose events hold people's sealed data
/// (users, invitations, the outbox): as [`crate::TableProjection`], one
/// event at a time, and it runs only with an opener
/// ([`PersonalProjection::opening`]).
#[derive(Clone, Copy)]
pub struct PersonalProjection {
    pub name: &'static str,
    pub tables: &'static [&'static str],
    pub reads: &'static [(&'static str, &'static str)],
    pub apply: ApplyPersonalFn,
}

impl PersonalProjection {
    pub fn opening(self, opener: Arc<dyn Opener>) -> Opening {
        Opening {
            projection: self,
            opener,
        }
    }
}

/// A [`PersonalProjection`] with the opener it applies events with.
pub struct Opening {
    projection: PersonalProjection,
    opener: Arc<dyn Opener>,
}

impl Projection for Opening {
    fn name(&self) -> &'static str {
        self.projection.name
    }

    fn reads(&self, aggregate_type: &str, event_type: &str) -> bool {
        reads_event(self.projection.reads, aggregate_type, event_type)
    }

    fn reads_aggregate(&self, aggregate_type: &str) -> bool {
        self.projection
            .reads
            .iter()
            .any(|(a, _)| *a == aggregate_type)
    }

    fn apply_batch<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        events: &'a [StoredEvent],
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(async move {
            for event in events {
                if self.reads(&event.aggregate_type, &event.event_type) {
                    (self.projection.apply)(&mut *tx, event, self.opener.as_ref()).await?;
                }
            }
            Ok(())
        })
    }

    fn reset<'a>(&'a self, tx: &'a mut PgConnection) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        reset_tables(self.projection.tables, tx)
    }
}
