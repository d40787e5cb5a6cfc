//! Usage over HTTP: ingestion by the agent runtime (all or nothing, each id
//! counted once, costed at the price book in effect), rollups that equal a
//! rebuild, CSV, the price book, and platform totals.

use chrono::{Duration, Utc};
use serde_json::{json, Value};
use tenantry_projections::runtime;
use tenantry_tests::{code, TestApp};

struct Setup {
    app: TestApp,
    admin: String,
    tid: String,
    owner: String,
    agent: String,
    /// An API key with usage.write and usage.read: the agent runtime.
    runtime: String,
    /// When the records occurred (one time, so a record sent twice is the
    /// same record).
    at: String,
}

async fn setup() -> Setup {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let tenant = app.create_tenant(&admin, "Acme").await;
    let tid = tenant["id"].as_str().unwrap().to_string();
    let (_, owner) = app.member(&admin, &tid, "owner@acme.test", "owner").await;
    let (s, agent) = app
        .post(
            &format!("/v1/tenants/{tid}/agents"),
            &owner,
            json!({ "name": "Receptionist" }),
        )
        .await;
    assert_eq!(s, 201, "{agent}");
    let agent = agent["id"].as_str().unwrap().to_string();
    let (_, runtime) = app
        .api_key(&owner, &tid, &["usage.write", "usage.read"])
        .await;
    Setup {
        app,
        admin,
        tid,
        owner,
        agent,
        runtime,
        at: (Utc::now() - Duration::minutes(1)).to_rfc3339(),
    }
}

impl Setup {
    fn record(&self, id: &str, model: &str, input: i64, output: i64) -> Value {
        json!({
            "id": id, "agent_id": self.agent, "provider": "openai", "model": model,
            "input_tokens": input, "output_tokens": output,
            "occurred_at": self.at,
        })
    }

    async fn ingest(&self, records: Vec<Value>) -> (u16, Value) {
        self.app
            .post(
                &format!("/v1/tenants/{}/usage", self.tid),
                &self.runtime,
                json!({ "records": records }),
            )
            .await
    }

    /// A series, once the rollups show every batch recorded so far.
    async fn series(&self, query: &str) -> Value {
        self.app.projected("ledger", "UsageRecorded").await;
        let (s, body) = self
            .app
            .get(
                &format!("/v1/tenants/{}/usage?{query}", self.tid),
                &self.runtime,
            )
            .await;
        assert_eq!(s, 200, "{body}");
        body
    }

    async fn daily(&self) -> Vec<(String, i64, i64, i64)> {
        self.app.projected("ledger", "UsageRecorded").await;
        sqlx::query_as(
            "SELECT model, records, input_tokens, cost_micros FROM usage_daily \
              WHERE tenant_id = $1::uuid ORDER BY model",
        )
        .bind(&self.tid)
        .fetch_all(&self.app.pool)
        .await
        .unwrap()
    }
}

