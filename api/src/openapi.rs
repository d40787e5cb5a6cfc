//! The OpenAPI 3.1 document, generated from the route table: each route's
//! method, path and access rule, plus what its table entry says of its
//! input and answers ([`RouteDoc`]), with the request and response types'
//! schemas derived from the types themselves (`utoipa::ToSchema`).
//!
//! Errors are documented from the catalogue (`error_codes::CODES`): every
//! route lists, per status, the codes it can answer: those its access rule
//! and its inputs can give, the ones every request can meet, and the ones
//! its table entry names. In debug builds a layer checks every error a
//! route answers against that list (see `routes::router`), so the document
//! cannot silently fall behind the code.

use std::collections::{BTreeMap, BTreeSet};

use axum::http::Method;
use serde_json::{json, Value};
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::path::{HttpMethod, Operation, Parameter, ParameterIn};
use utoipa::openapi::request_body::RequestBody;
use utoipa::openapi::schema::{
    ArrayBuilder, Object, ObjectBuilder, Schema, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    Components, Content, Info, OpenApi, OpenApiBuilder, PathItem, Paths, Ref, RefOr, Required,
    Response, Tag,
};
use utoipa::{IntoParams, ToSchema};

use crate::error_codes::CODES;
use crate::guard::Access;

/// Collects the named schemas a document refers to.
pub type Schemas = Vec<(String, RefOr<Schema>)>;

/// A type's schema: registers it (and what it refers to) by name, and
/// answers a reference to it.
pub type SchemaFn = fn(&mut Schemas) -> RefOr<Schema>;

/// What the route table says of a route beyond method, path and access.
#[derive(Clone, Default)]
pub struct RouteDoc {
    pub summary: &'static str,
    pub body: Option<SchemaFn>,
    /// The body may be left out.
    pub body_optional: bool,
    pub query: Option<fn() -> Vec<Parameter>>,
    /// The success status and its body (`None`: no body).
    pub ok: Option<(u16, Option<SchemaFn>)>,
    /// The success body's media type when it is not a described JSON type.
    pub ok_media: Option<&'static str>,
    /// Error codes of this route's own (the access rule's, the inputs' and
    /// every request's are added).
    pub errors: &'static [&'static str],
}

/// A named type's schema, registered under its name.
pub fn schema<T: ToSchema>(schemas: &mut Schemas) -> RefOr<Schema> {
    T::schemas(schemas);
    schemas.push((T::name().into_owned(), T::schema()));
    Ref::from_schema_name(T::name()).into()
}

/// A page of `T`: `{data: [T], next_cursor}`.
pub fn list<T: ToSchema>(schemas: &mut Schemas) -> RefOr<Schema> {
    let item = schema::<T>(schemas);
    page_of(item, "A cursor for the next page; absent on the last.")
}

/// All of `T` at once: `{data: [T], next_cursor: null}`.
pub fn all<T: ToSchema>(schemas: &mut Schemas) -> RefOr<Schema> {
    let item = schema::<T>(schemas);
    page_of(item, "Always null: the list is whole.")
}

fn page_of(item: RefOr<Schema>, cursor: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .property("data", ArrayBuilder::new().items(item))
        .required("data")
        .property(
            "next_cursor",
            ObjectBuilder::new()
                .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
                .description(Some(cursor)),
        )
        .into()
}

/// Query parameters of a type deriving `IntoParams`.
pub fn params<Q: IntoParams>() -> Vec<Parameter> {
    Q::into_params(|| Some(ParameterIn::Query))
}

/// The codes the access rule can answer before a handler runs.
fn access_codes(access: Access) -> &'static [&'static str] {
    const SIGNED_IN: &[&str] = &["missing_token", "invalid_token", "user_token_required"];
    match access {
        Access::Public => &[],
        Access::Throttled => &["rate_limited"],
        Access::MetricsToken => &["missing_token", "invalid_token"],
        Access::User => SIGNED_IN,
        Access::PlatformAdmin => &[
            "missing_token",
            "invalid_token",
            "user_token_required",
            "platform_admin_required",
        ],
        Access::Tenant(_) | Access::TenantOrSelf(_) | Access::TenantAny(_) => &[
            "missing_token",
            "invalid_token",
            "missing_permission",
            "tenant_not_found",
            "tenant_suspended",
            "payment_required",
        ],
    }
}

