//! Auditors over HTTP (`docs/AUDIT.md`): a tenant's events with their
//! hashes and filters, the platform's own events, the chain exported
//! (NDJSON or CSV) and verified.

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tenantry_domain::access::Permission;
use tenantry_domain::values::ValueError;
use tenantry_store::audit::{AuditedEvent, EventFilter};
use tenantry_store::chain::Verdict;

use crate::error::{ApiError, Validation};
use crate::extract::{ListOut, PageParams, Query};
use crate::guard::{Access, TenantScope};
use crate::routes::Route;
use crate::service::audit::{self, ExportFormat};
use crate::service::event_stream;
use crate::service::tenants::record_tenant;
use crate::state::AppState;

pub fn routes() -> Vec<Route> {
    use Access::Tenant as In;
    vec![
        Route::get(
            "/v1/tenants/{tid}/events",
            In(Permission::AuditRead),
            list_tenant_events,
        )
        .summary("The tenant's events in chain order, with their hashes; filter by actor, type, aggregate, time or impersonation")
        .query::<EventParams>()
        .answers_page::<EventOut>()
        .errors(&["invalid_limit", "invalid_after"]),
        Route::get(STREAM, In(Permission::AuditRead), stream)
            .summary("The tenant's events as they commit (Server-Sent Events): each event's `id` is its sequence; resume after a disconnect with the `Last-Event-ID` header (or `after`) and nothing is missed or repeated; comments as heartbeats; a last `end` event says why the server ended it")
            .query::<StreamParams>()
            .answers_media(StatusCode::OK, "text/event-stream")
            .errors(&["invalid_last_event_id", "invalid_after", "too_many_streams"]),
        Route::get("/v1/admin/events", Access::PlatformAdmin, list_platform_events)
            .summary("The platform's own events (people's chains: users, sign-ins, sessions) in the global order, with their hashes and the same filters")
            .query::<EventParams>()
            .answers_page::<EventOut>()
            .errors(&["invalid_limit", "invalid_after"]),
        Route::get(
            "/v1/tenants/{tid}/audit/export",
            In(Permission::AuditRead),
            export,
        )
        .summary("The tenant's chain as NDJSON (one event a line, then a manifest line), or CSV with format=csv; resumable by sequence")
        .query::<ExportParams>()
        .answers_media(StatusCode::OK, "application/x-ndjson")
        .errors(&["invalid_sequence_range", "invalid_format"]),
        Route::get(
            "/v1/tenants/{tid}/audit/verify",
            In(Permission::AuditRead),
            verify,
        )
        .summary("Verify the tenant's stored chain from its first event (and against its signed checkpoints): the range verified, or the first bad sequence and why")
        .answers::<VerifyOut>(StatusCode::OK),
        Route::get(CHECKPOINTS, In(Permission::AuditRead), list_checkpoints)
            .summary("The tenant's signed checkpoints (its chain's head at a time, signed with the server's Ed25519 key), oldest first")
            .query::<CheckpointParams>()
            .answers_page::<CheckpointOut>()
            .errors(&["invalid_limit", "invalid_after"]),
        Route::post(CHECKPOINTS, In(Permission::AuditRead), post_checkpoint)
            .summary("Sign the tenant's chain's head now and keep the checkpoint")
            .answers::<CheckpointOut>(StatusCode::CREATED),
        Route::get("/v1/audit/keys", Access::Public, audit_keys)
            .summary("The public keys that sign checkpoints (every key that ever signed one stays listed while configured)")
            .answers::<KeysOut>(StatusCode::OK),
    ]
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct EventParams {
    /// The last sequence (tenant events) or position (platform events)
    /// of the previous page.
    #[param(minimum = 0)]
    after: Option<i64>,
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// `user:<id>`, `api_key:<id>`, `system:<job>`, `anonymous`; or
    /// `user`, `api_key`, `system` for any actor of that kind.
    actor: Option<String>,
    event_type: Option<String>,
    aggregate_type: Option<String>,
    aggregate_id: Option<String>,
    /// Recorded at or after (RFC 3339).
    from: Option<DateTime<Utc>>,
    /// Recorded before (RFC 3339).
    to: Option<DateTime<Utc>>,
    /// Only what was done while impersonating (true), or not (false).
    impersonated: Option<bool>,
}

impl EventParams {
    fn filter(&self) -> Result<EventFilter, ApiError> {
        let mut v = Validation::default();
        let actor = self
            .actor
            .as_deref()
            .and_then(|raw| v.check("actor", actor_filter(raw)));
        let short = |field: &str, raw: &Option<String>, v: &mut Validation| {
            if raw.as_ref().is_some_and(|s| s.is_empty() || s.len() > 200) {
                v.check::<()>(
                    field,
                    Err(ValueError::new("invalid_length", "1 to 200 characters")),
                );
            }
        };
        short("event_type", &self.event_type, &mut v);
        short("aggregate_type", &self.aggregate_type, &mut v);
        short("aggregate_id", &self.aggregate_id, &mut v);
        if let (Some(from), Some(to)) = (self.from, self.to) {
            if from >= to {
                v.check::<()>(
                    "to",
                    Err(ValueError::new("invalid_range", "`to` is after `from`")),
                );
            }
        }
        v.finish()?;
        Ok(EventFilter {
            actor,
            event_type: self.event_type.clone(),
            aggregate_type: self.aggregate_type.clone(),
            aggregate_id: self.aggregate_id.clone(),
            from: self.from,
            to: self.to,
            impersonated: self.impersonated,
        })
    }

    fn paging(&self) -> Result<(i64, i64), ApiError> {
        after_and_limit(self.after, self.limit)
    }
}

/// `kind` or `kind:ref` as metadata names actors.
fn actor_filter(raw: &str) -> Result<(String, Option<String>), ValueError> {
    let (kind, reference) = match raw.split_once(':') {
        Some((k, r)) => (k, Some(r)),
        None => (raw, None),
    };
    let known = ["user", "api_key", "system", "anonymous"].contains(&kind);
    let ok_ref = reference.is_none_or(|r| !r.is_empty() && r.len() <= 100 && kind != "anonymous");
    if known && ok_ref {
        Ok((kind.to_string(), reference.map(str::to_string)))
    } else {
        Err(ValueError::new(
            "invalid_actor",
            "an actor is user, api_key, system or anonymous, optionally followed by :<id> (or :<job> for system)",
        ))
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct EventOut {
    /// Its place in its chain.
    sequence: i64,
    /// Its place in the whole log.
    position: i64,
    /// The person's chain a platform event is in; absent for a tenant's.
    chain_id: Option<uuid::Uuid>,
    event_type: String,
    event_version: i32,
    aggregate_type: String,
    aggregate_id: String,
    /// Its number in its aggregate's stream.
    aggregate_sequence: i64,
    #[schema(value_type = Object)]
    data: Value,
    #[schema(value_type = Object)]
    metadata: Value,
    recorded_at: DateTime<Utc>,
    /// SHA-256 of the event's canonical content (hex); absent for a
    /// format-1 event (docs/AUDIT.md).
    content_hash: Option<String>,
    /// The previous event's `hash` in the chain (empty for the first).
    prev_hash: String,
    hash: String,
}

impl From<AuditedEvent> for EventOut {
    fn from(a: AuditedEvent) -> Self {
        let e = a.event;
        Self {
            sequence: e.tenant_sequence,
            position: a.position,
            chain_id: e.chain_id,
            event_type: e.event_type,
            event_version: e.event_version,
            aggregate_type: e.aggregate_type,
            aggregate_id: e.aggregate_id,
            aggregate_sequence: e.sequence,
            data: e.payload,
            metadata: e.metadata,
            recorded_at: e.recorded_at,
            content_hash: e.content_hash,
            prev_hash: e.prev_hash,
            hash: e.hash,
        }
    }
}

/// A page of `limit` from `limit + 1` rows, each in its HTTP shape, and
/// the cursor (`after`: the last row's sequence or position) for the next.
fn page_of<R, T>(
    mut rows: Vec<R>,
    limit: i64,
    cursor: fn(&R) -> i64,
    out: impl FnMut(R) -> T,
) -> ListOut<T> {
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    let next_cursor = more
        .then(|| rows.last().map(|r| cursor(r).to_string()))
        .flatten();
    ListOut {
        data: rows.into_iter().map(out).collect(),
        next_cursor,
    }
}

/// `after` (a sequence or position, 0 when absent) and `limit` of a list
/// paged by number.
fn after_and_limit(after: Option<i64>, limit: Option<i64>) -> Result<(i64, i64), ApiError> {
    let limit = PageParams::new(limit, None).limit()?;
    Ok((checked_after(after.unwrap_or(0))?, limit))
}

/// `after`, a sequence or position: 0 or more.
fn checked_after(after: i64) -> Result<i64, ApiError> {
    if after < 0 {
        return Err(ApiError::unprocessable(
            "invalid_after",
            "after must be a sequence number of 0 or more",
        ));
    }
    Ok(after)
}

async fn list_tenant_events(
    State(state): State<AppState>,
    scope: TenantScope,
    Query(params): Query<EventParams>,
) -> Result<axum::Json<ListOut<EventOut>>, ApiError> {
    record_tenant(scope.tenant_id);
    let (after, limit) = params.paging()?;
    let filter = params.filter()?;
    // The guard has found the tenant already.
    let events = state
        .store
        .audit()
        .chain_page(scope.tenant_id, &filter, after, None, limit + 1)
        .await?;
    Ok(axum::Json(page_of(
        events,
        limit,
        |e| e.event.tenant_sequence,
        EventOut::from,
    )))
}

async fn list_platform_events(
    State(state): State<AppState>,
    Query(params): Query<EventParams>,
) -> Result<axum::Json<ListOut<EventOut>>, ApiError> {
    let (after, limit) = params.paging()?;
    let filter = params.filter()?;
    let events = state
        .store
        .audit()
        .platform_page(&filter, after, limit + 1)
        .await?;
    Ok(axum::Json(page_of(
        events,
        limit,
        |e| e.position,
        EventOut::from,
    )))
}

const STREAM: &str = "/v1/tenants/{tid}/events/stream";

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct StreamParams {
    /// Send the events after this sequence (the `Last-Event-ID` header
    /// wins when both are given); absent: only events to come.
    #[param(minimum = 0)]
    after: Option<i64>,
}

async fn stream(
    State(state): State<AppState>,
    scope: TenantScope,
    headers: HeaderMap,
    Query(params): Query<StreamParams>,
) -> Result<Response, ApiError> {
    record_tenant(scope.tenant_id);
    let resumed = match headers.get("last-event-id") {
        None => None,
        Some(raw) => Some(
            raw.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .filter(|n| *n >= 0)
                .ok_or_else(|| {
                    ApiError::unprocessable(
                        "invalid_last_event_id",
                        "Last-Event-ID is the sequence of the last event received, 0 or more",
                    )
                })?,
        ),
    };
    let after = match resumed.or(params.after) {
        Some(after) => checked_after(after)?,
        None => state
            .store
            .audit()
            .head(scope.tenant_id)
            .await?
            .map_or(0, |(sequence, _)| sequence),
    };
    let slot = state
        .streams
        .open(scope.tenant_id, scope.principal.actor().label())?;
    let opener = event_stream::Opener {
        tenant_id: scope.tenant_id,
        headers,
        path: STREAM,
        access: Access::Tenant(Permission::AuditRead),
        after,
        slot,
    };
    let events = event_stream::live(state, opener).map(|item| Ok::<_, Infallible>(sse_event(item)));
    Ok(Sse::new(events).into_response())
}

/// An item of the live stream as Server-Sent Events write it.
fn sse_event(item: event_stream::Item) -> SseEvent {
    use event_stream::Item;
    match item {
        Item::Opened { retry } => SseEvent::default().retry(retry).comment("open"),
        Item::Event(e) => {
            let id = e.event.tenant_sequence.to_string();
            SseEvent::default()
                .id(id)
                .json_data(EventOut::from(*e))
                .unwrap_or_else(|_| SseEvent::default().comment("an event that did not encode"))
        }
        Item::Heartbeat => SseEvent::default().comment("heartbeat"),
        Item::End { reason, message } => SseEvent::default()
            .event("end")
            .json_data(serde_json::json!({ "reason": reason, "message": message }))
            .unwrap_or_else(|_| SseEvent::default().event("end")),
    }
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ExportParams {
    /// The first sequence to export (1 when absent): one past the last
    /// line received resumes an export.
    #[param(minimum = 1)]
    from_sequence: Option<i64>,
    /// The last sequence to export (the head's when absent).
    #[param(minimum = 1)]
    to_sequence: Option<i64>,
    /// `ndjson` (the default) or `csv`.
    format: Option<String>,
}

async fn export(
    State(state): State<AppState>,
    scope: TenantScope,
    Query(params): Query<ExportParams>,
) -> Result<Response, ApiError> {
    let (format, media) = match params.format.as_deref() {
        None | Some("ndjson") => (ExportFormat::Ndjson, "application/x-ndjson"),
        Some("csv") => (ExportFormat::Csv, "text/csv; charset=utf-8"),
        Some(_) => {
            return Err(ApiError::unprocessable(
                "invalid_format",
                "format is ndjson or csv",
            ))
        }
    };
    let bad_range = params.from_sequence.is_some_and(|f| f < 1)
        || params.to_sequence.is_some_and(|t| t < 1)
        || matches!((params.from_sequence, params.to_sequence), (Some(f), Some(t)) if f > t);
    if bad_range {
        return Err(ApiError::unprocessable(
            "invalid_sequence_range",
            "from_sequence and to_sequence are 1 or more, from_sequence at most to_sequence",
        ));
    }
    let lines = audit::export(
        state.store.clone(),
        scope.tenant_id,
        params.from_sequence,
        params.to_sequence,
        format,
        state.now(),
    )
    .await?;
    Ok(([(header::CONTENT_TYPE, media)], Body::from_stream(lines)).into_response())
}

/// A verification's answer.
#[derive(Serialize, utoipa::ToSchema)]
struct VerifyOut {
    /// `verified` or `broken`.
    result: &'static str,
    /// Verified: the first and last sequence checked (absent for an empty
    /// chain) and the head's hash.
    from: Option<i64>,
    to: Option<i64>,
    head: Option<String>,
    /// Events verified (before the break, when broken).
    events: u64,
    /// Broken: the first bad sequence, why (`content_changed`,
    /// `event_missing`, `events_reordered`, `event_inserted`,
    /// `chain_rewritten_after_checkpoint`, `checkpoint_forged`), and what
    /// that means.
    sequence: Option<i64>,
    reason: Option<String>,
    message: Option<String>,
}

impl From<Verdict> for VerifyOut {
    fn from(v: Verdict) -> Self {
        match v {
            Verdict::Verified {
                from,
                to,
                events,
                head,
            } => Self {
                result: "verified",
                from,
                to,
                head,
                events,
                sequence: None,
                reason: None,
                message: None,
            },
            Verdict::Broken {
                sequence,
                reason,
                verified,
            } => Self {
                result: "broken",
                from: None,
                to: None,
                head: None,
                events: verified,
                sequence: Some(sequence),
                reason: serde_json::to_value(reason)
                    .ok()
                    .and_then(|r| r.as_str().map(str::to_string)),
                message: Some(reason.describe().to_string()),
            },
        }
    }
}

async fn verify(
    State(state): State<AppState>,
    scope: TenantScope,
) -> Result<axum::Json<VerifyOut>, ApiError> {
    let verdict =
        audit::verify_stored(&state.store, &state.config.audit_keys, scope.tenant_id).await?;
    Ok(axum::Json(VerifyOut::from(verdict)))
}

const CHECKPOINTS: &str = "/v1/tenants/{tid}/audit/checkpoints";

/// A signed checkpoint, exactly the fields the signature covers and the
/// signature (`docs/AUDIT.md`); save it as it is to verify against later.
#[derive(Serialize, utoipa::ToSchema)]
struct CheckpointOut {
    chain_id: uuid::Uuid,
    sequence: i64,
    /// The chain's hash at `sequence`, hex.
    hash: String,
    /// `YYYY-MM-DDTHH:MM:SS.ffffffZ`, as signed.
    signed_at: String,
    key_id: String,
    /// Ed25519, hex.
    signature: String,
}

impl From<tenantry_store::chain::ChainCheckpoint> for CheckpointOut {
    fn from(c: tenantry_store::chain::ChainCheckpoint) -> Self {
        Self {
            chain_id: c.chain_id,
            sequence: c.sequence,
            hash: c.hash,
            signed_at: tenantry_store::chain::time_text(c.signed_at),
            key_id: c.key_id,
            signature: c.signature,
        }
    }
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct CheckpointParams {
    /// The last sequence of the previous page.
    #[param(minimum = 0)]
    after: Option<i64>,
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

async fn list_checkpoints(
    State(state): State<AppState>,
    scope: TenantScope,
    Query(params): Query<CheckpointParams>,
) -> Result<axum::Json<ListOut<CheckpointOut>>, ApiError> {
    let (after, limit) = after_and_limit(params.after, params.limit)?;
    let page = state
        .store
        .audit()
        .checkpoints(scope.tenant_id, after, limit + 1)
        .await?;
    Ok(axum::Json(page_of(
        page,
        limit,
        |c| c.sequence,
        CheckpointOut::from,
    )))
}

async fn post_checkpoint(
    State(state): State<AppState>,
    scope: TenantScope,
) -> Result<(StatusCode, axum::Json<CheckpointOut>), ApiError> {
    let checkpoint = audit::checkpoint_now(&state, scope.tenant_id)
        .await?
        .ok_or_else(|| ApiError::internal("a visible tenant without events"))?;
    Ok((StatusCode::CREATED, axum::Json(checkpoint.into())))
}

#[derive(Serialize, utoipa::ToSchema)]
struct KeysOut {
    keys: Vec<crate::audit_keys::PublicKey>,
}

async fn audit_keys(State(state): State<AppState>) -> axum::Json<KeysOut> {
    axum::Json(KeysOut {
        keys: state.config.audit_keys.published(),
    })
}
