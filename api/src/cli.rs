//! The `tenantry` command line.

use std::io::Read;

use clap::{Parser, Subcommand};
use tenantry_domain::{Actor, EventMetadata, PLATFORM_TENANT};
use zeroize::Zeroizing;

use crate::app::{shutdown_signal, Application};
use crate::config::Config;
use crate::error::ApiError;
use crate::store::Store;

#[derive(Parser)]
#[command(
    name = "tenantry",
    version,
    about = "The multi-tenant control plane for SaaS platforms that sell AI agents"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Create the database if needed, apply migrations and serve the API.
    Serve,
    /// Create the database if needed and apply migrations, then exit.
    Migrate,
    /// Projection maintenance.
    Projections {
        #[command(subcommand)]
        command: ProjectionsCommand,
    },
    /// Platform administration.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Billing with Stripe: the plans' prices and reconciliation.
    Billing {
        #[command(subcommand)]
        command: BillingCommand,
    },
    /// Auditing: export a tenant's chain, verify an export (with no
    /// database) or the stored chain (docs/AUDIT.md).
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Provider-key vault maintenance.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Hash passwords in a tight loop with the server's argon2id parameters
    /// and print hashes per second: the benchmark harness's reference for
    /// sign-in, which is bound by the hash.
    #[command(hide = true)]
    HashRate {
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        #[arg(long, default_value_t = 1)]
        threads: usize,
    },
}

