use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::guard::Access;
use crate::routes::Route;
use crate::state::AppState;

pub fn routes() -> Vec<Route> {
    vec![
        Route::get("/healthz", Access::Public, get_health),
        Route::get("/readyz", Access::Public, get_ready),
    ]
}

/// The process is up.
async fn get_health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// The database answers and every migration this build knows is applied.
async fn get_ready(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let unavailable = |why: &str| {
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            format!("not ready: {why}"),
        )
    };
    let applied = state
        .store
        .applied_migrations()
        .await
        .map_err(|_| unavailable("the database does not answer"))?;
    let known = crate::db::MIGRATOR.iter().count() as i64;
    if applied < known {
        return Err(unavailable("migrations are pending"));
    }
    Ok(Json(json!({ "status": "ready", "migrations": applied })))
}
