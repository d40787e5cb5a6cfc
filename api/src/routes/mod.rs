//! The HTTP surface. Each module exports `router()`; handlers are
//! `verb_noun` and read: extract, dispatch, respond.

pub mod auth;
pub mod health;
pub mod me;
pub mod tenants;
pub mod users;

use axum::Router;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().merge(health::router()).nest(
        "/v1",
        Router::new()
            .merge(auth::router())
            .merge(me::router())
            .merge(tenants::router())
            .merge(users::router()),
    )
}