#[derive(Subcommand)]
pub enum BillingCommand {
    /// Compare Tenantry's billing with Stripe's (customers, subscriptions,
    /// invoices) and print every difference; exits 1 when there is drift.
    Reconcile {
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<uuid::Uuid>,
        /// Repair what differs with corrective events (actor
        /// system:reconciler); a second run then finds nothing.
        #[arg(long)]
        fix: bool,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Create in Stripe the price of every plan's current version that has
    /// none yet (`tenantry_{key}_v{version}`). Safe to re-run.
    SyncPlans,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// How a command that ran ended: the process exits 0 for `Clean` and 3
/// for `Drift` (reconciliation found differences, or a chain is broken);
/// 1 for an error, 2 for a
/// configuration error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    Clean,
    Drift,
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Verify an export (`--file`: no database and no configuration
    /// needed) or a tenant's stored chain (`--tenant`). Prints the range
    /// verified, or the first bad sequence and why; exits 3 when broken.
    Verify {
        #[arg(long, conflicts_with = "tenant", required_unless_present = "tenant")]
        file: Option<std::path::PathBuf>,
        #[arg(long)]
        tenant: Option<uuid::Uuid>,
        /// With --file: a checkpoint saved earlier (JSON, as the API lists
        /// it): its signature is checked with --public-key, then the
        /// export must hold its hash at its sequence.
        #[arg(long, requires = "public_key", requires = "file")]
        checkpoint: Option<std::path::PathBuf>,
        /// The checkpoint key's public half, hex (GET /v1/audit/keys).
        #[arg(long, requires = "checkpoint")]
        public_key: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Write a tenant's chain as NDJSON, ended by a manifest line (as
    /// `GET /v1/tenants/{tid}/audit/export` does).
    Export {
        #[arg(long)]
        tenant: uuid::Uuid,
        #[arg(long)]
        from_sequence: Option<i64>,
        #[arg(long)]
        to_sequence: Option<i64>,
        /// The file to write; standard output when absent.
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Re-wrap every data key under the active (first) master key of
    /// TENANTRY_MASTER_KEYS. Safe to interrupt and re-run.
    Rotate,
}

#[derive(Subcommand)]
pub enum ProjectionsCommand {
    /// Empty read models and replay the whole event log into them.
    Rebuild {
        /// One projection (tenants, users, access, llm_keys, invitations, outbox, billing, agents, usage, price_book, approvals); all when omitted.
        name: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Create a platform admin; the password is read from standard input.
    CreatePlatformAdmin {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
    },
}

/// Parse a command line (the program's name first), as the binary does.
pub fn parse<'a>(args: impl IntoIterator<Item = &'a str>) -> Result<Cli, String> {
    Cli::try_parse_from(args).map_err(|e| e.to_string())
}

/// A command that needs no configuration (verifying an export file runs
/// on an auditor's machine, with no database and nothing written): its
/// outcome, or `None` for every other command.
pub fn run_without_config(cli: &Cli) -> Option<Result<Done, String>> {
    match &cli.command {
        Command::Audit {
            command:
                AuditCommand::Verify {
                    file: Some(file),
                    checkpoint,
                    public_key,
                    format,
                    ..
                },
        } => Some(verify_file(
            file,
            checkpoint.as_deref(),
            public_key.as_deref(),
            *format,
        )),
        _ => None,
    }
}

fn verify_file(
    path: &std::path::Path,
    checkpoint: Option<&std::path::Path>,
    public_key: Option<&str>,
    format: Format,
) -> Result<Done, String> {
    let anchor = match (checkpoint, public_key) {
        (Some(cp), Some(key)) => Some(signed_checkpoint(cp, key)?.anchor()),
        _ => None,
    };
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let verdict = crate::service::audit::verify_file(
        std::io::BufReader::new(file),
        anchor.iter().cloned().collect(),
    )
    .map_err(|e| format!("{}: {e}", path.display()))?;
    if let (Some(anchor), tenantry_store::chain::Verdict::Verified { to, .. }) = (&anchor, &verdict)
    {
        if to.is_none_or(|to| to < anchor.sequence) {
            return Err(format!(
                "the export ends before the checkpoint's sequence {}: export up to it",
                anchor.sequence
            ));
        }
    }
    report_verdict(&verdict, format)
}

/// A saved checkpoint, once its signature holds for `public_key` (hex).
fn signed_checkpoint(
    path: &std::path::Path,
    public_key: &str,
) -> Result<tenantry_store::chain::ChainCheckpoint, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let checkpoint: tenantry_store::chain::ChainCheckpoint = serde_json::from_str(&text)
        .map_err(|e| format!("{}: not a checkpoint: {e}", path.display()))?;
    let key = hex::decode(public_key.trim())
        .map_err(|_| "--public-key is the key's 32 bytes in hex".to_string())?;
    if checkpoint.signed_by(&key) {
        Ok(checkpoint)
    } else {
        Err(format!(
            "{}: the checkpoint's signature does not hold for that public key",
            path.display()
        ))
    }
}

/// Print a verification's outcome; a broken chain is `Done::Drift`.
fn report_verdict(
    verdict: &tenantry_store::chain::Verdict,
    format: Format,
) -> Result<Done, String> {
    use tenantry_store::chain::Verdict;
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(verdict).map_err(|e| e.to_string())?
        ),
        Format::Text => match verdict {
            Verdict::Verified {
                from: Some(from),
                to: Some(to),
                events,
                head,
            } => println!(
                "verified sequences {from}..{to} ({events} events), head {}",
                head.as_deref().unwrap_or("-")
            ),
            Verdict::Verified { .. } => println!("verified: no events"),
            Verdict::Broken {
                sequence,
                reason,
                verified,
            } => println!(
                "broken at sequence {sequence}: {} ({verified} events verified before it)",
                reason.describe()
            ),
        },
    }
    Ok(match verdict {
        Verdict::Verified { .. } => Done::Clean,
        Verdict::Broken { .. } => Done::Drift,
    })
}

async fn audit(config: &Config, command: AuditCommand) -> Result<Done, String> {
    let pool = crate::db::prepare(&config.database_url, 2, config.database_acquire_timeout)
        .await
        .map_err(|e| e.to_string())?;
    let store = Store::new(pool);
    let result = audit_with(&store, &config.audit_keys, command).await;
    store.close().await;
    result
}

async fn audit_with(
    store: &Store,
    keys: &crate::audit_keys::AuditKeys,
    command: AuditCommand,
) -> Result<Done, String> {
    match command {
        AuditCommand::Verify {
            tenant: Some(tenant),
            format,
            ..
        } => {
            let verdict = crate::service::audit::verify_stored(store, keys, tenant)
                .await
                .map_err(|e| format!("reading the chain: {e}"))?;
            report_verdict(&verdict, format)
        }
        AuditCommand::Verify {
            file: Some(file),
            checkpoint,
            public_key,
            format,
            ..
        } => verify_file(&file, checkpoint.as_deref(), public_key.as_deref(), format),
        AuditCommand::Verify { .. } => Err("give --file or --tenant".into()),
        AuditCommand::Export {
            tenant,
            from_sequence,
            to_sequence,
            output,
        } => {
            use futures_util::StreamExt;
            use std::io::Write;
            let lines = crate::service::audit::export(
                store.clone(),
                tenant,
                from_sequence,
                to_sequence,
                crate::service::audit::ExportFormat::Ndjson,
                chrono::Utc::now(),
            )
            .await
            .map_err(|e| format!("reading the chain: {e}"))?;
            let mut out: Box<dyn Write> = match &output {
                Some(path) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout())),
            };
            let mut lines = std::pin::pin!(lines);
            while let Some(chunk) = lines.next().await {
                let chunk = chunk.map_err(|e| format!("reading the chain: {e}"))?;
                out.write_all(chunk.as_bytes())
                    .map_err(|e| format!("writing the export: {e}"))?;
            }
            out.flush()
                .map_err(|e| format!("writing the export: {e}"))?;
            Ok(Done::Clean)
        }
    }
}

