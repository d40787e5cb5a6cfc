//! The one error body of the API:
//! `{"error": {"code": "...", "message": "...", "details": {...}}}`.
//!
//! Domain errors pick their status by kind; infrastructure errors are logged
//! with their cause chain and answered as an opaque 500 naming the request id.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tenantry_domain::values::ValueError;
use tenantry_domain::{ClaimScope, DomainError, ErrorKind};
use tenantry_store::{CommandError, Refusal};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
    /// What went wrong inside, for the log only; never sent.
    pub internal: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        debug_assert!(
            crate::error_codes::is_known(status.as_u16(), code),
            "error code {code} ({status}) is not in api/src/error_codes.rs"
        );
        Self {
            status,
            code,
            message: message.into(),
            details: None,
            internal: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn concurrent_update() -> Self {
        Self::conflict(
            "concurrent_update",
            "the resource was changed by another request at the same time; retry",
        )
    }

    /// 422 with one field error.
    pub fn invalid_field(field: &str, error: ValueError) -> Self {
        Validation::default().field(field, error).into_error()
    }

    /// An unexpected failure: logged in full, answered opaquely.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "an internal error occurred",
        );
        e.internal = Some(cause.to_string());
        e
    }

    /// The database cannot be reached: 503 with `Retry-After`. Not logged
    /// per request; the response carries [`DatabaseUnavailable`] so the
    /// outage is logged once (`outage::Outages`).
    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "the service cannot reach its database; retry shortly",
        )
        .with_details(json!({ "retry_after_seconds": crate::outage::RETRY_AFTER_SECONDS }));
        e.internal = Some(cause.to_string());
        e
    }

    fn is_unavailable(&self) -> bool {
        self.status == StatusCode::SERVICE_UNAVAILABLE && self.code == "service_unavailable"
    }

    pub fn from_domain<E: DomainError>(err: E) -> Self {
        let status = match err.kind() {
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Gone => StatusCode::GONE,
            ErrorKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        };
        let details = err.details();
        let mut e = Self::new(status, err.code(), err.to_string());
        e.details = details;
        e
    }

    /// The JSON body for this error.
    pub fn body(&self, request_id: Option<&str>) -> Value {
        let mut details = self.details.clone();
        if self.status.is_server_error() {
            if let Some(id) = request_id {
                match details.as_mut().and_then(Value::as_object_mut) {
                    Some(map) => {
                        map.insert("request_id".into(), json!(id));
                    }
                    None => details = Some(json!({ "request_id": id })),
                }
            }
        }
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(d) = details {
            error["details"] = d;
        }
        json!({ "error": error })
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let unavailable = match &self.internal {
            Some(cause) if self.is_unavailable() => Some(DatabaseUnavailable(cause.clone())),
            Some(cause) => {
                tracing::error!(code = self.code, error = %cause, "request failed");
                None
            }
            None => None,
        };
        let request_id = crate::request_id::current();
        let body = self.body(request_id.as_deref()).to_string();
        let mut response = (self.status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(retry) = self
            .details
            .as_ref()
            .and_then(|d| d.get("retry_after_seconds"))
        {
            if let Ok(v) = HeaderValue::from_str(&retry.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if let Some(marker) = unavailable {
            response.extensions_mut().insert(marker);
        }
        response.extensions_mut().insert(ErrorCode(self.code));
        response
    }
}

/// On every error response: its code, for the layer that checks a route
/// answers only the codes its documentation lists.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

/// On a response refused because the database cannot be reached: the
/// cause, for the one log line of the outage.
#[derive(Debug, Clone)]
pub struct DatabaseUnavailable(pub String);

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        let mut chain = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(s) = source {
            chain.push_str(": ");
            chain.push_str(&s.to_string());
            source = s.source();
        }
        if crate::outage::is_unreachable(&err) {
            Self::unavailable(chain)
        } else {
            Self::internal(chain)
        }
    }
}

impl From<crate::credentials::CredentialError> for ApiError {
    fn from(err: crate::credentials::CredentialError) -> Self {
        Self::internal(err)
    }
}

impl From<tenantry_projections::ProjectionError> for ApiError {
    fn from(err: tenantry_projections::ProjectionError) -> Self {
        match err {
            tenantry_projections::ProjectionError::Database(e) => e.into(),
            other => Self::internal(other),
        }
    }
}

/// Collects field errors for one 422 answer.
#[derive(Debug, Default)]
pub struct Validation {
    fields: Vec<Value>,
}

impl Validation {
    pub fn field(mut self, field: &str, error: ValueError) -> Self {
        self.check::<()>(field, Err(error));
        self
    }

    /// How many fields failed so far.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Record the error of a parse, keeping the parsed value when it succeeded.
    pub fn check<T>(&mut self, field: &str, result: Result<T, ValueError>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                debug_assert!(
                    crate::error_codes::is_known_field_code(e.code),
                    "field code {} is not in api/src/error_codes.rs",
                    e.code
                );
                self.fields
                    .push(json!({ "field": field, "code": e.code, "message": e.message }));
                None
            }
        }
    }

    pub fn into_error(self) -> ApiError {
        let first = self
            .fields
            .first()
            .and_then(|f| f.get("message"))
            .and_then(Value::as_str)
            .unwrap_or("the request is invalid")
            .to_string();
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", first)
            .with_details(json!({ "fields": self.fields }))
    }

    /// `Ok(())` when no field failed.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self.into_error())
        }
    }
}

/// What a refused command means to a client.
impl<E: tenantry_domain::DomainError> From<CommandError<E>> for ApiError {
    fn from(err: CommandError<E>) -> Self {
        match err {
            CommandError::Domain(e) => ApiError::from_domain(e),
            CommandError::Claimed(ClaimScope::UserEmail) => {
                ApiError::conflict("email_taken", "a user with this email already exists")
            }
            CommandError::Claimed(ClaimScope::TenantSlug) => {
                ApiError::conflict("slug_taken", "a tenant with this slug already exists")
            }
            CommandError::Claimed(ClaimScope::TenantProvider) => ApiError::conflict(
                "duplicate_provider_key",
                "the tenant already has a key for this provider; replace it with PUT",
            ),
            CommandError::Claimed(ClaimScope::StripeEvent) => ApiError::conflict(
                "stripe_event_applied",
                "this Stripe event was applied already",
            ),
            CommandError::Claimed(ClaimScope::PlanKey) => {
                ApiError::conflict("plan_key_taken", "a plan with this key already exists")
            }
            // The agents service looks for another slot; only a create that
            // lost every try meets this.
            CommandError::Claimed(ClaimScope::AgentSlot) => ApiError::concurrent_update(),
            CommandError::Concurrency => ApiError::concurrent_update(),
            CommandError::Refused(Refusal::RefreshTokenReused) => ApiError::unauthorized(
                "refresh_token_reused",
                "this refresh token was already used",
            ),
            // The usage service looks again; only a batch that lost every
            // try meets this.
            CommandError::Refused(Refusal::UsageIdTaken) => ApiError::concurrent_update(),
            CommandError::Codec(e) => ApiError::internal(e),
            CommandError::Database(e) => e.into(),
        }
    }
}
