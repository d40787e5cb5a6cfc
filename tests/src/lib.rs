//! Test harness: each test gets a fresh database and a server on port 0,
//! both gone when the test ends (the database is dropped even on panic).

pub mod localstripe;
pub mod smtp;
pub mod venv;

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};
use std::sync::Arc;

use tenantry_api::app::Application;
use tenantry_api::clock::{Clock, SystemClock};
use tenantry_api::config::Config;
use tokio::sync::oneshot;
use uuid::Uuid;

pub const ADMIN_EMAIL: &str = "root@tenantry.test";
pub const ADMIN_PASSWORD: &str = "correct horse battery";
/// The JWT secret of every test server (tests forge expired tokens with it).
pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";
/// The key of the email addresses' keyed hashes on every test server.
pub const LOOKUP_KEY: &str = "lookup-key-lookup-key-lookup-key-0123";
/// The vault's master key on every test server (`id:base64(32 bytes)`).
pub const MASTER_KEYS: &str = "test:dGVzdC1tYXN0ZXIta2V5LXRlc3QtbWFzdGVyLWtleSE=";
/// The bearer token `GET /metrics` answers to in tests.
pub const METRICS_TOKEN: &str = "metrics-token-metrics-token-metrics-0123";

/// The server at Postgres that tests create their databases in.
pub fn admin_url() -> String {
    std::env::var("TENANTRY_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

fn url_for(db: &str) -> String {
    let base = admin_url();
    let (prefix, _) = base.rsplit_once('/').unwrap_or((&base, ""));
    format!("{prefix}/{db}")
}

/// A uniquely named database, dropped (with its connections) on drop.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub async fn create() -> Self {
        let name = format!("tenantry_test_{}", Uuid::now_v7().simple());
        let mut conn = PgConnection::connect(&admin_url())
            .await
            .expect("test Postgres reachable");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let _ = conn.close().await;
        let url = url_for(&name);
        Self { name, url }
    }

    /// A migrated pool on this database.
    pub async fn migrated_pool(&self) -> PgPool {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect(&self.url)
            .await
            .expect("connect to test database");
        tenantry_api::db::MIGRATOR
            .run(&pool)
            .await
            .expect("migrate");
        pool
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        if name.is_empty() {
            return;
        }
        let _ = std::fs::remove_dir_all(data_dirs_of(&name));
        // A fresh runtime on a fresh thread: Drop may run inside (or outside) one.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async move {
                    if let Ok(mut conn) = PgConnection::connect(&admin_url()).await {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut conn)
                                .await;
                    }
                });
            }
        })
        .join();
    }
}

/// Where the servers of the test database `name` keep their data
/// directories; removed with the database.
fn data_dirs_of(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("tenantry-test-{name}"))
}

