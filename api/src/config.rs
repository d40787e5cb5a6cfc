//! Configuration from environment variables (documented in the README).
//! A wrong value stops the process with one line naming the variable.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::secret_file::Generated;
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

#[derive(Debug, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

fn bad(variable: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        message: message.into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub jwt_secret: SecretString,
    /// The key of the email addresses' keyed hashes (`TENANTRY_LOOKUP_KEY`):
    /// how sign-in, uniqueness and invitations find an address that no
    /// table holds. Changing it loses every account's email; keep it.
    pub lookup_key: SecretString,
    pub bootstrap_admin_email: Option<String>,
    pub bootstrap_admin_password: Option<SecretString>,
    pub public_url: String,
    pub log_format: LogFormat,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub projector_poll: Duration,
    pub request_timeout: Duration,
    /// Master keys of the provider-key vault; the first is active.
    pub master_keys: std::sync::Arc<crate::vault::MasterKeys>,
    /// Ed25519 keys that sign checkpoints of the tenants' chains; the first signs.
    pub audit_keys: std::sync::Arc<crate::audit_keys::AuditKeys>,
    /// A tenant's chain is signed once its head moved this many events
    /// past its last checkpoint, or at all once `checkpoint_interval` passed.
    pub checkpoint_every_events: u32,
    pub checkpoint_interval: Duration,
    /// Live event streams open at once in this process, per tenant and per
    /// caller (`TENANTRY_STREAMS_PER_TENANT`, `TENANTRY_STREAMS_PER_CALLER`).
    pub streams_per_tenant: u32,
    pub streams_per_caller: u32,
    /// How often an idle stream sends a heartbeat, and how often any stream
    /// checks that its caller may still read it (`TENANTRY_STREAM_HEARTBEAT`).
    pub stream_heartbeat: Duration,
    /// How long one stream lasts before the server ends it, and the client
    /// reconnects with `Last-Event-ID` (`TENANTRY_STREAM_MAX_AGE`).
    pub stream_max_age: Duration,
    /// `None`: emails are written to the log instead of sent.
    pub smtp_url: Option<SecretString>,
    pub email_from: String,
    pub invitation_ttl: Duration,
    /// How often the expiry job looks for invitations that ran out.
    pub invitation_expiry_scan: Duration,
    pub email_max_attempts: u32,
    /// The first retry's delay; each next one doubles.
    pub email_retry_base: Duration,
    /// Requests per minute per client address on public invitation routes.
    pub public_rate_limit: u32,
    /// Sign-in and refresh requests per minute per client address.
    pub sign_in_rate_limit: u32,
    /// Failed sign-ins per account within `sign_in_failure_window` before
    /// the account's sign-ins are answered 429 until the window ends.
    pub sign_in_max_failures: u32,
    pub sign_in_failure_window: Duration,
    /// How long a request waits for a database connection before it is
    /// answered 503 (while the database is down, say).
    pub database_acquire_timeout: Duration,
    /// The bearer token `GET /metrics` answers to (`TENANTRY_METRICS_TOKEN`;
    /// unset: generated and kept in the data directory as `metrics_token`).
    pub metrics_token: SecretString,
    /// Stripe webhook endpoint secrets (`TENANTRY_STRIPE_WEBHOOK_SECRETS`,
    /// comma-separated: during a rotation both are accepted). Empty: the
    /// webhook endpoint answers 409 `billing_not_configured`.
    pub stripe_webhook_secrets: Vec<SecretString>,
    /// Stripe's API (`TENANTRY_STRIPE_SECRET_KEY`; unset: manual mode,
    /// checkout and portal answer 409 `billing_not_configured`).
    pub stripe: Option<StripeSettings>,
    /// How often the leader compares Tenantry's billing with Stripe's
    /// (`TENANTRY_BILLING_RECONCILE_INTERVAL`; only with Stripe configured).
    pub billing_reconcile_interval: Duration,
    /// How often expired credit reservations are given back
    /// (`TENANTRY_RESERVATION_SWEEP`).
    pub reservation_sweep: Duration,
    /// How long a tenant whose payment failed (`past_due`) may still make
    /// changes before they answer 402 (`TENANTRY_BILLING_GRACE`).
    pub billing_grace: Duration,
    /// `/readyz` says not ready while a projection of this instance is
    /// further behind the log than this.
    pub projection_max_lag: Duration,
    /// Secrets generated for unset settings, not yet kept on disk.
    generated: Vec<Generated>,
}