#[tokio::test]
async fn records_are_costed_counted_once_and_rolled_up() {
    let s = setup().await;
    let batch = vec![
        s.record("call-1", "gpt-4o", 1_000, 500),
        s.record("call-2", "gpt-4o", 2_000, 0),
        s.record("call-3", "gpt-9-preview", 10, 10),
    ];
    let (status, body) = s.ingest(batch.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["recorded"].as_i64(), body["duplicates"].as_i64()),
        (Some(3), Some(0))
    );
    // Built-in gpt-4o: 2.50 per M input, 10.00 per M output (micro-USD).
    assert_eq!(body["records"][0]["cost_micros"], 2_500 + 5_000);
    assert_eq!(body["records"][0]["price_version"], 0);
    assert_eq!(body["records"][1]["cost_micros"], 5_000);
    // An unknown model is recorded at zero and flagged, never refused.
    assert_eq!(body["records"][2]["cost_micros"], 0);
    assert_eq!(body["records"][2]["unpriced"], true);

    // The same batch again: all duplicates, nothing counted twice.
    let (status, again) = s.ingest(batch).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        (again["recorded"].as_i64(), again["duplicates"].as_i64()),
        (Some(0), Some(3))
    );
    let by_model = s.series("group_by=model").await;
    assert_eq!(
        by_model["data"],
        json!([
            {"key": "openai/gpt-4o", "records": 2, "requests": 2, "input_tokens": 3000,
             "output_tokens": 500, "cached_input_tokens": 0, "cost_micros": 12500,
             "unpriced_records": 0},
            {"key": "openai/gpt-9-preview", "records": 1, "requests": 1, "input_tokens": 10,
             "output_tokens": 10, "cached_input_tokens": 0, "cost_micros": 0,
             "unpriced_records": 1}
        ])
    );
    let by_day = s.series("group_by=day").await;
    assert_eq!(by_day["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        by_day["data"][0]["key"],
        Utc::now().date_naive().to_string()
    );
    assert_eq!(by_day["data"][0]["cost_micros"], 12_500);
    let by_agent = s
        .series(&format!("group_by=agent&agent_id={}", s.agent))
        .await;
    assert_eq!(by_agent["data"][0]["key"], s.agent.as_str());

    // CSV, the same numbers.
    let r = s
        .app
        .client
        .get(
            s.app
                .url(&format!("/v1/tenants/{}/usage?group_by=model", s.tid)),
        )
        .bearer_auth(&s.runtime)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let csv = r.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "model,records,requests,input_tokens,output_tokens,cached_input_tokens,cost_micros,unpriced_records");
    assert_eq!(lines[1], "openai/gpt-4o,2,2,3000,500,0,12500,0");
    assert_eq!(lines.len(), 3);

    // Rebuilt from the log, the rollups come out the same.
    let live = s.daily().await;
    for projection in s.app.projections() {
        if projection.name() == "usage" {
            runtime::rebuild(&s.app.pool, projection.as_ref(), 1)
                .await
                .unwrap();
        }
    }
    assert_eq!(s.daily().await, live);

    // Platform admins see every tenant's totals.
    let (status, totals) = s.app.get("/v1/admin/usage", &s.admin).await;
    assert_eq!(status, 200);
    assert_eq!(totals["data"][0]["tenant_id"], s.tid.as_str());
    assert_eq!(totals["data"][0]["cost_micros"], 12_500);
}

