//! The `tenantry` binary as an operator meets it: one clear line and a
//! non-zero exit on bad configuration; the admin and projection commands.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use sqlx::{Connection, PgConnection};

const BIN: &str = env!("CARGO_BIN_EXE_tenantry");

fn admin_url() -> String {
    std::env::var("TENANTRY_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database name that `tenantry` itself will create; dropped on drop.
struct Db(String);

impl Db {
    fn new() -> Self {
        Self(format!(
            "tenantry_test_cli_{}",
            uuid::Uuid::now_v7().simple()
        ))
    }
    fn url(&self) -> String {
        let base = admin_url();
        let (prefix, _) = base.rsplit_once('/').unwrap_or((&base, ""));
        format!("{prefix}/{}", self.0)
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let name = self.0.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut c) = PgConnection::connect(&admin_url()).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut c)
                        .await;
                }
            });
        })
        .join();
    }
}

/// Run the binary as one process of an installation: the secrets its
/// processes share are set (each run has its own data directory).
fn tenantry(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let shared = [
        ("TENANTRY_LOOKUP_KEY", LOOKUP_KEY),
        (
            "TENANTRY_MASTER_KEYS",
            "cli:Y2xpLW1hc3Rlci1rZXktY2xpLW1hc3Rlci1rZXktMDE=",
        ),
    ];
    tenantry_with(args, &[&shared[..], env].concat(), stdin)
}

/// Run the binary with exactly `env` (and a fresh data directory).
fn tenantry_with(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let data_dir = std::env::temp_dir().join(format!("tenantry-cli-{}", uuid::Uuid::now_v7()));
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .env("TENANTRY_DATA_DIR", &data_dir)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn tenantry");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    let _ = std::fs::remove_dir_all(data_dir);
    out
}

const LOOKUP_KEY: &str = "cli-lookup-key-cli-lookup-key-0123";

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[test]
fn a_bad_setting_stops_with_one_line_naming_the_variable() {
    for (var, value) in [
        ("DATABASE_URL", "mysql://nope"),
        ("TENANTRY_LISTEN", "not-an-address"),
        ("TENANTRY_LOG_FORMAT", "xml"),
        ("TENANTRY_MASTER_KEYS", "k1:dG9vLXNob3J0"),
        ("TENANTRY_SMTP_URL", "http://mail.example.com"),
        ("TENANTRY_EMAIL_FROM", "not an address"),
        ("TENANTRY_INVITATION_TTL", "forever"),
        ("TENANTRY_PUBLIC_RATE_LIMIT", "0"),
    ] {
        let out = tenantry(&["migrate"], &[(var, value)], None);
        assert_eq!(out.status.code(), Some(2), "{var}");
        let err = stderr(&out);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(var), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn an_unreachable_database_stops_with_one_line() {
    let out = tenantry(
        &["migrate"],
        &[("DATABASE_URL", "postgres://postgres@127.0.0.1:1/nowhere")],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.lines()
            .any(|l| l.contains("cannot reach the database at 127.0.0.1:1")),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn an_address_in_use_stops_serve_with_one_line() {
    let db = Db::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = tenantry(
        &["serve"],
        &[("DATABASE_URL", &db.url()), ("TENANTRY_LISTEN", &addr)],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("TENANTRY_LISTEN: cannot listen on {addr}")),
        "{err}"
    );
}

#[test]
fn create_platform_admin_reads_the_password_from_stdin_and_rebuild_replays_it() {
    let db = Db::new();
    let url = db.url();
    let env = [("DATABASE_URL", url.as_str())];
    let create = |email: &str, env: &[(&str, &str)]| {
        tenantry(
            &[
                "admin",
                "create-platform-admin",
                "--email",
                email,
                "--name",
                "Ops",
            ],
            env,
            Some("s3cret-password\n"),
        )
    };
    let out = create("ops@x.io", &env);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("created platform admin"));
    assert!(!stderr(&out).contains("s3cret-password"));

    let again = create("OPS@x.io", &env);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("email_taken"));

    // Another lookup key would find nobody by their address: refused.
    let other = create(
        "ops@x.io",
        &[
            ("DATABASE_URL", url.as_str()),
            (
                "TENANTRY_LOOKUP_KEY",
                "another-lookup-key-another-lookup-key",
            ),
        ],
    );
    assert_eq!(other.status.code(), Some(1));
    assert!(
        stderr(&other).contains(
            "TENANTRY_LOOKUP_KEY: this database's email addresses were hashed with another lookup key"
        ),
        "{}",
        stderr(&other)
    );

    let out = tenantry(&["projections", "rebuild"], &env, None);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("rebuilt tenants") && stdout.contains("rebuilt users"),
        "{stdout}"
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (admin, hash): (bool, String) = rt.block_on(async {
        let mut c = PgConnection::connect(&url).await.unwrap();
        sqlx::query_as("SELECT u.is_platform_admin, c.password_hash FROM users_view u JOIN credentials c ON c.user_id = u.id WHERE u.email = 'ops@x.io'")
            .fetch_one(&mut c)
            .await
            .unwrap()
    });
    assert!(admin);
    assert!(hash.starts_with("$argon2id$"));

    let out = tenantry(&["projections", "rebuild", "nope"], &env, None);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("known: tenants, users"));
}

