//! Authorization, enforced from the route table: every route declares an
//! [`Access`], and the router wraps each handler in [`guard`], which
//! authenticates the bearer (a person's access token or a tenant API key),
//! checks the declared access against the tenant named by the path, and
//! hands the handler what it established ([`Principal`], [`TenantScope`]).
//! A handler cannot forget the tenant check: it never runs without it.

use std::time::Duration;

use axum::extract::{FromRequestParts, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::json;
use tenantry_domain::access::{
    platform_admin_permissions, role_permissions, Permission, PermissionSet,
};
use tenantry_domain::tenant::TenantStatus;
use tenantry_domain::Actor;
use uuid::Uuid;

use crate::credentials::{bearer, token_hash, Caller, API_KEY_PREFIX};
use crate::error::ApiError;
use crate::state::AppState;
use tenantry_store::sessions::TenantAccess;

/// What a route demands of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without credentials.
    Public,
    /// Anyone, without credentials, at most `TENANTRY_PUBLIC_RATE_LIMIT`
    /// requests a minute per client address (429 with `Retry-After`):
    /// routes whose path holds a secret someone might try to guess.
    Throttled,
    /// A signed-in person (API keys are refused: they belong to tenant routes).
    User,
    /// A platform admin.
    PlatformAdmin,
    /// The permission in the tenant named by the path's `{tid}`.
    Tenant(Permission),
    /// As `Tenant`, or the member named by the path's `{user_id}` acting on
    /// themselves (leaving a tenant).
    TenantOrSelf(Permission),
    /// Any one of the permissions in the path's `{tid}` (reading an
    /// approval request: whoever may ask or decide).
    TenantAny(&'static [Permission]),
    /// The metrics scraper: the bearer token `TENANTRY_METRICS_TOKEN`, and
    /// nobody else (no session, no API key).
    MetricsToken,
}

impl Access {
    /// How the route table documents this access.
    pub fn describe(self) -> String {
        match self {
            Self::Public => "public".into(),
            Self::Throttled => "public, rate limited".into(),
            Self::User => "signed-in user".into(),
            Self::PlatformAdmin => "platform admin".into(),
            Self::Tenant(p) => format!("`{p}`"),
            Self::TenantOrSelf(p) => format!("`{p}` or self"),
            Self::TenantAny(ps) => ps
                .iter()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(" or "),
            Self::MetricsToken => "the metrics token".into(),
        }
    }
}

/// A tenant API key that authenticated a request.
#[derive(Debug, Clone)]
pub struct KeyCaller {
    pub key_id: Uuid,
    pub tenant_id: Uuid,
    pub permissions: PermissionSet,
}

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Principal {
    User(Caller),
    ApiKey(KeyCaller),
}

impl Principal {
    pub fn actor(&self) -> Actor {
        match self {
            Self::User(c) => c.actor(),
            Self::ApiKey(k) => Actor::ApiKey { id: k.key_id },
        }
    }

    pub fn impersonator(&self) -> Option<Actor> {
        match self {
            Self::User(c) => c.impersonator.map(|id| Actor::User { id }),
            Self::ApiKey(_) => None,
        }
    }

    pub fn is_platform_admin(&self) -> bool {
        matches!(self, Self::User(c) if c.is_platform_admin)
    }
}

/// The caller's standing in the tenant named by the path.
#[derive(Debug, Clone)]
pub struct TenantScope {
    pub tenant_id: Uuid,
    pub principal: Principal,
    pub permissions: PermissionSet,
}

impl TenantScope {
    /// The authority the Tenant aggregate checks roster changes against.
    pub fn authority(&self) -> tenantry_domain::tenant::Authority {
        use tenantry_domain::tenant::Authority;
        match &self.principal {
            Principal::User(c) if c.is_platform_admin => Authority::Platform,
            Principal::User(c) => Authority::Member(c.user_id.into()),
            Principal::ApiKey(k) => Authority::ApiKey(k.permissions),
        }
    }

    pub fn has(&self, p: Permission) -> bool {
        self.permissions.contains(p)
    }

    pub fn user_id(&self) -> Option<Uuid> {
        match &self.principal {
            Principal::User(c) => Some(c.user_id),
            Principal::ApiKey(_) => None,
        }
    }
}

#[derive(Clone)]
pub struct GuardState {
    pub app: AppState,
    pub access: Access,
    /// The route's path template (billing routes stay open to a tenant
    /// that must pay).
    pub path: &'static str,
}

/// The middleware every route runs behind.
pub async fn guard(
    State(GuardState { app, access, path }): State<GuardState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if access == Access::Public {
        return Ok(next.run(req).await);
    }
    if access == Access::Throttled {
        throttle(&app, &req)?;
        return Ok(next.run(req).await);
    }
    if access == Access::MetricsToken {
        let (parts, body) = req.into_parts();
        check_metrics_token(&app, &parts)?;
        return Ok(next.run(Request::from_parts(parts, body)).await);
    }
    let (mut parts, body) = req.into_parts();
    let principal = match access {
        // Answered above; kept here so the match stays exhaustive.
        Access::Public | Access::Throttled | Access::MetricsToken => {
            return Ok(next.run(Request::from_parts(parts, body)).await)
        }
        Access::User => match authenticate(&app, &parts).await? {
            Principal::ApiKey(_) => {
                return Err(ApiError::forbidden(
                    "user_token_required",
                    "this endpoint needs a person's access token; API keys work on their tenant's routes",
                ))
            }
            user => user,
        },
        Access::PlatformAdmin => {
            let principal = authenticate(&app, &parts).await?;
            if !principal.is_platform_admin() {
                return Err(platform_admin_required());
            }
            principal
        }
        Access::Tenant(_) | Access::TenantOrSelf(_) | Access::TenantAny(_) => {
            // A segment that does not decode (invalid UTF-8 after percent-
            // decoding) names no tenant: 404 below, never an error.
            let params = RawPathParams::from_request_parts(&mut parts, &()).await.ok();
            let param = |name: &str| {
                params
                    .as_ref()?
                    .iter()
                    .find(|(k, _)| *k == name)
                    .and_then(|(_, v)| Uuid::parse_str(v).ok())
            };
            let Some(tenant_id) = param("tid") else {
                // Credentials are still checked first: 401 before 404.
                authenticate(&app, &parts).await?;
                return Err(tenant_not_found());
            };
            let self_id = param("user_id");
            let scope = tenant_scope(&app, &parts.headers, &parts.method, path, access, tenant_id, self_id).await?;
            let principal = scope.principal.clone();
            parts.extensions.insert(scope);
            principal
        }
    };
    record_actor(&principal);
    parts.extensions.insert(principal);
    Ok(next.run(Request::from_parts(parts, body)).await)
}

/// The caller's standing in the tenant, checked against the route's
/// access: who they are, that the tenant is visible to them and open to
/// this method, and that they hold what the route needs (or act on
/// themselves, `self_id`, where the route allows it).
async fn tenant_scope(
    app: &AppState,
    headers: &HeaderMap,
    method: &Method,
    path: &'static str,
    access: Access,
    tenant_id: Uuid,
    self_id: Option<Uuid>,
) -> Result<TenantScope, ApiError> {
    let (principal, standing) = authenticate_in(app, headers, Some(tenant_id)).await?;
    let acting_on_self = matches!(access, Access::TenantOrSelf(_))
        && matches!(&principal, Principal::User(c) if self_id == Some(c.user_id));
    let scope = authorize(
        tenant_id,
        principal,
        standing,
        method,
        path,
        app.now(),
        app.config.billing_grace,
    )?;
    let needed: &[Permission] = match &access {
        Access::Tenant(p) | Access::TenantOrSelf(p) => std::slice::from_ref(p),
        Access::TenantAny(ps) => ps,
        _ => &[],
    };
    if !needed.iter().any(|p| scope.has(*p)) && !acting_on_self {
        return Err(missing_permissions(needed));
    }
    Ok(scope)
}

/// Whether the caller of a response that lasts (an event stream) may still
/// have it: asked again and again with the request's own headers while it
/// lasts. An error says why not: the session or key was revoked or expired
/// (401), the tenant is no longer visible to them (404), or they no longer
/// hold the permission (403).
pub async fn still_allowed(
    app: &AppState,
    headers: &HeaderMap,
    path: &'static str,
    access: Access,
    tenant_id: Uuid,
) -> Result<(), ApiError> {
    tenant_scope(app, headers, &Method::GET, path, access, tenant_id, None)
        .await
        .map(drop)
}

/// The bearer token of the request. An Authorization header that is there
/// but holds no readable bearer token (another scheme, bytes that are not
/// text) is an invalid credential, not a missing one.
fn presented_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    bearer(headers).ok_or_else(|| {
        if headers.contains_key(axum::http::header::AUTHORIZATION) {
            invalid_token()
        } else {
            ApiError::unauthorized("missing_token", "this endpoint needs a bearer token")
        }
    })
}

