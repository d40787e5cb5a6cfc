//! The HTTP surface, as one route table. Each module lists its routes with
//! the access each demands; [`router`] builds the axum router from that list
//! and wraps every handler in the guard, and [`table`] exposes the same list
//! to the docs and the isolation test. A route cannot exist without an
//! access rule. Handlers are `verb_noun` and read: extract, dispatch, respond.

pub mod agents;
pub mod api_keys;
pub mod approvals;
pub mod audit;
pub mod auth;
pub mod billing;
pub mod docs;
pub mod health;
pub mod impersonation;
pub mod invitations;
pub mod llm_keys;
pub mod me;
pub mod members;
pub mod metrics;
pub mod roles;
pub mod tenants;
pub mod usage;
pub mod users;
pub mod webhooks;

use axum::handler::Handler;
use axum::http::{Method, StatusCode};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;
use utoipa::{IntoParams, ToSchema};

use crate::guard::{guard, Access, GuardState};
use crate::openapi::{self, RouteDoc};
use crate::state::AppState;

/// One route: method, full path (`{tid}` names the tenant), access, what
/// the OpenAPI document says of it, handler.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    pub doc: RouteDoc,
    handler: MethodRouter<AppState>,
}

macro_rules! verb {
    ($name:ident, $method:ident) => {
        pub fn $name<H, T>(path: &'static str, access: Access, handler: H) -> Self
        where
            H: Handler<T, AppState>,
            T: 'static,
        {
            Self {
                method: Method::$method,
                path,
                access,
                doc: RouteDoc::default(),
                handler: on(MethodFilter::$method, handler),
            }
        }
    };
}

impl Route {
    verb!(get, GET);
    verb!(post, POST);
    verb!(put, PUT);
    verb!(patch, PATCH);
    verb!(delete, DELETE);

    /// One line for the document.
    pub fn summary(mut self, summary: &'static str) -> Self {
        self.doc.summary = summary;
        self
    }

    /// The JSON body the route reads.
    pub fn body<T: ToSchema>(mut self) -> Self {
        self.doc.body = Some(openapi::schema::<T>);
        self
    }

    /// A JSON body the route reads when there is one.
    pub fn optional_body<T: ToSchema>(mut self) -> Self {
        self.doc.body = Some(openapi::schema::<T>);
        self.doc.body_optional = true;
        self
    }

    /// The query parameters the route reads.
    pub fn query<Q: IntoParams>(mut self) -> Self {
        self.doc.query = Some(openapi::params::<Q>);
        self
    }

    /// Answers `status` with a `T`.
    pub fn answers<T: ToSchema>(mut self, status: StatusCode) -> Self {
        self.doc.ok = Some((status.as_u16(), Some(openapi::schema::<T>)));
        self
    }

    /// Answers `status` with a body of `media_type` that is not JSON (or
    /// JSON this document does not describe: the document itself).
    pub fn answers_media(mut self, status: StatusCode, media_type: &'static str) -> Self {
        self.doc.ok = Some((status.as_u16(), None));
        self.doc.ok_media = Some(media_type);
        self
    }

    /// Answers 200 with a page of `T`.
    pub fn answers_page<T: ToSchema>(mut self) -> Self {
        self.doc.ok = Some((200, Some(openapi::list::<T>)));
        self
    }

    /// Answers 200 with every `T` at once, in the page shape.
    pub fn answers_all<T: ToSchema>(mut self) -> Self {
        self.doc.ok = Some((200, Some(openapi::all::<T>)));
        self
    }

    /// Answers 204 without a body.
    pub fn no_content(mut self) -> Self {
        self.doc.ok = Some((204, None));
        self
    }

    /// The error codes of this route's own (see `openapi::route_codes`).
    pub fn errors(mut self, codes: &'static [&'static str]) -> Self {
        self.doc.errors = codes;
        self
    }
}

fn all() -> Vec<Route> {
    [
        health::routes(),
        docs::routes(),
        metrics::routes(),
        auth::routes(),
        me::routes(),
        tenants::routes(),
        members::routes(),
        roles::routes(),
        api_keys::routes(),
        llm_keys::routes(),
        invitations::routes(),
        users::routes(),
        billing::routes(),
        agents::routes(),
        approvals::routes(),
        audit::routes(),
        usage::routes(),
        webhooks::routes(),
        impersonation::routes(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Every route's method, path and access, in table order.
pub fn table() -> Vec<(Method, &'static str, Access)> {
    all()
        .into_iter()
        .map(|r| (r.method, r.path, r.access))
        .collect()
}

/// The OpenAPI document of the route table.
pub fn document() -> utoipa::openapi::OpenApi {
    with_entries(openapi::document)
}

/// The document as the server serves it and `docs/openapi.json` holds it.
pub fn document_json() -> String {
    with_entries(openapi::document_json)
}

/// The endpoint list of `docs/API.md`, generated from the route table.
pub fn endpoint_list() -> String {
    with_entries(openapi::endpoint_list)
}

fn with_entries<T>(f: impl FnOnce(&[openapi::Entry<'_>]) -> T) -> T {
    let routes = all();
    let entries: Vec<openapi::Entry<'_>> = routes
        .iter()
        .map(|r| openapi::Entry {
            method: &r.method,
            path: r.path,
            access: r.access,
            doc: &r.doc,
        })
        .collect();
    f(&entries)
}

#[cfg(test)]
mod contract_tests;

/// The router: each handler behind the guard for its declared access. In
/// debug builds each route also checks that every error it answers is one
/// its documentation lists.
pub fn router(state: &AppState) -> Router<AppState> {
    all().into_iter().fold(Router::new(), |router, r| {
        let guarded = r.handler.layer(axum::middleware::from_fn_with_state(
            GuardState {
                app: state.clone(),
                access: r.access,
                path: r.path,
            },
            guard,
        ));
        #[cfg(debug_assertions)]
        let guarded = {
            let codes = openapi::route_codes(&r.method, r.path, r.access, &r.doc);
            let route = format!("{} {}", r.method, r.path);
            guarded.layer(axum::middleware::from_fn(
                move |request: axum::extract::Request, next: axum::middleware::Next| {
                    let (codes, route) = (codes.clone(), route.clone());
                    async move {
                        let response = next.run(request).await;
                        if let Some(crate::error::ErrorCode(code)) = response.extensions().get() {
                            check_documented(&route, code, &codes);
                        }
                        response
                    }
                },
            ))
        };
        router.route(r.path, guarded)
    })
}

/// Debug builds: an error code a route's documentation does not list is a
/// bug in the route table. With `TENANTRY_RECORD_UNDOCUMENTED` set to a
/// file, it is appended there instead of failing.
#[cfg(debug_assertions)]
fn check_documented(route: &str, code: &str, codes: &std::collections::BTreeSet<&'static str>) {
    if codes.contains(code) {
        return;
    }
    if let Ok(path) = std::env::var("TENANTRY_RECORD_UNDOCUMENTED") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{route} {code}");
        }
        return;
    }
    panic!("{route} answered {code}, which its route table entry does not document");
}