fn master(id: &str, byte: u8) -> String {
    use base64::Engine;
    format!(
        "{id}:{}",
        base64::engine::general_purpose::STANDARD.encode([byte; 32])
    )
}

#[test]
fn keys_rotate_rewraps_under_the_active_master_and_serve_refuses_missing_ids() {
    let db = Db::new();
    let url = db.url();
    let k1 = master("k1", 1);
    let out = tenantry(
        &["migrate"],
        &[("DATABASE_URL", &url), ("TENANTRY_MASTER_KEYS", &k1)],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));

    // Two data keys wrapped by k1, as the API would store them.
    let keys = tenantry_api::vault::MasterKeys::parse(&k1).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ids: Vec<uuid::Uuid> = (0..2).map(|_| uuid::Uuid::now_v7()).collect();
    rt.block_on(async {
        let mut c = PgConnection::connect(&url).await.unwrap();
        for id in &ids {
            let dk = tenantry_api::vault::DataKey::generate();
            let wrapped = tenantry_api::vault::wrap(keys.active(), *id, &dk).unwrap();
            sqlx::query("INSERT INTO data_keys (id, tenant_id, master_key_id, wrapped) VALUES ($1, $1, 'k1', $2)")
                .bind(id)
                .bind(wrapped)
                .execute(&mut c)
                .await
                .unwrap();
        }
    });

    let both = format!("{},{k1}", master("k2", 2));
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("TENANTRY_MASTER_KEYS", both.as_str()),
    ];
    let out = tenantry(&["keys", "rotate"], &env, None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "re-wrapped 2 data keys under master key k2"
    );
    let again = tenantry(&["keys", "rotate"], &env, None);
    assert_eq!(
        String::from_utf8_lossy(&again.stdout).trim(),
        "re-wrapped 0 data keys under master key k2"
    );
    let masters: Vec<String> = rt.block_on(async {
        let mut c = PgConnection::connect(&url).await.unwrap();
        sqlx::query_scalar("SELECT DISTINCT master_key_id FROM data_keys")
            .fetch_all(&mut c)
            .await
            .unwrap()
    });
    assert_eq!(masters, ["k2"]);

    // k2 is now required: a server configured without it refuses to start.
    let k3 = master("k3", 3);
    let out = tenantry(
        &["serve"],
        &[
            ("DATABASE_URL", &url),
            ("TENANTRY_MASTER_KEYS", &k3),
            ("TENANTRY_LISTEN", "127.0.0.1:0"),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("TENANTRY_MASTER_KEYS") && err.contains("k2"),
        "{err}"
    );
    assert!(!err.contains(&k3[3..]), "key material in an error: {err}");
}