/// The metrics token, compared in constant time; anything else is 401.
fn check_metrics_token(app: &AppState, parts: &Parts) -> Result<(), ApiError> {
    use secrecy::ExposeSecret;
    use subtle::ConstantTimeEq;
    let token = presented_token(&parts.headers)?;
    let expected = app.config.metrics_token.expose_secret().as_bytes();
    if bool::from(token.as_bytes().ct_eq(expected)) {
        Ok(())
    } else {
        Err(invalid_token())
    }
}

/// 429 with `Retry-After` once the client address has used its allowance.
fn throttle(app: &AppState, req: &Request) -> Result<(), ApiError> {
    crate::throttle::check_address(
        &app.public_limiter,
        crate::throttle::client_ip(req.extensions()),
    )
}

fn record_actor(principal: &Principal) {
    let span = tracing::Span::current();
    span.record("actor", principal.actor().label());
    if let Some(imp) = principal.impersonator() {
        span.record("impersonator", imp.label());
    }
}

pub fn tenant_not_found() -> ApiError {
    ApiError::not_found("tenant_not_found", "tenant not found")
}

pub fn platform_admin_required() -> ApiError {
    ApiError::forbidden(
        "platform_admin_required",
        "this endpoint needs the platform admin permission",
    )
    .with_details(json!({ "permission": "platform.admin" }))
}