#[tokio::test]
async fn an_id_with_other_content_refuses_the_whole_batch_and_bad_items_are_named() {
    let s = setup().await;
    let (status, _) = s.ingest(vec![s.record("call-1", "gpt-4o", 1_000, 0)]).await;
    assert_eq!(status, 200);
    // call-1 again with other tokens: 409, and call-2 of that batch is not recorded.
    let (status, body) = s
        .ingest(vec![
            s.record("call-2", "gpt-4o", 5, 5),
            s.record("call-1", "gpt-4o", 9_999, 0),
        ])
        .await;
    assert_eq!((status, code(&body)), (409, "usage_id_conflict"), "{body}");
    assert_eq!(body["error"]["details"]["ids"], json!(["call-1"]));
    assert_eq!(s.daily().await[0].1, 1, "call-2 was not recorded");

    let mut bad = s.record("ok-too", "gpt-4o", 1, 1);
    bad["occurred_at"] = json!((Utc::now() - Duration::days(40)).to_rfc3339());
    let (status, body) = s
        .ingest(vec![
            s.record("fine", "gpt-4o", 1, 1),
            json!({"id": "has space", "agent_id": s.agent, "provider": "nobody", "model": "m",
                   "input_tokens": -1, "occurred_at": Utc::now().to_rfc3339()}),
            bad,
            s.record("fine", "gpt-4o", 2, 2),
        ])
        .await;
    assert_eq!((status, code(&body)), (422, "validation_failed"), "{body}");
    let fields: Vec<String> = body["error"]["details"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{}:{}",
                f["field"].as_str().unwrap(),
                f["code"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        fields,
        [
            "records[1].id:invalid_usage_id",
            "records[1].provider:unknown_provider",
            "records[1].input_tokens:invalid_count",
            "records[2].occurred_at:invalid_occurred_at",
            "records[2].id:duplicate_in_batch",
        ]
    );
    assert_eq!(s.daily().await[0].1, 1, "nothing of the batch was recorded");

    // Agents: another tenant's (or none) is unknown; a paused one refuses.
    let mut stranger = s.record("who", "gpt-4o", 1, 1);
    stranger["agent_id"] = json!(uuid::Uuid::now_v7());
    let (status, body) = s.ingest(vec![stranger]).await;
    assert_eq!((status, code(&body)), (422, "validation_failed"));
    assert_eq!(
        body["error"]["details"]["fields"][0]["code"],
        "unknown_agent"
    );
    let (status, _) = s
        .app
        .post(
            &format!("/v1/tenants/{}/agents/{}/pause", s.tid, s.agent),
            &s.owner,
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = s.ingest(vec![s.record("paused", "gpt-4o", 1, 1)]).await;
    assert_eq!((status, code(&body)), (409, "agent_paused"));
    assert_eq!(body["error"]["details"]["status"], "paused");
}

#[tokio::test]
async fn concurrent_overlapping_batches_count_each_record_once() {
    let s = setup().await;
    // Eight clients send batches that overlap: ids 0..60 in windows.
    let batches: Vec<Vec<Value>> = (0..8)
        .map(|c| {
            (c * 5..c * 5 + 20)
                .map(|i| s.record(&format!("r-{i}"), "gpt-4o", 100, 10))
                .collect()
        })
        .collect();
    let sends = batches.into_iter().map(|b| s.ingest(b));
    let answers = futures_util::future::join_all(sends).await;
    let mut recorded = 0;
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        recorded += body["recorded"].as_i64().unwrap();
    }
    let unique = 7 * 5 + 20;
    assert_eq!(recorded, unique, "each id recorded by exactly one batch");
    let totals = s.series("group_by=model").await;
    assert_eq!(totals["data"][0]["records"], unique);
    assert_eq!(totals["data"][0]["input_tokens"], unique * 100);
}

#[tokio::test]
async fn a_new_price_book_version_costs_new_usage_and_leaves_recorded_costs_alone() {
    let s = setup().await;
    let (status, first) = s
        .ingest(vec![s.record("before", "gpt-4o", 1_000_000, 0)])
        .await;
    assert_eq!(status, 200);
    assert_eq!(first["records"][0]["cost_micros"], 2_500_000);
    let (status, published) = s
        .app
        .post(
            "/v1/admin/price-book",
            &s.admin,
            json!({"currency": "usd", "prices": [
                {"provider": "openai", "model": "gpt-4o", "input_per_mtok": 5_000_000,
                 "output_per_mtok": 20_000_000},
                {"provider": "openai", "model": "*", "input_per_mtok": 1_000_000,
                 "output_per_mtok": 1_000_000}
            ]}),
        )
        .await;
    assert_eq!(status, 201, "{published}");
    assert_eq!(published["version"], 1);
    let mut after = s.record("after", "gpt-4o", 1_000_000, 0);
    after["occurred_at"] = json!((Utc::now() + Duration::seconds(1)).to_rfc3339());
    let (_, second) = s.ingest(vec![after]).await;
    assert_eq!(second["records"][0]["cost_micros"], 5_000_000);
    assert_eq!(second["records"][0]["price_version"], 1);
    // The provider-wide price now covers a model the built-in book lacked.
    let mut other = s.record("other", "gpt-9-preview", 1_000_000, 0);
    other["occurred_at"] = json!((Utc::now() + Duration::seconds(1)).to_rfc3339());
    let (_, third) = s.ingest(vec![other]).await;
    assert_eq!(third["records"][0]["cost_micros"], 1_000_000);
    assert_eq!(third["records"][0]["unpriced"], false);
    // The recorded cost of "before" is what it was.
    let recorded: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT (r->>'cost_micros')::int8, (r->>'price_version')::int8 FROM events, \
                jsonb_array_elements(payload->'records') r \
          WHERE event_type = 'UsageRecorded' AND r->>'id' = 'before'",
    )
    .fetch_all(&s.app.pool)
    .await
    .unwrap();
    assert_eq!(recorded, [(2_500_000, 0)]);
    let (_, book) = s.app.get("/v1/admin/price-book", &s.admin).await;
    let versions: Vec<i64> = book["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, [1, 0]);
    // A version cannot take effect before the one it follows.
    let (status, body) = s
        .app
        .post(
            "/v1/admin/price-book",
            &s.admin,
            json!({"currency": "usd", "effective_from": "2020-01-01T00:00:00Z", "prices": []}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (422, "price_book_effective_too_early")
    );
}