/// Codes any request can meet, whatever its route.
const EVERY_REQUEST: &[&str] = &["request_timeout", "internal_error", "service_unavailable"];

/// Codes a JSON body can give.
const BODY: &[&str] = &[
    "malformed_json",
    "unsupported_media_type",
    "payload_too_large",
    "validation_failed",
];

/// Codes a `POST` with an `Idempotency-Key` can give.
const IDEMPOTENCY: &[&str] = &[
    "invalid_idempotency_key",
    "idempotency_key_reused",
    "idempotency_in_progress",
    "secret_not_replayable",
];

/// Path parameters that are UUIDs (anything else is text).
const UUID_PARAMS: &[&str] = &["tid", "user_id", "id", "key_id", "key", "invitation_id"];

fn path_params(path: &str) -> Vec<String> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(str::to_string)
        .collect()
}

/// Every error code a route can answer.
pub fn route_codes(
    method: &Method,
    path: &str,
    access: Access,
    doc: &RouteDoc,
) -> BTreeSet<&'static str> {
    let mut codes: BTreeSet<&'static str> = EVERY_REQUEST.iter().copied().collect();
    codes.extend(access_codes(access));
    codes.extend(doc.errors);
    if doc.body.is_some() {
        codes.extend(BODY);
    }
    if doc.query.is_some() {
        codes.extend(["invalid_query", "validation_failed"]);
    }
    if !path_params(path).is_empty() {
        codes.insert("not_found");
    }
    if method == Method::POST {
        codes.extend(IDEMPOTENCY);
    }
    codes
}

pub(crate) fn status_of(code: &str) -> u16 {
    CODES
        .iter()
        .find(|(_, c, _)| *c == code)
        .map_or(500, |(status, _, _)| *status)
}

fn http_method(method: &Method) -> HttpMethod {
    match *method {
        Method::POST => HttpMethod::Post,
        Method::PUT => HttpMethod::Put,
        Method::PATCH => HttpMethod::Patch,
        Method::DELETE => HttpMethod::Delete,
        _ => HttpMethod::Get,
    }
}

fn tag_of(path: &str) -> &'static str {
    let rest = path.trim_start_matches("/v1/");
    if path == "/metrics" {
        "operations"
    } else if !path.starts_with("/v1/") {
        "health"
    } else if rest.starts_with("auth") {
        "auth"
    } else if rest.starts_with("me") {
        "me"
    } else if rest.starts_with("admin") {
        "admin"
    } else if rest.starts_with("invitations") || rest.contains("/invitations") {
        "invitations"
    } else if rest.contains("/members") || rest.contains("/roles") {
        "members and roles"
    } else if rest.contains("/api-keys") {
        "api keys"
    } else if rest.contains("/llm-keys") {
        "provider keys"
    } else {
        "tenants"
    }
}

fn security(access: Access) -> (Vec<SecurityRequirement>, Option<String>) {
    let session = || SecurityRequirement::new("session", Vec::<String>::new());
    let api_key = || SecurityRequirement::new("api_key", Vec::<String>::new());
    match access {
        Access::Public | Access::Throttled => (vec![SecurityRequirement::default()], None),
        Access::MetricsToken => (
            vec![SecurityRequirement::new(
                "metrics_token",
                Vec::<String>::new(),
            )],
            None,
        ),
        Access::User => (vec![session()], None),
        Access::PlatformAdmin => (vec![session()], Some("platform.admin".into())),
        Access::Tenant(p) => (vec![session(), api_key()], Some(p.as_str().into())),
        Access::TenantAny(ps) => (
            vec![session(), api_key()],
            Some(
                ps.iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(" or "),
            ),
        ),
        Access::TenantOrSelf(p) => (
            vec![session(), api_key()],
            Some(format!("{} (or the member themselves)", p.as_str())),
        ),
    }
}