/// Run a command; the error is one line for the operator.
pub async fn run(cli: Cli, config: Config) -> Result<Done, String> {
    if let Some(done) = run_without_config(&cli) {
        return done;
    }
    if let Command::Audit { command } = cli.command {
        return audit(&config, command).await;
    }
    if let Command::Billing {
        command:
            BillingCommand::Reconcile {
                tenant,
                fix,
                format,
            },
    } = cli.command
    {
        return reconcile(config, tenant, fix, format).await;
    }
    run_other(cli, config).await.map(|()| Done::Clean)
}

async fn run_other(cli: Cli, config: Config) -> Result<(), String> {
    match cli.command {
        Command::Serve => {
            let app = Application::build(config)
                .await
                .map_err(|e| e.to_string())?;
            app.run_until(shutdown_signal())
                .await
                .map_err(|e| format!("server failed: {e}"))
        }
        Command::Migrate => {
            let pool = crate::db::prepare(&config.database_url, 2, config.database_acquire_timeout)
                .await
                .map_err(|e| e.to_string())?;
            let applied = crate::db::MIGRATOR.iter().count();
            pool.close().await;
            println!("database ready: {applied} migrations applied");
            Ok(())
        }
        Command::Projections {
            command: ProjectionsCommand::Rebuild { name },
        } => rebuild(&config, name.as_deref()).await,
        Command::Admin {
            command: AdminCommand::CreatePlatformAdmin { email, name },
        } => create_platform_admin(&config, &email, &name).await,
        Command::Keys {
            command: KeysCommand::Rotate,
        } => rotate_keys(&config).await,
        Command::Billing {
            command: BillingCommand::SyncPlans,
        } => sync_plans(config).await,
        Command::Billing {
            command: BillingCommand::Reconcile { .. },
        } => Err("reconcile runs through `run`".into()),
        Command::Audit { .. } => Err("audit runs through `run`".into()),
        Command::HashRate { seconds, threads } => {
            let rate = hash_rate(std::time::Duration::from_secs(seconds), threads.max(1));
            println!("{{\"hashes_per_s\": {rate:.2}}}");
            Ok(())
        }
    }
}

/// Argon2id hashes per second on `threads` threads for `run` of time.
fn hash_rate(run: std::time::Duration, threads: usize) -> f64 {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let started = std::time::Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            std::thread::spawn(move || {
                let salt = SaltString::generate(&mut rand_core::OsRng);
                let mut done = 0u64;
                while started.elapsed() < run {
                    let _ = crate::credentials::argon2()
                        .hash_password(b"a password of some length", &salt);
                    done += 1;
                }
                done
            })
        })
        .collect();
    let total: u64 = workers.into_iter().map(|w| w.join().unwrap_or(0)).sum();
    total as f64 / started.elapsed().as_secs_f64()
}

/// One line for the operator from a failed use case.
fn said(e: ApiError) -> String {
    match e.internal {
        Some(cause) => format!("{}: {} ({cause})", e.code, e.message),
        None => format!("{}: {}", e.code, e.message),
    }
}

/// Billing commands talk to Stripe: refuse before touching anything when
/// it is not configured.
fn needs_stripe(config: &Config) -> Result<(), String> {
    match config.stripe {
        Some(_) => Ok(()),
        None => {
            Err(said(crate::service::billing::not_configured())
                + " (set TENANTRY_STRIPE_SECRET_KEY)")
        }
    }
}

async fn sync_plans(config: Config) -> Result<(), String> {
    needs_stripe(&config)?;
    let tool = crate::app::ToolContext::start(config)
        .await
        .map_err(|e| e.to_string())?;
    let result = crate::service::billing::sync_plans(&tool.state).await;
    tool.stop().await;
    use crate::service::billing::PriceOutcome;
    let mut missing = Vec::new();
    for price in result.map_err(said)? {
        let what = match price.outcome {
            PriceOutcome::Created => "created",
            PriceOutcome::Exists => "exists",
            PriceOutcome::Configured => "configured",
            PriceOutcome::ConfiguredMissing => {
                missing.push(price.price_id.clone());
                "configured but missing in Stripe"
            }
        };
        println!("{what} {}", price.price_id);
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "Stripe has no price {}: create it in Stripe, or publish a version without stripe_price",
            missing.join(", ")
        ))
    }
}