/// Unset secrets are generated on first start, and a warning says so: the
/// logger is up before the configuration is read, so the warning is seen.
#[test]
fn a_generated_secret_is_announced_in_the_log() {
    let db = Db::new();
    let out = tenantry_with(&["migrate"], &[("DATABASE_URL", &db.url())], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("generated a secret because none was configured"),
        "{err}"
    );
    assert!(err.contains("generated a master key"), "{err}");
}

#[test]
fn billing_commands_without_stripe_say_so_in_one_line() {
    let db = Db::new();
    let env = [("DATABASE_URL", db.url())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for args in [
        &["billing", "reconcile", "--fix"][..],
        &["billing", "sync-plans"][..],
    ] {
        let out = tenantry(args, &env, None);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        let said: Vec<&str> = err.lines().filter(|l| l.starts_with("tenantry:")).collect();
        assert_eq!(said.len(), 1, "{err}");
        assert!(said[0].contains("billing_not_configured"), "{err}");
    }
    // A malformed key is a configuration error, naming the variable.
    let mut bad = env.clone();
    bad.push(("TENANTRY_STRIPE_SECRET_KEY", "pk_live_not_a_secret"));
    let out = tenantry(&["billing", "sync-plans"], &bad, None);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("TENANTRY_STRIPE_SECRET_KEY"));
    assert!(!stderr(&out).contains("pk_live_not_a_secret"));
}