fn error_response(codes: &[&str]) -> Response {
    let described: Vec<String> = codes.iter().map(|c| format!("`{c}`")).collect();
    let mut extensions = Extensions::default();
    extensions.insert("x-error-codes".into(), json!(codes));
    let mut response = Response::new(format!("Error: {}", described.join(", ")));
    response.content.insert(
        "application/json".into(),
        RefOr::T(Content::new(Some(Ref::from_schema_name("Error")))),
    );
    response.extensions = Some(extensions);
    response
}

fn operation(
    method: &Method,
    path: &str,
    access: Access,
    doc: &RouteDoc,
    schemas: &mut Schemas,
) -> Operation {
    let mut op = Operation::new();
    op.summary = Some(doc.summary.to_string()).filter(|s| !s.is_empty());
    op.operation_id = Some(format!(
        "{} {}",
        method.as_str().to_lowercase(),
        path.trim_start_matches('/')
    ));
    op.tags = Some(vec![tag_of(path).to_string()]);

    let (securities, permission) = security(access);
    op.security = Some(securities);
    // One extension per object: `Extensions` is a hash map, and the
    // committed document must come out the same every time.
    if let Some(p) = permission {
        let mut extensions = Extensions::default();
        extensions.insert("x-permission".into(), Value::String(p));
        op.extensions = Some(extensions);
    }
    op.description = Some(format!("Access: {}.", access.describe().replace('`', "")));

    let mut parameters: Vec<Parameter> = path_params(path)
        .into_iter()
        .map(|name| {
            let mut schema = ObjectBuilder::new().schema_type(Type::String);
            if UUID_PARAMS.contains(&name.as_str()) {
                schema = schema.format(Some(SchemaFormat::KnownFormat(
                    utoipa::openapi::KnownFormat::Uuid,
                )));
            }
            let mut p = Parameter::new(name);
            p.parameter_in = ParameterIn::Path;
            p.required = Required::True;
            p.schema = Some(RefOr::T(Schema::Object(Object::from(schema))));
            p
        })
        .collect();
    if let Some(query) = doc.query {
        parameters.extend(query());
    }
    if *method == Method::POST {
        let mut p = Parameter::new("Idempotency-Key");
        p.parameter_in = ParameterIn::Header;
        p.required = Required::False;
        p.description = Some(
            "Replays the first answer to a retry with the same key and request (docs/API.md)."
                .into(),
        );
        p.schema = Some(RefOr::T(Schema::Object(Object::from(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(255)),
        ))));
        parameters.push(p);
    }
    if !parameters.is_empty() {
        op.parameters = Some(parameters.into_iter().map(RefOr::T).collect());
    }

    if let Some(body) = doc.body {
        let mut request = RequestBody::new();
        request.required = Some(if doc.body_optional {
            Required::False
        } else {
            Required::True
        });
        request.content.insert(
            "application/json".into(),
            RefOr::T(Content::new(Some(body(schemas)))),
        );
        op.request_body = Some(RefOr::T(request));
    }

    let (status, body) = doc.ok.unwrap_or((200, None));
    let mut ok = Response::new(if doc.summary.is_empty() {
        "OK"
    } else {
        doc.summary
    });
    if let Some(body) = body {
        ok.content.insert(
            "application/json".into(),
            RefOr::T(Content::new(Some(body(schemas)))),
        );
    } else if let Some(media) = doc.ok_media {
        ok.content.insert(
            media.into(),
            RefOr::T(Content::new(Some(RefOr::T(Schema::Object(Object::from(
                ObjectBuilder::new(),
            )))))),
        );
    }
    op.responses.responses.insert(status.to_string(), ok.into());

    let mut by_status: BTreeMap<u16, Vec<&str>> = BTreeMap::new();
    for code in route_codes(method, path, access, doc) {
        by_status.entry(status_of(code)).or_default().push(code);
    }
    for (status, codes) in by_status {
        op.responses
            .responses
            .insert(status.to_string(), error_response(&codes).into());
    }
    op
}

