//! The composition root: build the state, the router and the projectors
//! from a `Config`, and run until a shutdown signal.

use std::future::Future;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use tenantry_domain::{Actor, EventMetadata, PLATFORM_TENANT};
use tenantry_projections::{ProjectorConfig, ProjectorRuntime};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::config::Config;
use crate::credentials::JwtKeys;
use crate::error::ApiError;
use crate::middleware;
use crate::routes;
use crate::service::users::RegisterError;
use crate::state::AppState;
use crate::store::Store;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Database(#[from] crate::db::DbError),
    #[error("TENANTRY_LISTEN: cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("bootstrap admin: {0}")]
    Bootstrap(String),
    #[error("reading the vault failed: {0}")]
    Query(String),
    #[error("catching up with the event log: {0}")]
    CatchUp(String),
    #[error("{0}")]
    Mail(String),
    #[error("TENANTRY_STRIPE_SECRET_KEY: {0}")]
    Stripe(String),
    #[error(
        "TENANTRY_MASTER_KEYS: data keys are wrapped by master key(s) {missing} that are not configured; \
         add them back (run `tenantry keys rotate` before removing a master key)"
    )]
    MissingMasterKeys { missing: String },
    #[error(
        "TENANTRY_LOOKUP_KEY: this database's email addresses were hashed with another lookup key; \
         configure the one it was installed with (or copy the data directory's lookup_key)"
    )]
    LookupKeyChanged,
}

/// Refuse to start with another lookup key than the installation's: nobody
/// would be found by their address, and every address could register again.
pub async fn check_lookup_key(
    store: &Store,
    personal: &crate::personal::PersonalData,
) -> Result<(), StartError> {
    let fingerprint = personal.lookup_key_fingerprint();
    let kept = store
        .installation_value("lookup_key_fingerprint", &fingerprint)
        .await
        .map_err(|e| StartError::Query(e.to_string()))?;
    if kept == fingerprint {
        Ok(())
    } else {
        Err(StartError::LookupKeyChanged)
    }
}

/// Refuse to start when a live data key's master key is not configured:
/// its secrets would fail at call time instead.
pub async fn check_master_keys(store: &Store, config: &Config) -> Result<(), StartError> {
    let in_use = store
        .vault()
        .master_key_ids_in_use()
        .await
        .map_err(|e| StartError::Query(e.to_string()))?;
    let configured = config.master_keys.ids();
    let missing: Vec<String> = in_use
        .into_iter()
        .filter(|id| !configured.contains(&id.as_str()))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(StartError::MissingMasterKeys {
            missing: missing.join(", "),
        })
    }
}

pub const MAX_BODY_BYTES: usize = 1024 * 1024;

pub use crate::config::POOL_SIZE;

pub fn router(state: AppState) -> Router {
    let timeout = state.config.request_timeout;
    routes::router(&state)
        .fallback(middleware::not_found)
        .method_not_allowed_fallback(middleware::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::idempotency,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(CatchPanicLayer::new())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::request_context,
        ))
        .with_state(state)
}

/// The shared state with its projectors running: what the server and the
/// command-line tools that read the read models (`billing reconcile`)
/// stand on.
async fn start_state(
    config: Config,
    clock: Arc<dyn crate::clock::Clock>,
) -> Result<
    (
        AppState,
        watch::Sender<bool>,
        tenantry_projections::runtime::ProjectorTasks,
    ),
    StartError,
> {
    // The binary kept them already; a server built another way (tests)
    // keeps them here. Idempotent.
    config.persist_generated().map_err(StartError::Config)?;
    // Before anything counts: a metric recorded with no recorder is lost.
    crate::metrics::handle();
    let pool = crate::db::prepare(
        &config.database_url,
        POOL_SIZE,
        config.database_acquire_timeout,
    )
    .await?;
    let store = Store::new(pool.clone());
    check_master_keys(&store, &config).await?;
    let personal = Arc::new(crate::personal::PersonalData::from_config(&config));
    check_lookup_key(&store, &personal).await?;
    let (shutdown, shutdown_rx) = watch::channel(false);
    let projector_config = ProjectorConfig {
        poll_interval: config.projector_poll,
        own_announcement: Some(store.announcement().to_owned()),
        ..ProjectorConfig::default()
    };
    let (projector, projector_tasks) = ProjectorRuntime::start(
        pool.clone(),
        tenantry_projections::all(personal.clone()),
        projector_config,
        shutdown_rx,
    );
    {
        let projector = projector.clone();
        store.on_commit(move |aggregate_type, _| projector.appended(aggregate_type));
    }
    let state = AppState {
        store,
        reads: tenantry_projections::ReadModels::new(pool),
        projector,
        jwt: Arc::new(JwtKeys::new(
            config.jwt_secret_bytes(),
            config.access_token_ttl,
        )),
        public_limiter: Arc::new(crate::throttle::address_limiter(config.public_rate_limit)),
        sign_in_throttle: Arc::new(crate::throttle::SignInThrottle::new(
            config.sign_in_rate_limit,
            config.sign_in_max_failures,
            config.sign_in_failure_window,
        )),
        outages: Arc::new(crate::outage::Outages::default()),
        clock,
        personal: personal.clone(),
        auth_cache: Arc::default(),
        streams: Arc::new(crate::streams::Streams::new(
            config.streams_per_tenant,
            config.streams_per_caller,
        )),
        stripe: config
            .stripe
            .as_ref()
            .map(crate::stripe_api::StripeApi::new)
            .transpose()
            .map_err(|e| StartError::Stripe(e.to_string()))?,
        config: Arc::new(config),
    };
    // This process's commits drop what the guard knew of their aggregate
    // before the command returns; other processes' through the log.
    {
        let cache = state.auth_cache.clone();
        state
            .store
            .on_commit(move |kind, id| cache.invalidate(kind, id));
    }
    Ok((state, shutdown, projector_tasks))
}

