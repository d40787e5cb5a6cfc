//! No plaintext provider key reaches the logs, at any level. This file is
//! its own test binary because it installs the process-wide subscriber.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::json;
use tenantry_tests::TestApp;

const SECRET: &str = "sk-proj-LOGCAPTUREPLAINTEXTabcdef9876";
const REPLACEMENT: &str = "sk-proj-LOGCAPTUREREPLACEDghijkl5432";

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn trace_level_logs_of_create_resolve_replace_and_delete_hold_no_plaintext() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let tenant = app.create_tenant(&admin, "Acme").await;
    let tid = tenant["id"].as_str().unwrap();
    let (_, runtime) = app.api_key(&admin, tid, &["llm_keys.use"]).await;
    let keys = format!("/v1/tenants/{tid}/llm-keys");

    let (status, created) = app
        .post(
            &keys,
            &admin,
            json!({ "provider": "openai", "api_key": SECRET }),
        )
        .await;
    assert_eq!(status, 201);
    let id = created["id"].as_str().unwrap();
    let (status, resolved) = app
        .post(&format!("{keys}/openai/resolve"), &runtime, json!({}))
        .await;
    assert_eq!((status, resolved["api_key"].as_str()), (200, Some(SECRET)));
    // A refused input is logged too; it must not echo the key.
    let (status, _) = app
        .post(
            &keys,
            &admin,
            json!({ "provider": "openai", "api_key": SECRET }),
        )
        .await;
    assert_eq!(status, 409);
    let (status, _) = app
        .put(
            &format!("{keys}/{id}"),
            &admin,
            json!({ "api_key": REPLACEMENT }),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = app.delete(&format!("{keys}/{id}"), &admin).await;
    assert_eq!(status, 204);
    drop(app);

    let logs = String::from_utf8_lossy(&capture.0.lock().unwrap()).to_string();
    assert!(
        logs.contains("request finished") && logs.contains("TRACE"),
        "the capture sees trace-level output"
    );
    for secret in [SECRET, REPLACEMENT] {
        assert!(!logs.contains(secret), "a log line holds a plaintext key");
        assert!(
            !logs.contains(&secret[8..]),
            "a log line holds part of a key"
        );
    }
}
