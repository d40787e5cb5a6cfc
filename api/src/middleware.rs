//! Cross-cutting HTTP behaviour: request ids and request spans, the JSON
//! shape of every error (including the framework's own 404/405/408/413 and
//! panics), and `Idempotency-Key` replay.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use tracing::Instrument;
use uuid::Uuid;

use crate::error::{ApiError, DatabaseUnavailable};
use crate::request_id::{self, RequestId};
use crate::state::AppState;
use crate::store::idempotency::Reservation;

const MAX_BODY: usize = 1024 * 1024;

/// Outermost layer: give the request an id (echoing a sane incoming one),
/// open its span, and make sure every error leaves as the JSON error body.
pub async fn request_context(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let id = req
        .headers()
        .get(request_id::HEADER)
        .and_then(request_id::sane)
        .unwrap_or_else(|| Uuid::now_v7().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    // The matched route's template (`/v1/invitations/{token}`), never the
    // raw path: a path segment can be a bearer secret (an invitation
    // token), and the log must not hold one. Unrouted requests say so.
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("<no route>", |m| m.as_str())
        .to_string();
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        route = %route,
        request_id = %id,
        tenant_id = tracing::field::Empty,
        actor = tracing::field::Empty,
        impersonator = tracing::field::Empty,
        status = tracing::field::Empty,
    );
    let method = req.method().as_str().to_string();
    let started = std::time::Instant::now();
    let (req, body_read) = track_body(req);
    let response = request_id::scope(id.clone(), next.run(req))
        .instrument(span.clone())
        .await;
    if let Some(DatabaseUnavailable(cause)) = response.extensions().get() {
        state.outages.refused(cause);
    }
    let mut response = finish_errors(response, &id).await;
    span.record("status", response.status().as_u16());
    span.in_scope(|| tracing::info!("request finished"));
    crate::metrics::record_request(route, method, response.status(), started.elapsed());
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(request_id::HEADER, v);
    }
    // Answered before the body was read (401, 404, 413…): the unread rest
    // would be taken for the next request, so the server closes the
    // connection after this response. Say so, so that a client reusing
    // connections does not send its next request into a closed socket.
    if !body_read.load(Ordering::Acquire) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Wrap the request body so that whether it was read to its end can be
/// told after the response.
fn track_body(req: Request) -> (Request, Arc<AtomicBool>) {
    let (parts, body) = req.into_parts();
    let read = Arc::new(AtomicBool::new(http_body::Body::is_end_stream(&body)));
    let tracked = TrackedBody {
        inner: body,
        read: read.clone(),
    };
    (Request::from_parts(parts, Body::new(tracked)), read)
}

struct TrackedBody {
    inner: Body,
    read: Arc<AtomicBool>,
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || this.inner.is_end_stream() {
            this.read.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Rewrite error responses that are not our JSON (framework rejections,
/// timeouts, panics) into it, and put the request id into 500 bodies.
async fn finish_errors(response: Response, request_id: &str) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return response;
    }
    let (parts, _body) = response.into_parts();
    let error = fallback_error(status);
    let mut out = (status, axum::Json(error.body(Some(request_id)))).into_response();
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

fn fallback_error(status: StatusCode) -> ApiError {
    match status {
        StatusCode::NOT_FOUND => ApiError::not_found("not_found", "no such route"),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            status,
            "method_not_allowed",
            "this route does not accept this method",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(status, "payload_too_large", "the body is larger than 1 MiB")
        }
        StatusCode::REQUEST_TIMEOUT => {
            ApiError::new(status, "request_timeout", "the request took too long")
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ApiError::new(status, "unsupported_media_type", "send the body as JSON")
        }
        s if s.is_server_error() => {
            ApiError::new(s, "internal_error", "an internal error occurred")
        }
        s => ApiError::new(s, "bad_request", "the request was refused"),
    }
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("not_found", "no such route")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not accept this method",
    )
}

/// Marks a response that carries a secret (a new API key, a provider key's
/// plaintext, an impersonation token): it is never stored for replay, and
/// it tells caches not to keep it.
#[derive(Debug, Clone, Copy)]
pub struct SecretResponse;

impl axum::response::IntoResponseParts for SecretResponse {
    type Error = std::convert::Infallible;