/// 403 naming what the route needs: the permission, or any one of several.
fn missing_permissions(needed: &[Permission]) -> ApiError {
    match needed {
        [p] => missing_permission(*p),
        _ => {
            let names: Vec<&str> = needed.iter().map(|p| p.as_str()).collect();
            ApiError::forbidden(
                "missing_permission",
                format!(
                    "this needs one of the permissions {} in this tenant",
                    names.join(", ")
                ),
            )
            .with_details(json!({ "permission_any_of": names }))
        }
    }
}

pub fn missing_permission(p: Permission) -> ApiError {
    ApiError::forbidden(
        "missing_permission",
        format!("this needs the {p} permission in this tenant"),
    )
    .with_details(json!({ "permission": p.as_str() }))
}

fn invalid_token() -> ApiError {
    ApiError::unauthorized("invalid_token", "the bearer token is invalid or expired")
}

/// Establish who is calling from the bearer token.
pub async fn authenticate(app: &AppState, parts: &Parts) -> Result<Principal, ApiError> {
    authenticate_in(app, &parts.headers, None)
        .await
        .map(|(principal, _)| principal)
}

/// Who is calling and, on a tenant route, their standing in that tenant,
/// read in the same query as their session or key.
async fn authenticate_in(
    app: &AppState,
    headers: &HeaderMap,
    tenant_id: Option<Uuid>,
) -> Result<(Principal, TenantAccess), ApiError> {
    let token = presented_token(headers)?;
    if token.starts_with(API_KEY_PREFIX) {
        let (key, standing) = authenticate_key(app, token).await?;
        return Ok((Principal::ApiKey(key), standing));
    }
    let claims = app.jwt.verify(token).ok_or_else(invalid_token)?;
    let session = match app
        .auth_cache
        .session(claims.sid, tenant_id, chrono::Utc::now())
    {
        Some(session) => session,
        None => {
            let ticket = app.auth_cache.ticket();
            let session = app
                .store
                .sessions()
                .live_session(claims.sid, claims.sub, tenant_id)
                .await?
                .ok_or_else(invalid_token)?;
            app.auth_cache
                .put_session(ticket, claims.sid, claims.sub, tenant_id, session.clone());
            session
        }
    };
    let caller = Caller {
        user_id: claims.sub,
        session_id: claims.sid,
        is_platform_admin: session.is_platform_admin && session.impersonator_id.is_none(),
        impersonator: session.impersonator_id,
    };
    Ok((Principal::User(caller), session.tenant))
}

/// How stale `last_used_at` may get before a request refreshes it.
const LAST_USED_RESOLUTION: Duration = Duration::from_secs(60);

