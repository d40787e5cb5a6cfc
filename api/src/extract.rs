//! Extractors that turn every rejection into the project's error body, and
//! the request context that becomes event metadata.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tenantry_domain::values::{is_forbidden_control, ValueError};
use tenantry_domain::{Actor, EventMetadata};
use uuid::Uuid;

use crate::error::{ApiError, Validation};
use crate::request_id::RequestId;
use crate::state::AppState;

/// The longest string (or object key) any body or query may carry, in
/// bytes. The largest legitimate values (tenant settings, at most 16 KiB in
/// all; a provider key) fit; anything longer is refused at the boundary
/// before it can reach a handler, a log line or an event.
pub const MAX_STRING_BYTES: usize = 16 * 1024;

/// The one rule for all text input, applied before any handler sees it:
/// no string (value or object key) may hold a control character other than
/// tab and newline (`values::is_forbidden_control`: NUL, CR, ESC, DEL, C1…)
/// or be longer than [`MAX_STRING_BYTES`]. Each offending field is named.
/// Stricter per-field rules (names, reasons) live in the domain's value types.
#[derive(Default)]
struct TextCheck {
    validation: Validation,
}

/// How `text` breaks the text rule, if it does.
fn text_rule(field: &str, text: &str) -> Option<ValueError> {
    if text.len() > MAX_STRING_BYTES {
        Some(ValueError::new(
            "too_long",
            format!("{field} must be at most {MAX_STRING_BYTES} bytes"),
        ))
    } else if text.chars().any(is_forbidden_control) {
        Some(ValueError::new(
            "invalid_characters",
            format!("{field} must not contain control characters other than tab and newline"),
        ))
    } else {
        None
    }
}

impl TextCheck {
    /// How many fields one answer names at most.
    const MAX_NAMED: usize = 20;

    fn text(&mut self, field: &str, text: &str) {
        if self.validation.len() >= Self::MAX_NAMED {
            return;
        }
        if let Some(error) = text_rule(field, text) {
            self.validation.check::<()>(field, Err(error));
        }
    }

    fn json(&mut self, path: &str, value: &Value) {
        match value {
            Value::String(s) => self.text(path, s),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.json(&format!("{path}[{i}]"), item);
                }
            }
            Value::Object(map) => {
                for (key, item) in map {
                    let field = join_field(path, key);
                    self.text(&field, key);
                    self.json(&field, item);
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    fn finish(self) -> Result<(), ApiError> {
        self.validation.finish()
    }
}

/// `parent.key`, with a key that is itself hostile shown only in part and
/// with its control characters replaced, so the answer echoes no input.
fn join_field(parent: &str, key: &str) -> String {
    let mut shown: String = key
        .chars()
        .take(64)
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect();
    if key.chars().nth(64).is_some() {
        shown.push('…');
    }
    if parent.is_empty() {
        shown
    } else {
        format!("{parent}.{shown}")
    }
}

/// A JSON body: 400 when it is not JSON, 415 without a JSON content type,
/// 413 over the body limit, 422 when a string breaks the text rule
/// ([`TextCheck`]) or the body does not fit the shape.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let value = match axum::Json::<Value>::from_request(req, state).await {
            Ok(axum::Json(v)) => v,
            Err(JsonRejection::MissingJsonContentType(_)) => {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "send the body as JSON with content-type: application/json",
                ))
            }
            Err(JsonRejection::BytesRejection(e))
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "the body is larger than 1 MiB",
                ))
            }
            Err(e) => {
                return Err(ApiError::bad_request(
                    "malformed_json",
                    format!("the body is not valid JSON: {}", e.body_text()),
                ))
            }
        };
        checked(value).map(Self)
    }
}

/// The text rule, then the shape: what every JSON body goes through.
fn checked<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    let mut check = TextCheck::default();
    check.json("", &value);
    check.finish()?;
    serde_json::from_value(value).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            format!("the body does not have the expected fields: {e}"),
        )
    })
}

/// A JSON body a route reads itself (one that may be empty, say), under
/// the same rules as [`Json`]: 400 when it is not JSON, 422 for the text
/// rule or the shape.
pub fn json_from_bytes<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request("malformed_json", format!("the body is not valid JSON: {e}"))
    })?;
    checked(value)
}

/// Query parameters: 422 naming a parameter that breaks the text rule
/// ([`TextCheck`]) or does not parse.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let raw = parts.uri.query().unwrap_or_default();
        let mut check = TextCheck::default();
        for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
            let field = join_field("", &key);
            check.text(&field, &key);
            check.text(&field, &value);
        }
        check.finish()?;
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

/// The path parameter `name` as text: `None` when the path has no such
/// parameter, when it does not decode as UTF-8, or when it breaks the text
/// rule (such a segment names no resource). Every caller answers 404 then.
async fn path_text(parts: &mut Parts, name: &str) -> Option<String> {
    let params = axum::extract::RawPathParams::from_request_parts(parts, &())
        .await
        .ok()?;
    let (_, value) = params.iter().find(|(k, _)| *k == name)?;
    text_rule(name, value).is_none().then(|| value.to_string())
}