/// How Tenantry reaches Stripe's API.
#[derive(Debug, Clone)]
pub struct StripeSettings {
    pub secret_key: SecretString,
    /// `TENANTRY_STRIPE_API_BASE`: a Stripe-compatible server (tests, a
    /// local mock); unset: Stripe.
    pub api_base: Option<String>,
    /// Where Checkout sends the customer after paying, and after giving up
    /// (`TENANTRY_STRIPE_SUCCESS_URL`, `TENANTRY_STRIPE_CANCEL_URL`), and
    /// where the billing portal returns to (`TENANTRY_STRIPE_RETURN_URL`).
    /// Default: the public URL.
    pub success_url: String,
    pub cancel_url: String,
    pub return_url: String,
}

/// The server's database connections at most.
pub const POOL_SIZE: u32 = 16;

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/tenantry";
pub const JWT_ISSUER: &str = "tenantry";
pub const JWT_AUDIENCE: &str = "tenantry-api";

/// Parse `250ms`, `30s`, `15m`, `2h`, `7d` or a bare number of seconds.
pub fn parse_duration(raw: &str) -> Option<Duration> {
    let raw = raw.trim();
    let (digits, unit) = match raw.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => raw.split_at(i),
        None => (raw, "s"),
    };
    let n: u64 = digits.parse().ok()?;
    let millis = match unit {
        "ms" => n,
        "s" => n.checked_mul(1000)?,
        "m" => n.checked_mul(60_000)?,
        "h" => n.checked_mul(3_600_000)?,
        "d" => n.checked_mul(86_400_000)?,
        _ => return None,
    };
    (millis > 0).then(|| Duration::from_millis(millis))
}

/// `TENANTRY_LOG_FORMAT`, on its own: the logger is set up from it before
/// the rest of the configuration is read, so that what reading it says (a
/// generated secret's warning) reaches the log.
pub fn log_format(get: &impl Fn(&str) -> Option<String>) -> Result<LogFormat, ConfigError> {
    match get("TENANTRY_LOG_FORMAT").as_deref() {
        None | Some("text") => Ok(LogFormat::Text),
        Some("json") => Ok(LogFormat::Json),
        Some(other) => Err(bad(
            "TENANTRY_LOG_FORMAT",
            format!("{other:?} is not text or json"),
        )),
    }
}

