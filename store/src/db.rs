//! Connecting to Postgres: create the database when missing, apply migrations.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

/// Every migration under `migrations/`, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("DATABASE_URL is not a valid Postgres URL: {0}")]
    BadUrl(sqlx::Error),
    #[error("cannot reach the database at {target}: {source}")]
    Unreachable { target: String, source: sqlx::Error },
    #[error("cannot create database {name}: {source}")]
    Create { name: String, source: sqlx::Error },
    #[error("applying migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

fn options(url: &str) -> Result<PgConnectOptions, DbError> {
    PgConnectOptions::from_str(url)
        .map(|o| o.disable_statement_logging())
        .map_err(DbError::BadUrl)
}

fn describe(o: &PgConnectOptions) -> String {
    format!("{}:{}", o.get_host(), o.get_port())
}

/// Create the database named in `url` if it does not exist yet.
pub async fn ensure_database(url: &str) -> Result<(), DbError> {
    let opts = options(url)?;
    let name = opts.get_database().unwrap_or("postgres").to_string();
    let admin = opts.clone().database("postgres");
    let mut conn = tokio::time::timeout(Duration::from_secs(10), admin.connect())
        .await
        .map_err(|_| DbError::Unreachable {
            target: describe(&opts),
            source: sqlx::Error::PoolTimedOut,
        })?
        .map_err(|source| DbError::Unreachable {
            target: describe(&opts),
            source,
        })?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut conn)
            .await
            .map_err(|source| DbError::Unreachable {
                target: describe(&opts),
                source,
            })?;
    if !exists {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        let created = sqlx::query(&format!("CREATE DATABASE {quoted}"))
            .execute(&mut conn)
            .await;
        match created {
            Ok(_) => tracing::info!(database = %name, "created the database"),
            // Another process created it at the same moment.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
            Err(source) => return Err(DbError::Create { name, source }),
        }
    }
    let _ = conn.close().await;
    Ok(())
}

/// A pooled connection idle longer than this is pinged before it is handed
/// out. sqlx's default pings on *every* acquire, a second round trip per
/// query. A connection in steady use was just known alive (sqlx also pings
/// it when it comes back to the pool); one that died in between fails the
/// query that finds out, and sqlx discards it.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(30);

pub async fn connect(
    url: &str,
    max_connections: u32,
    acquire_timeout: Duration,
) -> Result<PgPool, DbError> {
    let opts = options(url)?;
    PgPoolOptions::new()
        .max_connections(max_connections)
        // `TENANTRY_DATABASE_ACQUIRE_TIMEOUT`: sqlx retries a refused
        // connect until then, so while the database is down a request
        // waits this long before it is answered 503 service_unavailable.
        .acquire_timeout(acquire_timeout)
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_IF_IDLE_FOR {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        .connect_with(opts.clone())
        .await
        .map_err(|source| DbError::Unreachable {
            target: describe(&opts),
            source,
        })
}

/// Create if needed, connect, migrate: what `serve` and `migrate` do first.
pub async fn prepare(
    url: &str,
    max_connections: u32,
    acquire_timeout: Duration,
) -> Result<PgPool, DbError> {
    ensure_database(url).await?;
    let pool = connect(url, max_connections, acquire_timeout).await?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}