async fn reconcile(
    config: Config,
    tenant: Option<uuid::Uuid>,
    fix: bool,
    format: Format,
) -> Result<Done, String> {
    needs_stripe(&config)?;
    let tool = crate::app::ToolContext::start(config)
        .await
        .map_err(|e| e.to_string())?;
    let result = crate::service::billing_reconcile::reconcile(&tool.state, tenant, fix).await;
    tool.stop().await;
    let report = result.map_err(said)?;
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
        ),
        Format::Text => {
            for d in &report.differences {
                println!(
                    "{} tenant={} object={} tenantry={} stripe={}{}",
                    d.kind,
                    d.tenant_id,
                    d.stripe_object,
                    d.tenantry.as_deref().unwrap_or("-"),
                    d.stripe.as_deref().unwrap_or("-"),
                    if d.fixed { " fixed" } else { "" }
                );
            }
            match &report.failed_deliveries {
                Some(events) => {
                    for e in events {
                        println!("failed_delivery event={} type={}", e.id, e.kind);
                    }
                }
                None => println!("failed_deliveries unknown: the Stripe server cannot list them"),
            }
            println!(
                "{} tenants checked, {} differences, {} fixed",
                report.tenants_checked,
                report.differences.len(),
                report.fixed
            );
        }
    }
    Ok(if report.drift() {
        Done::Drift
    } else {
        Done::Clean
    })
}

async fn rotate_keys(config: &Config) -> Result<(), String> {
    let pool = crate::db::prepare(&config.database_url, 2, config.database_acquire_timeout)
        .await
        .map_err(|e| e.to_string())?;
    let store = Store::new(pool);
    let total = rotate(&store, &config.master_keys)
        .await
        .map_err(|e| format!("rotation stopped (re-run to continue): {e}"))?;
    store.close().await;
    println!(
        "re-wrapped {total} data keys under master key {}",
        config.master_keys.active().id()
    );
    Ok(())
}

/// Re-wrap every live data key under the active master key, batch by
/// batch; returns how many were re-wrapped.
pub async fn rotate(
    store: &crate::store::Store,
    keys: &crate::vault::MasterKeys,
) -> Result<u64, crate::store::vault::RotateError<crate::vault::VaultError>> {
    let active = keys.active();
    let rewrap = |id, wrapped: &[u8]| {
        let data_key = crate::vault::unwrap(keys, id, wrapped)?;
        crate::vault::wrap(active, id, &data_key)
    };
    let mut total = 0;
    loop {
        let done = store.vault().rewrap_batch(active.id(), 100, rewrap).await?;
        if done == 0 {
            return Ok(total);
        }
        total += done;
    }
}

async fn rebuild(config: &Config, only: Option<&str>) -> Result<(), String> {
    let opener = std::sync::Arc::new(crate::personal::PersonalData::from_config(config));
    let all = tenantry_projections::all(opener);
    let known: Vec<_> = all.iter().map(|p| p.name()).collect();
    let projections: Vec<_> = all
        .iter()
        .filter(|p| only.is_none_or(|n| n == p.name()))
        .cloned()
        .collect();
    if projections.is_empty() {
        return Err(format!(
            "no projection named {:?}; known: {}",
            only.unwrap_or(""),
            known.join(", ")
        ));
    }
    let pool = crate::db::prepare(&config.database_url, 4, config.database_acquire_timeout)
        .await
        .map_err(|e| e.to_string())?;
    for projection in projections {
        let started = std::time::Instant::now();
        let checkpoint = tenantry_projections::runtime::rebuild(&pool, projection.as_ref(), 2000)
            .await
            .map_err(|e| format!("rebuilding {} failed: {e}", projection.name()))?;
        println!(
            "rebuilt {} up to position {} in {:.2?}",
            projection.name(),
            checkpoint.position,
            started.elapsed()
        );
    }
    pool.close().await;
    Ok(())
}

async fn create_platform_admin(config: &Config, email: &str, name: &str) -> Result<(), String> {
    let mut password = Zeroizing::new(String::new());
    std::io::stdin()
        .read_to_string(&mut password)
        .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
    let password = Zeroizing::new(password.trim_end_matches(['\r', '\n']).to_string());
    let pool = crate::db::prepare(&config.database_url, 2, config.database_acquire_timeout)
        .await
        .map_err(|e| e.to_string())?;
    let store = Store::new(pool);
    crate::app::check_master_keys(&store, config)
        .await
        .map_err(|e| e.to_string())?;
    let personal = crate::personal::PersonalData::from_config(config);
    crate::app::check_lookup_key(&store, &personal)
        .await
        .map_err(|e| e.to_string())?;
    let meta = EventMetadata::new(
        PLATFORM_TENANT,
        Actor::system("cli"),
        None,
        chrono::Utc::now(),
    );
    let result =
        crate::service::users::register_user(&store, &personal, email, name, password, true, &meta)
            .await;
    // Running servers learn of the new user now rather than at their next poll.
    let _ = store.announce().await;
    store.close().await;
    match result {
        Ok((id, _)) => {
            println!("created platform admin {id}");
            Ok(())
        }
        Err(e) => {
            let e = ApiError::from(e);
            Err(format!("{}: {}", e.code, e.message))
        }
    }
}