/// A variable of the process environment (unset when empty).
pub fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Config {
    /// Read the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(env_var)
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let database_url = get("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string());
        if !(database_url.starts_with("postgres://") || database_url.starts_with("postgresql://")) {
            return Err(bad("DATABASE_URL", "must be a postgres:// URL"));
        }
        let listen_raw = get("TENANTRY_LISTEN").unwrap_or_else(|| "127.0.0.1:8080".to_string());
        let listen = listen_raw.parse().map_err(|_| {
            bad(
                "TENANTRY_LISTEN",
                format!("{listen_raw:?} is not an address like 127.0.0.1:8080"),
            )
        })?;
        let data_dir =
            PathBuf::from(get("TENANTRY_DATA_DIR").unwrap_or_else(|| "./data".to_string()));
        let duration = |var: &'static str, default: &str| {
            let raw = get(var).unwrap_or_else(|| default.to_string());
            parse_duration(&raw).ok_or_else(|| {
                bad(
                    var,
                    format!("{raw:?} is not a duration like 15m, 7d or 30s"),
                )
            })
        };
        let access_token_ttl = duration("TENANTRY_ACCESS_TOKEN_TTL", "15m")?;
        let refresh_token_ttl = duration("TENANTRY_REFRESH_TOKEN_TTL", "30d")?;
        let request_timeout = duration("TENANTRY_REQUEST_TIMEOUT", "30s")?;
        let projector_poll = match get("TENANTRY_PROJECTOR_POLL_MS") {
            None => Duration::from_secs(1),
            Some(raw) => raw
                .parse::<u64>()
                .ok()
                .filter(|ms| *ms > 0)
                .map(Duration::from_millis)
                .ok_or_else(|| {
                    bad(
                        "TENANTRY_PROJECTOR_POLL_MS",
                        "must be a positive number of milliseconds",
                    )
                })?,
        };
        let log_format = log_format(&get)?;
        // A configured secret: at least 32 characters.
        let configured_secret = |var: &'static str| match get(var) {
            Some(s) if s.len() < 32 => Err(bad(var, "must be at least 32 characters")),
            Some(s) => Ok(Some(SecretString::from(s))),
            None => Ok(None),
        };
        let configured_jwt_secret = configured_secret("TENANTRY_JWT_SECRET")?;
        let configured_lookup_key = configured_secret("TENANTRY_LOOKUP_KEY")?;
        let configured_metrics_token = configured_secret("TENANTRY_METRICS_TOKEN")?;
        let bootstrap_admin_email = get("TENANTRY_BOOTSTRAP_ADMIN_EMAIL");
        let bootstrap_admin_password =
            get("TENANTRY_BOOTSTRAP_ADMIN_PASSWORD").map(SecretString::from);
        if bootstrap_admin_email.is_some() != bootstrap_admin_password.is_some() {
            return Err(bad(
                "TENANTRY_BOOTSTRAP_ADMIN_PASSWORD",
                "TENANTRY_BOOTSTRAP_ADMIN_EMAIL and TENANTRY_BOOTSTRAP_ADMIN_PASSWORD go together",
            ));
        }
        let public_url = get("TENANTRY_PUBLIC_URL").unwrap_or_else(|| format!("http://{listen}"));
        let configured_audit_keys = get("TENANTRY_AUDIT_SIGNING_KEYS")
            .map(|raw| crate::audit_keys::AuditKeys::parse(&raw))
            .transpose()
            .map_err(|e| bad("TENANTRY_AUDIT_SIGNING_KEYS", e))?;
        let configured_master_keys = get("TENANTRY_MASTER_KEYS")
            .map(|raw| crate::vault::MasterKeys::parse(&raw))
            .transpose()
            .map_err(|e| bad("TENANTRY_MASTER_KEYS", e))?;
        let smtp_url =
            match get("TENANTRY_SMTP_URL") {
                None => None,
                Some(url) if url.starts_with("smtp://") || url.starts_with("smtps://") => {
                    Some(SecretString::from(url))
                }
                Some(_) => return Err(bad(
                    "TENANTRY_SMTP_URL",
                    "must start with smtp:// (plain, or ?tls=required for STARTTLS) or smtps://",
                )),
            };
        let email_from = get("TENANTRY_EMAIL_FROM")
            .unwrap_or_else(|| "Tenantry <no-reply@tenantry.localhost>".to_string());
        if email_from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(bad(
                "TENANTRY_EMAIL_FROM",
                format!("{email_from:?} is not an address like Acme <no-reply@acme.io>"),
            ));
        }
        let invitation_ttl = duration("TENANTRY_INVITATION_TTL", "7d")?;
        let invitation_expiry_scan = duration("TENANTRY_INVITATION_EXPIRY_SCAN", "30s")?;
        let email_retry_base = duration("TENANTRY_EMAIL_RETRY_BASE", "2s")?;
        let positive = |var: &'static str, default: u32| -> Result<u32, ConfigError> {
            match get(var) {
                None => Ok(default),
                Some(raw) => raw
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| bad(var, "must be a positive whole number")),
            }
        };
        let email_max_attempts = positive("TENANTRY_EMAIL_MAX_ATTEMPTS", 8)?;
        let checkpoint_every_events = positive("TENANTRY_CHECKPOINT_EVERY_EVENTS", 1000)?;
        let checkpoint_interval = duration("TENANTRY_CHECKPOINT_INTERVAL", "10m")?;
        let streams_per_tenant = positive("TENANTRY_STREAMS_PER_TENANT", 100)?;
        let streams_per_caller = positive("TENANTRY_STREAMS_PER_CALLER", 5)?;
        let stream_heartbeat = duration("TENANTRY_STREAM_HEARTBEAT", "15s")?;
        let stream_max_age = duration("TENANTRY_STREAM_MAX_AGE", "1h")?;
        let public_rate_limit = positive("TENANTRY_PUBLIC_RATE_LIMIT", 30)?;
        let sign_in_rate_limit = positive("TENANTRY_SIGN_IN_RATE_LIMIT", 60)?;
        let sign_in_max_failures = positive("TENANTRY_SIGN_IN_MAX_FAILURES", 10)?;
        let sign_in_failure_window = duration("TENANTRY_SIGN_IN_FAILURE_WINDOW", "15m")?;
        let database_acquire_timeout = duration("TENANTRY_DATABASE_ACQUIRE_TIMEOUT", "5s")?;
        // Unset secrets come from the data directory, or are generated in
        // memory; parsing writes nothing (the composition root keeps them:
        // `persist_generated`).
        let mut generated = Vec::new();
        let mut or_kept = |configured: Option<SecretString>, file: &str| {
            configured.unwrap_or_else(|| {
                let (secret, new) = kept_or_new_secret(&data_dir, file);
                generated.extend(new);
                secret
            })
        };
        let jwt_secret = or_kept(configured_jwt_secret, "jwt_secret");
        let lookup_key = or_kept(configured_lookup_key, "lookup_key");
        let metrics_token = or_kept(configured_metrics_token, "metrics_token");
        let projection_max_lag = duration("TENANTRY_READY_MAX_PROJECTION_LAG", "30s")?;
        let billing_grace = duration("TENANTRY_BILLING_GRACE", "7d")?;
        let stripe_webhook_secrets = get("TENANTRY_STRIPE_WEBHOOK_SECRETS")
            .map(|raw| {
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| SecretString::from(s.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let billing_reconcile_interval = duration("TENANTRY_BILLING_RECONCILE_INTERVAL", "1h")?;
        let reservation_sweep = duration("TENANTRY_RESERVATION_SWEEP", "10s")?;
        let stripe = match get("TENANTRY_STRIPE_SECRET_KEY") {
            None => None,
            Some(key) if !(key.starts_with("sk_") || key.starts_with("rk_")) || key.len() < 8 => {
                return Err(bad(
                    "TENANTRY_STRIPE_SECRET_KEY",
                    "must be a Stripe secret or restricted key (sk_... or rk_...)",
                ))
            }
            Some(key) => {
                let url = |var: &'static str| -> Result<Option<String>, ConfigError> {
                    match get(var) {
                        None => Ok(None),
                        Some(u) if u.starts_with("http://") || u.starts_with("https://") => {
                            Ok(Some(u.trim_end_matches('/').to_string()))
                        }
                        Some(_) => Err(bad(var, "must be an http:// or https:// URL")),
                    }
                };
                Some(StripeSettings {
                    secret_key: SecretString::from(key),
                    api_base: url("TENANTRY_STRIPE_API_BASE")?,
                    success_url: url("TENANTRY_STRIPE_SUCCESS_URL")?
                        .unwrap_or_else(|| format!("{public_url}/billing/success")),
                    cancel_url: url("TENANTRY_STRIPE_CANCEL_URL")?
                        .unwrap_or_else(|| format!("{public_url}/billing/cancel")),
                    return_url: url("TENANTRY_STRIPE_RETURN_URL")?
                        .unwrap_or_else(|| format!("{public_url}/billing")),
                })
            }
        };
        let master_keys = match configured_master_keys {
            Some(keys) => keys,
            None => {
                let (keys, new) = crate::vault::MasterKeys::generated(&data_dir)
                    .map_err(|e| bad("TENANTRY_MASTER_KEYS", e))?;
                generated.extend(new);
                keys
            }
        };
        let audit_keys = match configured_audit_keys {
            Some(keys) => keys,
            None => {
                let (keys, new) = crate::audit_keys::AuditKeys::generated(&data_dir)
                    .map_err(|e| bad("TENANTRY_AUDIT_SIGNING_KEYS", e))?;
                generated.extend(new);
                keys
            }
        };
        Ok(Self {
            database_url,
            listen,
            data_dir,
            jwt_secret,
            lookup_key,
            bootstrap_admin_email,
            bootstrap_admin_password,
            public_url,
            log_format,
            access_token_ttl,
            refresh_token_ttl,
            projector_poll,
            request_timeout,
            master_keys: std::sync::Arc::new(master_keys),
            audit_keys: std::sync::Arc::new(audit_keys),
            checkpoint_every_events,
            checkpoint_interval,
            streams_per_tenant,
            streams_per_caller,
            stream_heartbeat,
            stream_max_age,
            smtp_url,
            email_from,
            invitation_ttl,
            invitation_expiry_scan,
            email_max_attempts,
            email_retry_base,
            public_rate_limit,
            sign_in_rate_limit,
            sign_in_max_failures,
            sign_in_failure_window,
            database_acquire_timeout,
            metrics_token,
            projection_max_lag,
            stripe_webhook_secrets,
            stripe,
            billing_reconcile_interval,
            reservation_sweep,
            billing_grace,
            generated,
        })
    }

    /// Keep the secrets this configuration generated in the data directory
    /// (mode 0600), warning for each; the composition root calls it before
    /// anything uses them. Idempotent: a secret already kept is left alone.
    pub fn persist_generated(&self) -> Result<(), ConfigError> {
        for secret in &self.generated {
            secret.persist().map_err(|e| {
                bad(
                    "TENANTRY_DATA_DIR",
                    format!(
                        "cannot keep a generated secret in {}: {e}",
                        secret.path.display()
                    ),
                )
            })?;
        }
        Ok(())
    }

    pub fn jwt_secret_bytes(&self) -> &[u8] {
        self.jwt_secret.expose_secret().as_bytes()
    }

    pub fn lookup_key_bytes(&self) -> &[u8] {
        self.lookup_key.expose_secret().as_bytes()
    }
}

