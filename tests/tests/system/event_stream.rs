//! The live event stream (`GET /v1/tenants/{tid}/events/stream`): resumed
//! after a disconnect with no gap and no duplicate while writes go on,
//! ended when the caller's key is revoked or the tenant is no longer
//! visible to them, bounded per caller, and ended at shutdown.

use std::time::Duration;

use serde_json::json;
use tenantry_tests::{code, EventStream, SseMessage, TestApp};

/// Streams here re-check their caller five times a second.
const FAST: &[(&str, &str)] = &[("TENANTRY_STREAM_HEARTBEAT", "200ms")];
const WITHIN: Duration = Duration::from_secs(15);

async fn open(app: &TestApp, tid: &str, token: &str, resume: Option<&str>) -> EventStream {
    let (status, stream) = app
        .stream(
            &format!("/v1/tenants/{tid}/events/stream?after=0"),
            token,
            resume,
        )
        .await;
    assert_eq!(status, 200, "{:?}", stream.err());
    stream.expect("a stream")
}

/// The next event that is not the end, or the end when it comes.
async fn next(stream: &mut EventStream) -> SseMessage {
    stream.next(WITHIN).await.expect("an event or the end")
}

fn sequence(message: &SseMessage) -> i64 {
    let id: i64 = message
        .id
        .as_deref()
        .expect("an id")
        .parse()
        .expect("a number");
    assert_eq!(
        message.json()["sequence"].as_i64(),
        Some(id),
        "id is the sequence"
    );
    id
}

#[tokio::test]
async fn a_resumed_stream_misses_nothing_and_repeats_nothing_while_writes_go_on() {
    let app = TestApp::spawn_with(FAST).await;
    let admin = app.admin_token().await;
    let tenant = app.create_tenant(&admin, "Streamy").await;
    let tid = tenant["id"].as_str().unwrap().to_string();

    // A writer renames the tenant 60 times while the test reads.
    let writer = {
        let (client, url, admin) = (
            app.client.clone(),
            app.url(&format!("/v1/tenants/{tid}")),
            admin.clone(),
        );
        tokio::spawn(async move {
            for i in 0..60 {
                let r = client
                    .patch(&url)
                    .bearer_auth(&admin)
                    .json(&json!({ "name": format!("Streamy {i}") }))
                    .send()
                    .await
                    .expect("rename");
                assert_eq!(r.status().as_u16(), 200);
            }
        })
    };

    let mut seen = Vec::new();
    let mut stream = open(&app, &tid, &admin, None).await;
    while seen.len() < 10 {
        seen.push(sequence(&next(&mut stream).await));
    }
    // The connection drops mid-stream; the client resumes from its last id.
    drop(stream);
    let last = seen.last().unwrap().to_string();
    let mut stream = open(&app, &tid, &admin, Some(&last)).await;
    writer.await.expect("the writer finished");
    let (status, head) = app
        .get(
            &format!("/v1/tenants/{tid}/events?after=0&limit=200"),
            &admin,
        )
        .await;
    assert_eq!(status, 200);
    let head = head["data"].as_array().unwrap().last().unwrap()["sequence"]
        .as_i64()
        .unwrap();
    assert!(head >= 61, "created and renamed 60 times: {head}");
    while seen.last() != Some(&head) {
        let message = next(&mut stream).await;
        assert_eq!(message.event, None, "an event, not the end: {message:?}");
        seen.push(sequence(&message));
    }
    let expected: Vec<i64> = (1..=head).collect();
    assert_eq!(seen, expected, "every sequence once, in order");

    // Events carry what the events list carries, hashes included.
    let (_, listed) = app
        .get(&format!("/v1/tenants/{tid}/events?after=0&limit=1"), &admin)
        .await;
    let mut again = open(&app, &tid, &admin, Some("0")).await;
    assert_eq!(next(&mut again).await.json(), listed["data"][0]);
}