/// The error body every failure answers with.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Error {
    error: ErrorDetail,
}

/// What went wrong.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorDetail {
    /// A stable code from the catalogue (docs/API.md).
    code: String,
    /// For people; may change.
    message: String,
    /// Depends on the code (docs/API.md); on a 5xx, `request_id`.
    #[schema(value_type = Option<Object>)]
    details: Option<Value>,
}

/// One route as the document describes it: the route table hands these
/// in (this module knows nothing of the table itself).
pub struct Entry<'a> {
    pub method: &'a Method,
    pub path: &'static str,
    pub access: Access,
    pub doc: &'a RouteDoc,
}

/// The whole document, of these routes.
pub fn document(routes: &[Entry<'_>]) -> OpenApi {
    let mut schemas: Schemas = Vec::new();
    schema::<Error>(&mut schemas);
    let mut paths = Paths::new();
    for route in routes {
        let op = operation(
            route.method,
            route.path,
            route.access,
            route.doc,
            &mut schemas,
        );
        let method = http_method(route.method);
        match paths.paths.get_mut(route.path) {
            Some(item) => item.merge_operations(PathItem::new(method, op)),
            None => {
                paths
                    .paths
                    .insert(route.path.to_string(), PathItem::new(method, op));
            }
        }
    }
    let mut components = Components::new();
    for (name, schema) in schemas {
        components.schemas.insert(name, schema);
    }
    let mut session = Http::new(HttpAuthScheme::Bearer);
    session.bearer_format = Some("JWT".into());
    session.description = Some(
        "An access token from `POST /v1/auth/login` (or an invitation accept); it names its session, which must be live."
            .into(),
    );
    let mut api_key = Http::new(HttpAuthScheme::Bearer);
    api_key.bearer_format = Some("tnt_…".into());
    api_key.description =
        Some("A tenant API key, for tenant routes only, with the permissions it carries.".into());
    let mut metrics = Http::new(HttpAuthScheme::Bearer);
    metrics.description =
        Some("`TENANTRY_METRICS_TOKEN` (or the one kept in the data directory).".into());
    components.security_schemes.insert(
        "metrics_token".into(),
        RefOr::T(SecurityScheme::Http(metrics)),
    );
    components
        .security_schemes
        .insert("session".into(), RefOr::T(SecurityScheme::Http(session)));
    components
        .security_schemes
        .insert("api_key".into(), RefOr::T(SecurityScheme::Http(api_key)));

    let mut info = Info::new("Tenantry", env!("CARGO_PKG_VERSION"));
    info.description = Some(
        "The multi-tenant control plane for SaaS platforms that sell AI agents. \
         Conventions, authentication, paging, errors and idempotency: docs/API.md."
            .into(),
    );
    let tags = [
        "health",
        "operations",
        "auth",
        "me",
        "tenants",
        "members and roles",
        "invitations",
        "api keys",
        "provider keys",
        "admin",
    ]
    .into_iter()
    .map(Tag::new)
    .collect::<Vec<_>>();
    OpenApiBuilder::new()
        .info(info)
        .paths(paths)
        .components(Some(components))
        .tags(Some(tags))
        .build()
}

/// The document as the server serves it and `docs/openapi.json` holds it.
pub fn document_json(routes: &[Entry<'_>]) -> String {
    let mut text = serde_json::to_string_pretty(&document(routes)).unwrap_or_else(|_| "{}".into());
    text.push('\n');
    text
}

/// The endpoint list of `docs/API.md`, generated from the route table:
/// method and path, who may call it, what it does, how it succeeds.
pub fn endpoint_list(routes: &[Entry<'_>]) -> String {
    let mut out =
        String::from("| endpoint | access | what it does | success |\n| --- | --- | --- | --- |\n");
    for route in routes {
        let ok = match route.doc.ok {
            Some((status, _)) => status,
            None => 200,
        };
        out.push_str(&format!(
            "| `{} {}` | {} | {} | {} |\n",
            route.method,
            route.path,
            route.access.describe(),
            route.doc.summary,
            ok
        ));
    }
    out
}