/// A live key, and its tenant's status.
async fn authenticate_key(
    app: &AppState,
    token: &str,
) -> Result<(KeyCaller, TenantAccess), ApiError> {
    let hash = token_hash(token);
    let now = chrono::Utc::now();
    let key = match app.auth_cache.key(&hash) {
        Some(key) => key,
        None => {
            let ticket = app.auth_cache.ticket();
            let key = app
                .store
                .api_keys()
                .find_by_secret(&hash)
                .await?
                .ok_or_else(invalid_token)?;
            app.auth_cache.put_key(ticket, hash.clone(), key.clone());
            key
        }
    };
    if !key.usable_at(now) {
        return Err(invalid_token());
    }
    let stale = key.last_used_at.is_none_or(|at| {
        now - at > chrono::Duration::from_std(LAST_USED_RESOLUTION).unwrap_or_default()
    });
    if stale {
        app.store
            .api_keys()
            .touch(key.id, LAST_USED_RESOLUTION)
            .await?;
        app.auth_cache.touched_key(&hash, now);
    }
    let caller = KeyCaller {
        key_id: key.id,
        tenant_id: key.tenant_id,
        permissions: PermissionSet::parse(&key.permissions)
            .map_err(|e| ApiError::internal(format!("api key {}: {e}", key.id)))?,
    };
    let standing = TenantAccess {
        tenant_status: key.tenant_status,
        billing_status: key.billing_status,
        trial_ends_at: key.trial_ends_at,
        past_due_since: key.past_due_since,
        ..TenantAccess::default()
    };
    Ok((caller, standing))
}

/// The caller's standing in a tenant: 404 when they may not know it exists,
/// 423 for a change to a suspended tenant.
fn authorize(
    tenant_id: Uuid,
    principal: Principal,
    standing: TenantAccess,
    method: &Method,
    path: &str,
    now: chrono::DateTime<chrono::Utc>,
    grace: std::time::Duration,
) -> Result<TenantScope, ApiError> {
    let status = match standing.tenant_status.as_deref() {
        None => return Err(tenant_not_found()),
        Some(raw) => TenantStatus::parse(raw)
            .ok_or_else(|| ApiError::internal(format!("tenant status {raw:?}")))?,
    };
    let permissions = match &principal {
        Principal::User(c) if c.is_platform_admin => {
            // Platform admins pass everywhere, archived and suspended tenants included.
            return Ok(TenantScope {
                tenant_id,
                principal,
                permissions: platform_admin_permissions(),
            });
        }
        Principal::User(_) => {
            let role = standing.role.as_deref().ok_or_else(tenant_not_found)?;
            role_permissions(role, standing.custom_permissions.as_deref())
                .map_err(|e| ApiError::internal(format!("role {role}: {e}")))?
        }
        Principal::ApiKey(k) if k.tenant_id == tenant_id => k.permissions,
        Principal::ApiKey(_) => return Err(tenant_not_found()),
    };
    if status == TenantStatus::Archived {
        return Err(tenant_not_found());
    }
    let reads = [Method::GET, Method::HEAD, Method::OPTIONS];
    if status == TenantStatus::Suspended && !reads.contains(method) {
        return Err(ApiError::new(
            StatusCode::LOCKED,
            "tenant_suspended",
            "the tenant is suspended; reads still work, changes do not",
        ));
    }
    // A tenant that must pay still reads, and still reaches billing.
    let billing = standing
        .billing_status
        .as_deref()
        .and_then(tenantry_domain::billing::BillingStatus::parse);
    if let Some(billing) = billing {
        if !reads.contains(method)
            && !path.starts_with("/v1/tenants/{tid}/billing")
            && !tenantry_domain::billing::Billing::allows_changes(
                billing,
                standing.trial_ends_at,
                standing.past_due_since,
                chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX),
                now,
            )
        {
            let shown = if billing == tenantry_domain::billing::BillingStatus::Trialing {
                "trial_ended"
            } else {
                billing.as_str()
            };
            return Err(ApiError::new(
                StatusCode::PAYMENT_REQUIRED,
                "payment_required",
                "the tenant's subscription is not paid: reads still work, changes need a plan",
            )
            .with_details(json!({
                "billing_status": shown,
                "checkout": format!("POST /v1/tenants/{tenant_id}/billing/checkout"),
            })));
        }
    }
    Ok(TenantScope {
        tenant_id,
        principal,
        permissions,
    })
}

fn from_extensions<T: Clone + Send + Sync + 'static>(parts: &Parts) -> Result<T, ApiError> {
    parts
        .extensions
        .get::<T>()
        .cloned()
        .ok_or_else(|| ApiError::internal("a handler ran without its route guard"))
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        from_extensions(parts)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for TenantScope {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        from_extensions(parts)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        match from_extensions::<Principal>(parts)? {
            Principal::User(c) => Ok(c),
            Principal::ApiKey(_) => Err(ApiError::internal("a user route let an API key through")),
        }
    }
}

/// A caller who is a platform admin (the guard has checked it).
#[derive(Debug, Clone)]
pub struct PlatformAdmin(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for PlatformAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if !caller.is_platform_admin {
            return Err(platform_admin_required());
        }
        Ok(Self(caller))
    }
}