#[tokio::test]
async fn a_stream_ends_when_its_key_is_revoked_or_its_reader_leaves() {
    let app = TestApp::spawn_with(FAST).await;
    let admin = app.admin_token().await;
    let tenant = app.create_tenant(&admin, "Revoky").await;
    let tid = tenant["id"].as_str().unwrap().to_string();
    let (key_id, key) = app.api_key(&admin, &tid, &["audit.read"]).await;
    let (auditor_id, auditor) = app
        .member(&admin, &tid, "auditor@revoky.io", "auditor")
        .await;

    let mut by_key = open(&app, &tid, &key, None).await;
    let mut by_auditor = open(&app, &tid, &auditor, None).await;

    let (status, _) = app
        .delete(&format!("/v1/tenants/{tid}/api-keys/{key_id}"), &admin)
        .await;
    assert!(status == 204 || status == 200, "{status}");
    let end = until_end(&mut by_key).await;
    assert_eq!(end.json()["reason"], "invalid_token", "{end:?}");
    assert_eq!(by_key.next(WITHIN).await, None, "closed after its end");

    let (status, _) = app
        .delete(&format!("/v1/tenants/{tid}/members/{auditor_id}"), &admin)
        .await;
    assert!(status == 204 || status == 200, "{status}");
    let end = until_end(&mut by_auditor).await;
    assert_eq!(end.json()["reason"], "tenant_not_found", "{end:?}");

    // And a revoked key cannot open one again.
    let (status, body) = app
        .stream(&format!("/v1/tenants/{tid}/events/stream"), &key, None)
        .await;
    assert_eq!(status, 401);
    assert_eq!(code(&body.err().unwrap()), "invalid_token");
}

/// Read past events (the revocation itself) to the stream's `end`.
async fn until_end(stream: &mut EventStream) -> SseMessage {
    loop {
        let message = next(stream).await;
        if message.event.as_deref() == Some("end") {
            return message;
        }
    }
}

#[tokio::test]
async fn streams_are_bounded_per_caller_and_end_at_their_age_and_at_shutdown() {
    let app = TestApp::spawn_with(&[
        ("TENANTRY_STREAM_HEARTBEAT", "200ms"),
        ("TENANTRY_STREAMS_PER_CALLER", "2"),
        ("TENANTRY_STREAM_MAX_AGE", "1s"),
    ])
    .await;
    let admin = app.admin_token().await;
    let tenant = app.create_tenant(&admin, "Boundy").await;
    let tid = tenant["id"].as_str().unwrap().to_string();
    let path = format!("/v1/tenants/{tid}/events/stream");

    let mut first = open(&app, &tid, &admin, None).await;
    let _second = open(&app, &tid, &admin, None).await;
    let (status, body) = app.stream(&path, &admin, None).await;
    assert_eq!(status, 429);
    let body = body.err().unwrap();
    assert_eq!(code(&body), "too_many_streams");
    assert_eq!(body["error"]["details"]["scope"], "caller");

    // Its age ends the first; a closed stream gives its slot back.
    let end = until_end(&mut first).await;
    assert_eq!(end.json()["reason"], "max_age");
    drop(first);
    let mut third = None;
    for _ in 0..50 {
        let (status, stream) = app.stream(&path, &admin, None).await;
        if status == 200 {
            third = stream.ok();
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(third.is_some(), "a slot came back");

    // Bad resumption points are refused.
    let (status, body) = app.stream(&path, &admin, Some("yesterday")).await;
    assert_eq!(
        (status, code(&body.err().unwrap())),
        (422, "invalid_last_event_id")
    );
}

#[tokio::test]
async fn shutting_down_ends_open_streams() {
    let app = TestApp::spawn_with(FAST).await;
    let admin = app.admin_token().await;
    let tenant = app.create_tenant(&admin, "Stoppy").await;
    let tid = tenant["id"].as_str().unwrap().to_string();
    let mut stream = open(&app, &tid, &admin, None).await;
    let stopping = tokio::spawn(app.stop());
    let end = until_end(&mut stream).await;
    assert_eq!(end.json()["reason"], "shutting_down");
    let db = tokio::time::timeout(WITHIN, stopping)
        .await
        .expect("the server stopped with a stream open")
        .expect("stop");
    drop(db);
}