pub fn test_config(db_url: &str, extra: &[(&str, &str)]) -> Config {
    let db_name = db_url.rsplit('/').next().unwrap_or_default();
    let data_dir = data_dirs_of(db_name).join(Uuid::now_v7().to_string());
    let mut vars: HashMap<String, String> = [
        ("DATABASE_URL", db_url.to_string()),
        ("TENANTRY_LISTEN", "127.0.0.1:0".to_string()),
        ("TENANTRY_DATA_DIR", data_dir.to_string_lossy().to_string()),
        ("TENANTRY_JWT_SECRET", JWT_SECRET.to_string()),
        // Every server of a test database shares these, as a deployment's do
        // (each test server has its own data directory).
        ("TENANTRY_LOOKUP_KEY", LOOKUP_KEY.to_string()),
        ("TENANTRY_MASTER_KEYS", MASTER_KEYS.to_string()),
        ("TENANTRY_METRICS_TOKEN", METRICS_TOKEN.to_string()),
        ("TENANTRY_BOOTSTRAP_ADMIN_EMAIL", ADMIN_EMAIL.to_string()),
        (
            "TENANTRY_BOOTSTRAP_ADMIN_PASSWORD",
            ADMIN_PASSWORD.to_string(),
        ),
        ("TENANTRY_PROJECTOR_POLL_MS", "100".to_string()),
        // Tests call public routes far more often than people do.
        ("TENANTRY_PUBLIC_RATE_LIMIT", "10000".to_string()),
        ("TENANTRY_SIGN_IN_RATE_LIMIT", "100000".to_string()),
        ("TENANTRY_SIGN_IN_MAX_FAILURES", "10000".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in extra {
        vars.insert(k.to_string(), v.to_string());
    }
    Config::from_lookup(|k| vars.get(k).cloned()).expect("test config")
}

/// A running server on its own database.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    /// The test's own pool on the server's database.
    pub pool: PgPool,
    /// The server's opener of people's sealed data (its master keys).
    personal: Arc<tenantry_api::personal::PersonalData>,
    /// The server's projectors, to wait for the read models.
    projector: tenantry_projections::ProjectorRuntime,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    pub db: TestDb,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    pub async fn spawn_with(extra: &[(&str, &str)]) -> Self {
        let db = TestDb::create().await;
        Self::spawn_on(db, extra).await
    }

    pub async fn spawn_on(db: TestDb, extra: &[(&str, &str)]) -> Self {
        Self::spawn_on_clock(db, extra, Arc::new(SystemClock)).await
    }

    /// A server whose application clock the test moves by hand.
    pub async fn spawn_with_clock(extra: &[(&str, &str)], clock: Arc<dyn Clock>) -> Self {
        Self::spawn_on_clock(TestDb::create().await, extra, clock).await
    }

    pub async fn spawn_on_clock(db: TestDb, extra: &[(&str, &str)], clock: Arc<dyn Clock>) -> Self {
        let app = Application::build_with_clock(test_config(&db.url, extra), clock)
            .await
            .expect("app builds");
        let base = format!("http://127.0.0.1:{}", app.port());
        let personal = app.state().personal.clone();
        let projector = app.state().projector.clone();
        // The test's own connections, for asserting on tables directly; the
        // server keeps its pool behind its store.
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect(&db.url)
            .await
            .expect("connect to test database");
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        Self {
            base,
            client: reqwest::Client::new(),
            pool,
            personal,
            projector,
            stop: Some(stop),
            server: Some(server),
            db,
        }
    }

    /// Stop gracefully and wait for the server and projectors to end.
    pub async fn stop(mut self) -> TestDb {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
        }
        let db = TestDb {
            name: self.db.name.clone(),
            url: self.db.url.clone(),
        };
        // The original guard must not drop the database we hand back.
        self.db.name = String::new();
        db
    }

    /// Every projection, opening people's data as this server does (for
    /// rebuilding read models by hand).
    pub fn projections(&self) -> Vec<Arc<dyn tenantry_projections::Projection>> {
        tenantry_projections::all(self.personal.clone())
    }

    /// Wait until the projections that read `event_type` events of
    /// `aggregate_type` have passed every event committed so far (what an
    /// answer that does not wait for its read models leaves behind: usage
    /// rollups). The log's head is the target, so an event still behind
    /// the read horizon (another test's open transaction) is waited for.
    pub async fn projected(&self, aggregate_type: &'static str, event_type: &str) {
        let store = tenantry_store::Store::new(self.pool.clone());
        let Some(head) = store.head().await.expect("the log's head") else {
            return;
        };
        let written = tenantry_projections::Written {
            checkpoint: head,
            aggregate_type,
            aggregate_id: String::new(),
            event_types: vec![event_type.to_string()],
        };
        assert!(
            self.projector
                .wait_for(&written, Duration::from_secs(10))
                .await,
            "the projections reading {event_type} did not catch up within 10 s"
        );
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        self.client
            .post(self.url("/v1/auth/login"))
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await
            .expect("request")
    }

    /// The bootstrap admin's access token.
    pub async fn admin_token(&self) -> String {
        self.token_for(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    pub async fn token_for(&self, email: &str, password: &str) -> String {
        let r = self.login(email, password).await;
        assert_eq!(r.status(), 200, "login of {email} failed");
        let body: Value = r.json().await.expect("json");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        assert!(
            r.headers().contains_key("x-request-id"),
            "every response has x-request-id"
        );
        let content_type = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if content_type.as_deref() == Some("text/event-stream") {
            // A live stream does not end: its status is the answer
            // (`TestApp::stream` reads one).
            return (status, Value::String("text/event-stream".into()));
        }
        let json = content_type
            .as_deref()
            .is_none_or(|v| v.starts_with("application/json"));
        let text = r.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else if json {
            serde_json::from_str(&text).expect("JSON body")
        } else {
            // The docs page and its assets: the text, for the caller to check.
            Value::String(text)
        };
        (status, value)
    }

    /// Open a Server-Sent Events stream (`Last-Event-ID` when given): its
    /// status, and the stream to read when it is 200 (the error body else).
    pub async fn stream(
        &self,
        path: &str,
        token: &str,
        last_event_id: Option<&str>,
    ) -> (u16, Result<EventStream, Value>) {
        let mut req = self.client.get(self.url(path)).bearer_auth(token);
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        if status != 200 {
            return (status, Err(r.json().await.expect("JSON error body")));
        }
        let content_type = r.headers().get("content-type").cloned();
        assert_eq!(
            content_type.as_ref().and_then(|v| v.to_str().ok()),
            Some("text/event-stream")
        );
        (
            status,
            Ok(EventStream {
                response: r,
                buffer: String::new(),
                ended: false,
            }),
        )
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, Some(token), None)
            .await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(token), Some(body))
            .await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::PUT, path, Some(token), Some(body))
            .await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::PATCH, path, Some(token), Some(body))
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> (u16, Value) {
        self.send(reqwest::Method::DELETE, path, Some(token), None)
            .await
    }

    /// Seat a user in a tenant as the platform admin.
    pub async fn add_member(&self, admin: &str, tenant_id: &str, user_id: &str, role: &str) {
        let (status, body) = self
            .post(
                &format!("/v1/tenants/{tenant_id}/members"),
                admin,
                json!({ "user_id": user_id, "role": role }),
            )
            .await;
        assert_eq!(status, 201, "adding {role}: {body}");
    }

    /// A new user seated in the tenant with a role; returns (user id, token).
    pub async fn member(
        &self,
        admin: &str,
        tenant_id: &str,
        email: &str,
        role: &str,
    ) -> (String, String) {
        let password = "member-password-1";
        let user = self.create_user(admin, email, password).await;
        let id = user["id"].as_str().expect("user id").to_string();
        self.add_member(admin, tenant_id, &id, role).await;
        (id, self.token_for(email, password).await)
    }

    /// An API key of a tenant, created with `token`; returns (id, secret).
    pub async fn api_key(
        &self,
        token: &str,
        tenant_id: &str,
        permissions: &[&str],
    ) -> (String, String) {
        let (status, body) = self
            .post(
                &format!("/v1/tenants/{tenant_id}/api-keys"),
                token,
                json!({ "name": "runtime", "permissions": permissions }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        (
            body["id"].as_str().expect("id").to_string(),
            body["key"].as_str().expect("key").to_string(),
        )
    }

    /// Start impersonating a user; returns the impersonation token.
    pub async fn impersonate(&self, admin: &str, user_id: &str) -> String {
        let (status, body) = self
            .post(
                "/v1/admin/impersonate",
                admin,
                json!({ "user_id": user_id, "reason": "support ticket 42" }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().expect("token").to_string()
    }

    /// Create a tenant as the admin; returns its JSON.
    pub async fn create_tenant(&self, token: &str, name: &str) -> Value {
        let (status, body) = self
            .post("/v1/tenants", token, json!({ "name": name }))
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    /// Create a user as the admin; returns its JSON.
    pub async fn create_user(&self, token: &str, email: &str, password: &str) -> Value {
        let (status, body) = self
            .post(
                "/v1/admin/users",
                token,
                json!({ "email": email, "name": "Test User", "password": password }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// The error code of an error body.
pub fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}

/// A TCP forwarder on loopback standing between a server and Postgres, so
/// a test can take the database away (refused connections, open ones cut)
/// and give it back on the same address.
pub struct DbProxy {
    pub port: u16,
    target: std::net::SocketAddr,
    tasks: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl DbProxy {
    /// Forward a new loopback port to the test Postgres.
    pub async fn start() -> Self {
        let opts: sqlx::postgres::PgConnectOptions = admin_url().parse().expect("a Postgres URL");
        let target = tokio::net::lookup_host((opts.get_host(), opts.get_port()))
            .await
            .expect("resolve the test Postgres")
            .next()
            .expect("an address");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let port = listener.local_addr().expect("addr").port();
        let proxy = Self {
            port,
            target,
            tasks: Default::default(),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let (target, tasks) = (self.target, self.tasks.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let pipe = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().unwrap_or_else(|e| e.into_inner()).push(pipe);
            }
        });
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(accept);
    }

    /// The URL of database `name` through this proxy.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    fn abort_all(&self) -> Vec<tokio::task::JoinHandle<()>> {
        let tasks: Vec<_> = self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        for task in &tasks {
            task.abort();
        }
        tasks
    }

    /// The database goes away: new connections are refused, open ones cut.
    /// Returns when the listener and every forwarded connection are closed.
    pub async fn cut(&self) {
        for task in self.abort_all() {
            let _ = task.await;
        }
    }

    /// The database comes back on the same address.
    pub async fn restore(&self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("rebind the proxy's port");
        self.serve(listener);
    }
}

impl Drop for DbProxy {
    fn drop(&mut self) {
        self.abort_all();
    }
}

/// One Server-Sent Event (comments are skipped).
#[derive(Debug, Clone, PartialEq)]
pub struct SseMessage {
    pub id: Option<String>,
    /// `None`: the default, `message`.
    pub event: Option<String>,
    pub data: String,
}

impl SseMessage {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).expect("JSON data")
    }
}

/// A live stream read event by event (`TestApp::stream`).
pub struct EventStream {
    response: reqwest::Response,
    buffer: String,
    ended: bool,
}

impl EventStream {
    /// The next event, or `None` once the server closed the stream. Panics
    /// when none arrives within `within`.
    pub async fn next(&mut self, within: Duration) -> Option<SseMessage> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            while let Some(at) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..at + 2).collect();
                if let Some(message) = parse_sse(&block) {
                    return Some(message);
                }
            }
            if self.ended {
                return None;
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .unwrap_or_else(|_| panic!("no event within {within:?}"))
                .expect("the stream reads");
            match chunk {
                Some(bytes) => self
                    .buffer
                    .push_str(std::str::from_utf8(&bytes).expect("UTF-8")),
                None => self.ended = true,
            }
        }
    }
}

fn parse_sse(block: &str) -> Option<SseMessage> {
    let mut message = SseMessage {
        id: None,
        event: None,
        data: String::new(),
    };
    let mut any = false;
    for line in block.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => message.id = Some(value.to_string()),
            "event" => message.event = Some(value.to_string()),
            "data" => {
                if any {
                    message.data.push('\n');
                }
                message.data.push_str(value);
                any = true;
            }
            _ => {}
        }
    }
    any.then_some(message)
}
