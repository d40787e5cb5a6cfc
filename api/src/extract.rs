//! Extractors that turn every rejection into the project's error body, and
//! the request context that becomes event metadata.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use base64::Engine;
use serde::de::DeserializeOwned;
use tenantry_domain::{Actor, EventMetadata};
use uuid::Uuid;

use crate::error::ApiError;
use crate::middleware::RequestId;
use crate::state::AppState;

/// A JSON body: 400 when it is not JSON, 422 when it does not fit the shape.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                format!(
                    "the body does not have the expected fields: {}",
                    e.body_text()
                ),
            )),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with content-type: application/json",
            )),
            Err(JsonRejection::BytesRejection(e))
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "the body is larger than 1 MiB",
                ))
            }
            Err(e) => Err(ApiError::bad_request(
                "malformed_json",
                format!("the body is not valid JSON: {}", e.body_text()),
            )),
        }
    }
}

/// Query parameters: 422 naming the parameter that does not parse.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| Self(v))
            .map_err(|e: QueryRejection| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_query",
                    e.body_text(),
                )
            })
    }
}

/// The id in the path's last segment (`/tenants/{tid}/members/{user_id}`
/// gives the user id); anything but a UUID is 404, as no such resource exists.
pub struct IdPath(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let PathParam(last) = PathParam::from_request_parts(parts, state).await?;
        Uuid::parse_str(&last)
            .map(Self)
            .map_err(|_| ApiError::not_found("not_found", "no such resource"))
    }
}

/// The path's last parameter as text (a provider name, say).
pub struct PathParam(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let not_found = || ApiError::not_found("not_found", "no such resource");
        let params = axum::extract::RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| not_found())?;
        let (_, last) = params.iter().last().ok_or_else(not_found)?;
        Ok(Self(last.to_string()))
    }
}

/// A role name from the path's `{role}` segment.
pub struct RolePath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for RolePath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let params = axum::extract::RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::not_found("role_not_found", "no such role"))?;
        params
            .iter()
            .find(|(k, _)| *k == "role")
            .map(|(_, v)| Self(v.to_string()))
            .ok_or_else(|| ApiError::not_found("role_not_found", "no such role"))
    }
}

/// Where a request came from, for event metadata.
pub struct Context {
    pub request_id: String,
    /// The platform admin behind an impersonation, recorded on every event.
    pub impersonator: Option<Actor>,
}

impl Context {
    pub fn metadata(&self, tenant_id: Uuid, actor: Actor) -> EventMetadata {
        let mut meta = EventMetadata::new(
            tenant_id,
            actor,
            Some(self.request_id.clone()),
            chrono::Utc::now(),
        );
        meta.impersonator = self.impersonator.clone();
        meta
    }
}

impl FromRequestParts<AppState> for Context {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let request_id = parts
            .extensions
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_else(|| Uuid::now_v7().to_string());
        let impersonator = parts
            .extensions
            .get::<crate::guard::Principal>()
            .and_then(crate::guard::Principal::impersonator);
        Ok(Self {
            request_id,
            impersonator,
        })
    }
}

/// `limit` and `cursor` of a list request. (Not a `#[serde(flatten)]`
/// field: flattening makes query-string numbers fail to parse.)
#[derive(Debug, Default)]
pub struct PageParams {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;

impl PageParams {
    pub fn new(limit: Option<i64>, cursor: Option<String>) -> Self {
        Self { limit, cursor }
    }

    pub fn limit(&self) -> Result<i64, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(_) => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_limit",
                format!("limit must be between 1 and {MAX_LIMIT}"),
            )),
        }
    }

    /// The id the cursor stands for.
    pub fn after(&self) -> Result<Option<Uuid>, ApiError> {
        let Some(cursor) = &self.cursor else {
            return Ok(None);
        };
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(cursor)
            .ok()
            .and_then(|bytes| Uuid::from_slice(&bytes).ok())
            .map(Some)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_cursor",
                    "the cursor is not one this API gave out",
                )
            })
    }
}

/// The body of every list: `{"data": [...], "next_cursor": ... | null}`.
#[derive(Debug, serde::Serialize)]
pub struct ListOut<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> ListOut<T> {
    /// A keyset page of read-model rows, each turned into its HTTP shape.
    pub fn from_page<R>(
        page: tenantry_projections::page::Page<R>,
        out: impl FnMut(R) -> T,
    ) -> Self {
        Self {
            data: page.items.into_iter().map(out).collect(),
            next_cursor: page.next_after.map(cursor_for),
        }
    }
}

pub fn cursor_for(id: Uuid) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes())
}

/// A `status` filter: `None` when absent, 422 `invalid_status` naming the
/// allowed values when it is not one of `all` (compared by `as_str`).
pub fn status_filter<T: Copy>(
    raw: Option<&str>,
    all: &[T],
    as_str: fn(T) -> &'static str,
) -> Result<Option<T>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    all.iter()
        .copied()
        .find(|s| as_str(*s) == raw)
        .map(Some)
        .ok_or_else(|| {
            let allowed: Vec<&str> = all.iter().map(|s| as_str(*s)).collect();
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_status",
                format!("status must be one of: {}", allowed.join(", ")),
            )
        })
}
