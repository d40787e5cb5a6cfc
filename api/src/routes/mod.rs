//! The HTTP surface, as one route table. Each module lists its routes with
//! the access each demands; [`router`] builds the axum router from that list
//! and wraps every handler in the guard, and [`table`] exposes the same list
//! to the docs and the isolation test. A route cannot exist without an
//! access rule. Handlers are `verb_noun` and read: extract, dispatch, respond.

pub mod api_keys;
pub mod auth;
pub mod health;
pub mod impersonation;
pub mod invitations;
pub mod llm_keys;
pub mod me;
pub mod members;
pub mod roles;
pub mod tenants;
pub mod users;

use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;

use crate::guard::{guard, Access, GuardState};
use crate::state::AppState;

/// One route: method, full path (`{tid}` names the tenant), access, handler.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
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
}

fn all() -> Vec<Route> {
    [
        health::routes(),
        auth::routes(),
        me::routes(),
        tenants::routes(),
        members::routes(),
        roles::routes(),
        api_keys::routes(),
        llm_keys::routes(),
        invitations::routes(),
        users::routes(),
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

/// The router: each handler behind the guard for its declared access.
pub fn router(state: &AppState) -> Router<AppState> {
    all().into_iter().fold(Router::new(), |router, r| {
        let guarded = r.handler.layer(axum::middleware::from_fn_with_state(
            GuardState {
                app: state.clone(),
                access: r.access,
            },
            guard,
        ));
        router.route(r.path, guarded)
    })
}