/// A server process killed (SIGKILL) while batches of usage are being
/// ingested: after a restart every acknowledged batch is there whole, every
/// other batch is there whole or not at all, the rollups agree with what is
/// there, and sending everything again records each missing batch once.
#[test]
fn ingestion_survives_a_server_kill_mid_batch_with_nothing_lost_or_doubled() {
    use std::sync::{Arc, Mutex};
    let db = Db::new();
    let url = db.url();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let data_dir = std::env::temp_dir().join(format!("tenantry-kill-{}", uuid::Uuid::now_v7()));
    let serve = || {
        Command::new(BIN)
            .arg("serve")
            .env_clear()
            .env("DATABASE_URL", &url)
            .env("TENANTRY_LISTEN", format!("127.0.0.1:{port}"))
            .env("TENANTRY_DATA_DIR", &data_dir)
            .env("TENANTRY_BOOTSTRAP_ADMIN_EMAIL", "ops@kill.test")
            .env("TENANTRY_BOOTSTRAP_ADMIN_PASSWORD", "ops-password-123")
            .env("TENANTRY_PROJECTOR_POLL_MS", "100")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn tenantry serve")
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let ready = |client: reqwest::Client, base: String| async move {
        for _ in 0..300 {
            if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("the server did not become ready");
    };
    let mut server = serve();
    rt.block_on(ready(client.clone(), base.clone()));
    let post = |client: reqwest::Client, url: String, token: String, body: serde_json::Value| async move {
        client
            .post(url)
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .ok()
            .filter(|r| r.status().is_success())
    };
    let (tid, key, agent) = rt.block_on(async {
        let login: serde_json::Value = client
            .post(format!("{base}/v1/auth/login"))
            .json(&serde_json::json!({"email": "ops@kill.test", "password": "ops-password-123"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let admin = login["access_token"].as_str().unwrap().to_string();
        let json = |r: Option<reqwest::Response>| async move {
            r.expect("a setup request")
                .json::<serde_json::Value>()
                .await
                .unwrap()
        };
        let tenant = json(
            post(
                client.clone(),
                format!("{base}/v1/tenants"),
                admin.clone(),
                serde_json::json!({"name": "Kill"}),
            )
            .await,
        )
        .await;
        let tid = tenant["id"].as_str().unwrap().to_string();
        let agent = json(
            post(
                client.clone(),
                format!("{base}/v1/tenants/{tid}/agents"),
                admin.clone(),
                serde_json::json!({"name": "Runner"}),
            )
            .await,
        )
        .await;
        let key = json(
            post(
                client.clone(),
                format!("{base}/v1/tenants/{tid}/api-keys"),
                admin.clone(),
                serde_json::json!({"name": "runtime", "permissions": ["usage.write"]}),
            )
            .await,
        )
        .await;
        (
            tid,
            key["key"].as_str().unwrap().to_string(),
            agent["id"].as_str().unwrap().to_string(),
        )
    });
    const BATCHES: usize = 40;
    const PER_BATCH: usize = 200;
    let at = chrono::Utc::now().to_rfc3339();
    let batch =
        |n: usize| {
            let records: Vec<serde_json::Value> = (0..PER_BATCH)
            .map(|i| serde_json::json!({
                "id": format!("b{n}-{i}"), "agent_id": agent, "provider": "openai",
                "model": "gpt-4o", "input_tokens": 100, "output_tokens": 10, "occurred_at": at
            }))
            .collect();
            serde_json::json!({ "records": records })
        };
    let usage_url = format!("{base}/v1/tenants/{tid}/usage");
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    // Four clients send batches; the server is killed once a few are in.
    rt.block_on(async {
        let mut sends = Vec::new();
        for c in 0..4 {
            let (client, url, key, acked) = (
                client.clone(),
                usage_url.clone(),
                key.clone(),
                acknowledged.clone(),
            );
            let bodies: Vec<(usize, serde_json::Value)> =
                (c..BATCHES).step_by(4).map(|n| (n, batch(n))).collect();
            sends.push(tokio::spawn(async move {
                for (n, body) in bodies {
                    if post(client.clone(), url.clone(), key.clone(), body)
                        .await
                        .is_some()
                    {
                        acked.lock().unwrap().push(n);
                    }
                }
            }));
        }
        while acknowledged.lock().unwrap().len() < 6 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        server.kill().unwrap();
        server.wait().unwrap();
        for s in sends {
            let _ = s.await;
        }
    });
    let acked: Vec<usize> = acknowledged.lock().unwrap().clone();
    assert!(
        acked.len() < BATCHES,
        "the kill came after every batch: nothing was cut"
    );
    let mut server = serve();
    rt.block_on(ready(client.clone(), base.clone()));
    let per_batch = |url: String, tid: String| async move {
        let mut c = PgConnection::connect(&url).await.unwrap();
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT split_part(id, '-', 1), count(*) FROM usage_ids WHERE tenant_id = $1::uuid GROUP BY 1",
        )
        .bind(&tid)
        .fetch_all(&mut c)
        .await
        .unwrap();
        rows
    };
    let present = rt.block_on(per_batch(url.clone(), tid.clone()));
    for (batch, count) in &present {
        assert_eq!(*count, PER_BATCH as i64, "batch {batch} is there in part");
    }
    for n in &acked {
        assert!(
            present.iter().any(|(b, _)| *b == format!("b{n}")),
            "acknowledged batch {n} was lost"
        );
    }
    // Everything again: the batches that made it are duplicates, the rest recorded once.
    rt.block_on(async {
        for n in 0..BATCHES {
            let r = post(client.clone(), usage_url.clone(), key.clone(), batch(n)).await;
            assert!(r.is_some(), "resending batch {n} failed");
        }
    });
    let present = rt.block_on(per_batch(url.clone(), tid.clone()));
    assert_eq!(present.len(), BATCHES);
    // The rollups count each record once.
    let rolled = rt.block_on(async {
        let mut c = PgConnection::connect(&url).await.unwrap();
        for _ in 0..100 {
            let n: Option<i64> = sqlx::query_scalar(
                "SELECT sum(records)::int8 FROM usage_daily WHERE tenant_id = $1::uuid",
            )
            .bind(&tid)
            .fetch_one(&mut c)
            .await
            .unwrap();
            if n == Some((BATCHES * PER_BATCH) as i64) {
                return n;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        None
    });
    assert_eq!(rolled, Some((BATCHES * PER_BATCH) as i64));
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&data_dir);
}
