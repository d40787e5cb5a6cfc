use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;

use crate::error::ApiError;
use crate::guard::Access;
use crate::routes::Route;
use crate::state::AppState;

pub fn routes() -> Vec<Route> {
    vec![
        Route::get("/healthz", Access::Public, get_health)
            .summary("The process is up")
            .answers::<HealthOut>(StatusCode::OK),
        Route::get("/readyz", Access::Public, get_ready)
            .summary("The database answers, migrations are applied, projections keep up")
            .answers::<ReadyOut>(StatusCode::OK)
            .errors(&["not_ready"]),
    ]
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct HealthOut {
    /// Always `ok`.
    status: &'static str,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ReadyOut {
    /// Always `ready`.
    status: &'static str,
    /// How many migrations the database has applied.
    migrations: i64,
}

/// The process is up.
async fn get_health() -> Json<HealthOut> {
    Json(HealthOut { status: "ok" })
}

/// The database answers, every migration this build knows is applied, and
/// no projection is further behind the log than
/// `TENANTRY_READY_MAX_PROJECTION_LAG`.
async fn get_ready(State(state): State<AppState>) -> Result<Json<ReadyOut>, ApiError> {
    let unavailable = |why: &str| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            format!("not ready: {why}"),
        )
    };
    let lags = state
        .projector
        .lag()
        .await
        .map_err(|_| unavailable("the database does not answer"))?;
    let applied = state
        .store
        .applied_migrations()
        .await
        .map_err(|_| unavailable("the database does not answer"))?;
    let known = crate::db::MIGRATOR.iter().count() as i64;
    if applied < known {
        return Err(unavailable("migrations are pending"));
    }
    let limit = state.config.projection_max_lag.as_secs_f64();
    if let Some(behind) = lags.iter().find(|l| l.seconds > limit) {
        return Err(unavailable(&format!(
            "projection {} is {:.0} s behind the log",
            behind.name, behind.seconds
        ))
        .with_details(serde_json::json!({
            "projection": behind.name,
            "lag_seconds": behind.seconds,
            "lag_events": behind.events,
        })));
    }
    Ok(Json(ReadyOut {
        status: "ready",
        migrations: applied,
    }))
}
