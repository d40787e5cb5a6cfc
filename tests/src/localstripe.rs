//! A Stripe-compatible server for billing tests: localstripe from PyPI
//! (customers, plans, subscriptions, invoices, events, and real signed
//! webhooks to a registered URL), in a virtualenv like the SMTP peer.
//!
//! localstripe has no Checkout, no billing portal and no Prices API.
//! [`StripeFront`] stands in for those calls only, speaking Stripe's wire
//! format (a price is looked up among localstripe's plans, as Stripe serves
//! a plan as a price too), and forwards every other request to localstripe
//! unchanged: Tenantry's real client
//! points at the front and runs as it would against Stripe.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use serde_json::{json, Value};

use crate::venv::{free_port, python_with, wait_for_port};

const LOCALSTRIPE: &str = "localstripe==1.15.10";

/// The key the tests' servers are configured with.
pub const SECRET_KEY: &str = "sk_test_tenantry_localstripe_key_0123456789";

/// A localstripe process on a free port.
pub struct LocalStripe {
    child: Child,
    pub port: u16,
    client: reqwest::Client,
}

impl LocalStripe {
    pub async fn start() -> Self {
        let python = python_with(LOCALSTRIPE);
        let port = free_port();
        let child = Command::new(python)
            .args(["-m", "localstripe", "--from-scratch", "--port"])
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start localstripe");
        wait_for_port(port, "localstripe").await;
        Self {
            child,
            port,
            client: reqwest::Client::new(),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Deliver every event, signed with `secret`, to `url`.
    pub async fn register_webhook(&self, url: &str, secret: &str) {
        let r = self
            .client
            .post(format!("{}/_config/webhooks/tenantry", self.url()))
            .form(&[("url", url), ("secret", secret)])
            .send()
            .await
            .expect("register the webhook");
        assert!(
            r.status().is_success(),
            "webhook registration: {}",
            r.status()
        );
    }

    /// Stop delivering (the deliveries Tenantry misses while "down").
    pub async fn unregister_webhook(&self) {
        // localstripe keeps webhooks by id: pointing it at a closed port
        // makes every delivery fail, as an endpoint that is down does.
        let closed = format!("http://127.0.0.1:{}/", free_port());
        self.register_webhook(&closed, "whsec_nobody").await;
    }

    /// A Stripe API call made directly (what a person does in Stripe's
    /// dashboard, or a payment the customer makes).
    pub async fn call(&self, method: Method, path: &str, form: &[(&str, &str)]) -> Value {
        let r = self
            .client
            .request(method, format!("{}{path}", self.url()))
            .basic_auth(SECRET_KEY, Some(""))
            .form(form)
            .send()
            .await
            .expect("localstripe call");
        let status = r.status();
        let body: Value = r.json().await.expect("localstripe JSON");
        assert!(status.is_success(), "localstripe {path}: {status} {body}");
        body
    }

    /// A card the customer pays with from now on.
    pub async fn give_card(&self, customer: &str) {
        let token = self
            .call(
                Method::POST,
                "/v1/tokens",
                &[
                    ("card[number]", "4242424242424242"),
                    ("card[exp_month]", "12"),
                    ("card[exp_year]", "2034"),
                    ("card[cvc]", "123"),
                ],
            )
            .await;
        let token = token["id"].as_str().expect("token id");
        self.call(
            Method::POST,
            &format!("/v1/customers/{customer}/sources"),
            &[("source", token)],
        )
        .await;
    }
}

impl Drop for LocalStripe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What Tenantry asked of the two calls localstripe lacks.
#[derive(Debug, Clone)]
pub struct SessionRequest {
    pub path: String,
    /// The form, decoded (`line_items[0][price]` → value).
    pub form: Vec<(String, String)>,
    /// The `Authorization` header Tenantry sent.
    pub authorization: String,
}

impl SessionRequest {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Clone)]
struct FrontState {
    upstream: String,
    client: reqwest::Client,
    sessions: Arc<Mutex<Vec<SessionRequest>>>,
}

/// Checkout and billing portal sessions answered here; the rest forwarded
/// to localstripe.
pub struct StripeFront {
    pub port: u16,
    sessions: Arc<Mutex<Vec<SessionRequest>>>,
    task: tokio::task::JoinHandle<()>,
}

impl StripeFront {
    pub async fn start(upstream: &LocalStripe) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the Stripe front");
        let port = listener.local_addr().expect("address").port();
        let sessions = Arc::new(Mutex::new(Vec::new()));
        let state = FrontState {
            upstream: upstream.url(),
            client: reqwest::Client::new(),
            sessions: sessions.clone(),
        };
        let app = axum::Router::new().fallback(front).with_state(state);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            port,
            sessions,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The session requests so far, oldest first.
    pub fn sessions(&self) -> Vec<SessionRequest> {
        self.sessions.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for StripeFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn front(
    State(state): State<FrontState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let path = uri.path().to_string();
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if method == Method::POST
        && (path == "/v1/checkout/sessions" || path == "/v1/billing_portal/sessions")
    {
        let form: Vec<(String, String)> = form_urlencoded_pairs(&body);
        let request = SessionRequest {
            path: path.clone(),
            form,
            authorization,
        };
        let n = {
            let mut sessions = state.sessions.lock().expect("sessions");
            sessions.push(request.clone());
            sessions.len()
        };
        if !request.authorization.starts_with("Bearer sk_") {
            let error = json!({"error": {"type": "invalid_request_error", "message": "Invalid API Key provided"}});
            return (StatusCode::UNAUTHORIZED, axum::Json(error)).into_response();
        }
        let customer = request.field("customer").unwrap_or_default().to_string();
        // As Stripe does: a price it does not have is refused.
        if let Some(price) = request.field("line_items[0][price]") {
            let known = state
                .client
                .get(format!("{}/v1/plans/{price}", state.upstream))
                .header("authorization", &request.authorization)
                .send()
                .await
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            if !known {
                let error = json!({"error": {
                    "type": "invalid_request_error",
                    "param": "line_items[0][price]",
                    "message": format!("No such price: '{price}'"),
                }});
                return (StatusCode::BAD_REQUEST, axum::Json(error)).into_response();
            }
        }
        let body = if path == "/v1/checkout/sessions" {
            json!({
                "id": format!("cs_test_{n}"),
                "object": "checkout.session",
                "mode": request.field("mode"),
                "customer": customer,
                "url": format!("https://checkout.stripe.test/c/pay/cs_test_{n}"),
            })
        } else {
            json!({
                "id": format!("bps_{n}"),
                "object": "billing_portal.session",
                "customer": customer,
                "return_url": request.field("return_url"),
                "url": format!("https://billing.stripe.test/p/session/bps_{n}"),
            })
        };
        return axum::Json(body).into_response();
    }
    // localstripe has no Prices API; Stripe serves a plan object as a price
    // too, so a price is looked up among localstripe's plans.
    if method == Method::GET {
        if let Some(id) = path.strip_prefix("/v1/prices/") {
            let found = state
                .client
                .get(format!("{}/v1/plans/{id}", state.upstream))
                .header("authorization", &authorization)
                .send()
                .await;
            return match found {
                Ok(r) if r.status().is_success() => {
                    let plan: Value = r.json().await.unwrap_or_default();
                    axum::Json(json!({"id": plan["id"], "object": "price"})).into_response()
                }
                _ => {
                    let error = json!({"error": {
                        "type": "invalid_request_error",
                        "message": format!("No such price: '{id}'"),
                    }});
                    (StatusCode::NOT_FOUND, axum::Json(error)).into_response()
                }
            };
        }
    }
    let target = format!(
        "{}{}",
        state.upstream,
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    );
    let mut forwarded = state
        .client
        .request(method, target)
        .header("authorization", authorization)
        .body(body.to_vec());
    if let Some(ct) = headers.get("content-type") {
        forwarded = forwarded.header("content-type", ct.as_bytes());
    }
    match forwarded.send().await {
        Ok(r) => {
            let status =
                StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let bytes = r.bytes().await.unwrap_or_default();
            (status, [("content-type", "application/json")], bytes).into_response()
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

fn form_urlencoded_pairs(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}