/// Path parameters by name: each extractor reads the parameter its route
/// template names (never "whichever comes last"), and anything that is not
/// a valid value names no resource: 404.
macro_rules! path_param {
    ($(#[$doc:meta])* $name:ident($ty:ty) = $param:literal, $code:literal, $message:literal, $parse:expr) => {
        $(#[$doc])*
        pub struct $name(pub $ty);

        impl<S: Send + Sync> FromRequestParts<S> for $name {
            type Rejection = ApiError;

            async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
                let parse: fn(String) -> Option<$ty> = $parse;
                path_text(parts, $param)
                    .await
                    .and_then(parse)
                    .map(Self)
                    .ok_or_else(|| ApiError::not_found($code, $message))
            }
        }
    };
}

fn uuid(raw: String) -> Option<Uuid> {
    Uuid::parse_str(&raw).ok()
}

path_param!(
    /// `{tid}` on a platform-admin tenant route (tenant-access routes take
    /// the tenant from the guard's `TenantScope` instead).
    TenantIdPath(Uuid) = "tid", "not_found", "no such resource", uuid
);
path_param!(
    /// `{user_id}`: a member of the path's tenant.
    MemberPath(Uuid) = "user_id", "not_found", "no such resource", uuid
);
path_param!(
    /// `{id}`: a user, on the platform's user routes.
    UserPath(Uuid) = "id", "not_found", "no such resource", uuid
);
path_param!(
    /// `{key_id}`: a tenant API key.
    ApiKeyPath(Uuid) = "key_id", "not_found", "no such resource", uuid
);
path_param!(
    /// `{key}`: a provider key's id.
    LlmKeyPath(Uuid) = "key", "not_found", "no such resource", uuid
);
path_param!(
    /// `{invitation_id}`.
    InvitationPath(Uuid) = "invitation_id", "not_found", "no such resource", uuid
);
path_param!(
    /// `{token}`: an invitation link's token.
    TokenPath(String) = "token", "not_found", "no such resource", Some
);
path_param!(
    /// `{provider}`: a provider's name.
    ProviderPath(String) = "provider", "not_found", "no such resource", Some
);
path_param!(
    /// `{agent_id}`: an agent of the path's tenant.
    AgentPath(Uuid) = "agent_id", "agent_not_found", "no such agent", uuid
);
path_param!(
    /// `{reservation_id}`: a credit reservation's id (the client's).
    ReservationPath(String) = "reservation_id", "not_found", "no such resource", Some
);
path_param!(
    /// `{plan}`: a billing plan's key.
    PlanPath(String) = "plan", "plan_not_found", "no such plan", Some
);
path_param!(
    /// `{file}`: a file of the documentation page.
    DocsFilePath(String) = "file", "not_found", "no such resource", Some
);
path_param!(
    /// `{role}`: a role name.
    RolePath(String) = "role", "role_not_found", "no such role", Some
);
path_param!(
    /// `{approval_id}`: an approval request of the path's tenant.
    ApprovalPath(Uuid) = "approval_id", "approval_not_found", "no such approval request", uuid
);
path_param!(
    /// `{policy}`: an approval policy's name.
    PolicyPath(String) = "policy", "approval_policy_not_found", "no such approval policy", Some
);

/// The client's address, as an extractor.
pub struct ClientIp(pub std::net::IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(crate::throttle::client_ip(&parts.extensions)))
    }
}

/// Where a request came from, for event metadata.
pub struct Context {
    pub request_id: String,
    /// The platform admin behind an impersonation, recorded on every event.
    pub impersonator: Option<Actor>,
    /// When the request arrived, by the application's clock: the events'
    /// `occurred_at`, and the `now` of the decisions that ask for one.
    pub now: chrono::DateTime<chrono::Utc>,
}

impl Context {
    pub fn metadata(&self, tenant_id: Uuid, actor: Actor) -> EventMetadata {
        let mut meta =
            EventMetadata::new(tenant_id, actor, Some(self.request_id.clone()), self.now);
        meta.impersonator = self.impersonator.clone();
        meta
    }
}

impl FromRequestParts<AppState> for Context {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
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
            now: state.now(),
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
        self.decode(|bytes| Uuid::from_slice(bytes).ok())
    }

    /// The number the cursor stands for, on lists paged by a sequence
    /// number rather than an id ([`number_cursor`] gave it out).
    pub fn after_number(&self) -> Result<Option<i64>, ApiError> {
        self.decode(|bytes| <[u8; 8]>::try_from(bytes).ok().map(i64::from_be_bytes))
    }

    fn decode<T>(&self, read: impl FnOnce(&[u8]) -> Option<T>) -> Result<Option<T>, ApiError> {
        let Some(cursor) = &self.cursor else {
            return Ok(None);
        };
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(cursor)
            .ok()
            .and_then(|bytes| read(&bytes))
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

/// The cursor for a list paged by a sequence number.
pub fn number_cursor(n: i64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(n.to_be_bytes())
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
