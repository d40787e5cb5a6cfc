//! Prometheus metrics for operators: `GET /metrics`, answered only to the
//! metrics token (`TENANTRY_METRICS_TOKEN`).

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::guard::Access;
use crate::routes::Route;
use crate::state::AppState;

pub fn routes() -> Vec<Route> {
    vec![Route::get("/metrics", Access::MetricsToken, get_metrics)
        .summary("Prometheus metrics (text exposition format)")
        .answers_media(StatusCode::OK, "text/plain")]
}

async fn get_metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let body = crate::metrics::render(&state).await?;
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}