/// The state for a command-line tool: projectors running and caught up
/// with the log as it stood at the start; no listener, no workers.
pub struct ToolContext {
    pub state: AppState,
    shutdown: watch::Sender<bool>,
    projector_tasks: tenantry_projections::runtime::ProjectorTasks,
}

impl ToolContext {
    pub async fn start(config: Config) -> Result<Self, StartError> {
        let (state, shutdown, projector_tasks) =
            start_state(config, Arc::new(crate::clock::SystemClock)).await?;
        let caught_up = state
            .projector
            .wait_caught_up(std::time::Duration::from_secs(120))
            .await
            .map_err(|e| StartError::CatchUp(e.to_string()))?;
        if !caught_up {
            return Err(StartError::CatchUp(
                "the read models did not catch up within 2 minutes".into(),
            ));
        }
        Ok(Self {
            state,
            shutdown,
            projector_tasks,
        })
    }

    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        self.projector_tasks.join().await;
        // Running servers learn of what the tool appended now.
        let _ = self.state.store.announce().await;
        self.state.store.close().await;
    }
}

/// A server bound to its address, ready to run.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    shutdown: watch::Sender<bool>,
    projector_tasks: tenantry_projections::runtime::ProjectorTasks,
    /// The email outbox worker and the invitation expiry job.
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartError> {
        Self::build_with_clock(config, Arc::new(crate::clock::SystemClock)).await
    }

    /// As [`Application::build`], on a given clock (tests move one by hand).
    pub async fn build_with_clock(
        config: Config,
        clock: Arc<dyn crate::clock::Clock>,
    ) -> Result<Self, StartError> {
        let listen = config.listen;
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| StartError::Bind {
                addr: listen,
                source,
            })?;
        let (state, shutdown, projector_tasks) = start_state(config, clock).await?;
        bootstrap_admin(&state).await?;
        let sender =
            crate::workers::email::Sender::from_config(&state.config).map_err(StartError::Mail)?;
        let workers = vec![
            crate::workers::email::start(state.clone(), sender, shutdown.subscribe()),
            crate::workers::invitation_expiry::start(state.clone(), shutdown.subscribe()),
            crate::workers::auth_cache::start(state.clone(), shutdown.subscribe()),
            crate::workers::trial_expiry::start(state.clone(), shutdown.subscribe()),
            crate::workers::approval_expiry::start(state.clone(), shutdown.subscribe()),
            crate::workers::checkpoints::start(state.clone(), shutdown.subscribe()),
            crate::workers::billing_reconcile::start(state.clone(), shutdown.subscribe()),
            crate::workers::reservation_sweeper::start(state.clone(), shutdown.subscribe()),
            {
                let (store, stop) = (state.store.clone(), shutdown.subscribe());
                tokio::spawn(async move { store.run_notifier(stop).await })
            },
            {
                let (outages, store, stop) = (
                    state.outages.clone(),
                    state.store.clone(),
                    shutdown.subscribe(),
                );
                tokio::spawn(async move { outages.watch(store, stop).await })
            },
        ];
        Ok(Self {
            listener,
            state,
            shutdown,
            projector_tasks,
            workers,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serve until `signal` resolves: finish in-flight requests, then stop
    /// the projectors.
    pub async fn run_until(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let app = router(self.state.clone());
        // A graceful shutdown waits for open responses: end the streams.
        let streams = self.state.streams.clone();
        let signal = async move {
            signal.await;
            streams.close();
        };
        tracing::info!(addr = %self.listener.local_addr()?, "tenantry listening");
        let served = axum::serve(
            self.listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(signal)
        .await;
        let _ = self.shutdown.send(true);
        for worker in self.workers {
            let _ = worker.await;
        }
        self.projector_tasks.join().await;
        self.state.store.close().await;
        tracing::info!("tenantry stopped");
        served
    }
}

/// SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

/// Create the configured platform admin once; a restart finds it and skips.
async fn bootstrap_admin(state: &AppState) -> Result<(), StartError> {
    let (Some(email), Some(password)) = (
        state.config.bootstrap_admin_email.clone(),
        state.config.bootstrap_admin_password.clone(),
    ) else {
        return Ok(());
    };
    let email_hash = state.personal.hash_normalized(&email.trim().to_lowercase());
    let exists = state
        .store
        .user_by_email_hash(email_hash.as_str())
        .await
        .map_err(|e| StartError::Bootstrap(e.to_string()))?;
    if exists.is_some() {
        return Ok(());
    }
    let meta = EventMetadata::new(
        PLATFORM_TENANT,
        Actor::system("bootstrap"),
        None,
        state.now(),
    );
    let password =
        zeroize::Zeroizing::new(secrecy::ExposeSecret::expose_secret(&password).to_string());
    match crate::service::users::register_user(
        &state.store,
        &state.personal,
        &email,
        "Platform Admin",
        password,
        true,
        &meta,
    )
    .await
    {
        Ok((id, checkpoint)) => {
            state.settle(checkpoint.as_ref()).await;
            tracing::info!(user_id = %id, "created the bootstrap platform admin");
            Ok(())
        }
        // A second server starting at the same moment created it.
        Err(RegisterError::EmailTaken) => Ok(()),
        Err(RegisterError::Refused(ApiError { message, .. })) => {
            Err(StartError::Bootstrap(message))
        }
    }
}