    fn into_response_parts(
        self,
        mut res: axum::response::ResponseParts,
    ) -> Result<axum::response::ResponseParts, Self::Error> {
        res.extensions_mut().insert(self);
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Ok(res)
    }
}

/// The verified identity idempotency records are scoped to: a person's
/// user id, or an API key's id, established by the guard's own
/// authenticator (one copy of that logic). A caller it does not accept is
/// not deduplicated; the route's guard then answers.
async fn idempotency_caller(
    state: &AppState,
    parts: &axum::http::request::Parts,
) -> Option<String> {
    use crate::guard::Principal;
    match crate::guard::authenticate(state, parts).await {
        Ok(Principal::User(c)) => Some(format!("user:{}", c.user_id)),
        Ok(Principal::ApiKey(k)) => Some(format!("api_key:{}", k.key_id)),
        Err(_) => None,
    }
}

/// `Idempotency-Key` on POST commands: the first response to a (caller,
/// key) is stored; a retry with the same body replays it, another body is
/// 422 `idempotency_key_reused`. Callers are told apart by their verified
/// bearer token's subject; unauthenticated requests are not deduplicated.
pub async fn idempotency(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if req.method() != Method::POST {
        return Ok(next.run(req).await);
    }
    let Some(key) = req.headers().get("idempotency-key").cloned() else {
        return Ok(next.run(req).await);
    };
    let key = key
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_idempotency_key",
                "Idempotency-Key must be 1 to 255 visible characters",
            )
        })?
        .to_string();
    let (parts, body) = req.into_parts();
    let Some(caller) = idempotency_caller(&state, &parts).await else {
        return Ok(next.run(Request::from_parts(parts, body)).await);
    };
    let bytes: Bytes = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the body is larger than 1 MiB",
        )
    })?;
    let mut hasher = Sha256::new();
    hasher.update(parts.method.as_str());
    hasher.update([0]);
    hasher.update(parts.uri.path());
    hasher.update([0]);
    hasher.update(&bytes);
    let request_hash = hasher.finalize().to_vec();

    match state
        .store
        .idempotency()
        .reserve(&caller, &key, &request_hash)
        .await?
    {
        Reservation::Mismatch => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different request",
        )),
        Reservation::InProgress => Err(ApiError::conflict(
            "idempotency_in_progress",
            "a request with this Idempotency-Key is still being processed; retry later",
        )),
        Reservation::Replay(stored) => {
            let status = StatusCode::from_u16(stored.status as u16).unwrap_or(StatusCode::OK);
            let mut response = (status, stored.response_body).into_response();
            if let Some(ct) = stored
                .content_type
                .and_then(|c| HeaderValue::from_str(&c).ok())
            {
                response.headers_mut().insert(header::CONTENT_TYPE, ct);
            }
            response
                .headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            Ok(response)
        }
        Reservation::New => {
            let response = next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await;
            let status = response.status();
            // Server errors and auth failures may succeed on retry: forget the key.
            if status.is_server_error() || status == StatusCode::UNAUTHORIZED {
                state.store.idempotency().release(&caller, &key).await?;
                return Ok(response);
            }
            // A response carrying a secret is shown once: a replay gets a
            // stand-in, and the secret never reaches the idempotency table.
            if response.extensions().get::<SecretResponse>().is_some() {
                let stand_in = ApiError::conflict(
                    "secret_not_replayable",
                    "this request already succeeded; its response held a secret, which is shown only once",
                )
                .with_details(serde_json::json!({ "original_status": status.as_u16() }));
                let stand_in_body = stand_in.body(None).to_string();
                state
                    .store
                    .idempotency()
                    .complete(
                        &caller,
                        &key,
                        stand_in.status.as_u16(),
                        stand_in_body.as_bytes(),
                        Some("application/json"),
                    )
                    .await?;
                return Ok(response);
            }
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| ApiError::internal(format!("reading a response body failed: {e}")))?
                .to_bytes();
            let content_type = parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok());
            state
                .store
                .idempotency()
                .complete(&caller, &key, status.as_u16(), &body, content_type)
                .await?;
            Ok(Response::from_parts(parts, Body::from(body)))
        }
    }
}
