//! Webhooks from the services Tenantry works with. Stripe's deliveries are
//! authenticated by their signature, not by a bearer token.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;

use crate::error::ApiError;
use crate::extract::Context;
use crate::guard::Access;
use crate::routes::Route;
use crate::service::stripe_webhooks::{self, Outcome};
use crate::state::AppState;

pub fn routes() -> Vec<Route> {
    vec![
        Route::post("/v1/webhooks/stripe", Access::Public, post_stripe)
            .summary("A Stripe event, verified by its Stripe-Signature")
            .answers::<WebhookOut>(StatusCode::OK)
            .errors(&[
                "invalid_signature",
                "malformed_event",
                "billing_not_configured",
                "payload_too_large",
            ]),
    ]
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct WebhookOut {
    received: bool,
    /// Whether it changed a subscription (false: a replay, an older event,
    /// or a type Tenantry does not use).
    applied: bool,
}

async fn post_stripe(
    State(state): State<AppState>,
    ctx: Context,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<WebhookOut>, ApiError> {
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    let outcome = stripe_webhooks::receive(&state, &ctx, signature, &body).await?;
    Ok(axum::Json(WebhookOut {
        received: true,
        applied: outcome == Outcome::Applied,
    }))
}