/// The secret kept in `data_dir/name`, or a new one (with what the
/// composition root must keep) when there is none yet. Reads, never writes.
fn kept_or_new_secret(data_dir: &Path, name: &str) -> (SecretString, Option<Generated>) {
    let path = data_dir.join(name);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim().to_string();
        if existing.len() >= 32 {
            return (SecretString::from(existing), None);
        }
    }
    let mut bytes = zeroize::Zeroizing::new([0u8; 48]);
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, bytes.as_mut());
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_ref());
    let generated = Generated {
        path,
        contents: zeroize::Zeroizing::new(secret.clone()),
        warning: "generated a secret because none was configured; set it explicitly in production",
    };
    (SecretString::from(secret), Some(generated))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("7d"), Some(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("45"), Some(Duration::from_secs(45)));
        assert_eq!(parse_duration("0s"), None);
        assert_eq!(parse_duration("5y"), None);
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let secret = ("TENANTRY_JWT_SECRET", "0123456789abcdef0123456789abcdef");
        let err = config(&[secret, ("TENANTRY_LISTEN", "nowhere")]).unwrap_err();
        assert_eq!(err.variable, "TENANTRY_LISTEN");
        let err = config(&[secret, ("DATABASE_URL", "mysql://x")]).unwrap_err();
        assert_eq!(err.variable, "DATABASE_URL");
        let err = config(&[("TENANTRY_JWT_SECRET", "short")]).unwrap_err();
        assert_eq!(err.variable, "TENANTRY_JWT_SECRET");
        let err = config(&[secret, ("TENANTRY_BOOTSTRAP_ADMIN_EMAIL", "a@b.io")]).unwrap_err();
        assert_eq!(err.variable, "TENANTRY_BOOTSTRAP_ADMIN_PASSWORD");
    }

    #[test]
    fn an_unset_jwt_secret_is_generated_once_with_private_permissions() {
        let dir = std::env::temp_dir().join(format!("tenantry-cfg-{}", uuid::Uuid::now_v7()));
        let dir_s = dir.to_string_lossy().to_string();
        let first = config(&[("TENANTRY_DATA_DIR", &dir_s)]).unwrap();
        assert!(!dir.exists(), "parsing writes nothing");
        first.persist_generated().unwrap();
        let second = config(&[("TENANTRY_DATA_DIR", &dir_s)]).unwrap();
        assert_eq!(
            first.jwt_secret.expose_secret(),
            second.jwt_secret.expose_secret()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("jwt_secret"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
