//! `host serve`: Shoal as a multi-tenant service. An HTTP/1.1 JSON API (axum) over the same
//! application layer and run store as the CLI, with one engine, instance pool and compile cache
//! shared by every run of every tenant.
//!
//! Each tenant gets an [`App`] over the store scoped to its runs ([`SqliteStore::scoped`]) and
//! held to its [`Policy`], and a share of the step slots ([`crate::exec::Share`]): steps of all
//! tenants with work queued take turns for free slots, each tenant at most its
//! `max_concurrent` at once.
//!
//! On start, the server resumes the tenants' runs a previous server left interrupted (killed,
//! or stopped by SIGTERM). On SIGTERM or SIGINT it stops accepting requests, gives running
//! steps the grace period to finish, and leaves the rest of each run interrupted, for the next
//! server to resume.

mod api_error;
mod auth;
mod components;
mod metrics;
mod runs;
mod web;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::routing::get;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::app::{App, RunHandle, Settings, SharedEngine};
use crate::exec::{Share, TenantShare};
use crate::policy::Policy;
use crate::store::{RunStatus, RunStore, SqliteStore, StoreError};
use crate::tenant::Tenant;

/// How a server runs.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub store_dir: PathBuf,
    /// Environment variables ops may be granted.
    pub allow_env: Vec<String>,
    /// Steps running at once, all tenants together.
    pub max_concurrent: usize,
    /// The largest component upload, in bytes.
    pub max_component_size: usize,
    /// The largest job submission (and other JSON request), in bytes.
    pub max_request_size: usize,
    /// Runs steps on the workers of a NATS cluster instead of in this process.
    pub coordinator: Option<crate::nats::Coordinator>,
    /// Who may see what.
    pub access: Access,
}

/// Who the server serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Tenants, each by its token: the JSON API and the web view (`host serve`).
    Tenants,
    /// The local user, without a login: the web view of every run of the store, on loopback
    /// only (`host ui`).
    Local,
}

/// Why the server could not start or went down.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on `{addr}`")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the HTTP server failed")]
    Http(#[source] std::io::Error),
    #[error(transparent)]
    Engine(#[from] crate::runtime::LoadError),
    #[error("cannot listen for SIGTERM and SIGINT")]
    Signals(#[source] std::io::Error),
    #[error(
        "another `host serve` uses the store `{0}`: two servers would resume and run the same \
         runs"
    )]
    StoreInUse(PathBuf),
    #[error(
        "`host ui` has no login, so it listens on loopback addresses only, not `{0}`; `host \
         serve` serves the web view to tenants with tokens"
    )]
    NotLoopback(SocketAddr),
    #[error("cannot lock the store `{path}` for this server")]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Holds `DIR/serve.lock` for the server's lifetime (an advisory lock the system drops when
/// the process dies, even by SIGKILL), so that a second server on the same store refuses to
/// start.
fn lock_store(dir: &std::path::Path) -> Result<std::fs::File, ServeError> {
    let path = dir.join("serve.lock");
    let failed = |source| ServeError::Lock {
        path: path.clone(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(failed)?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(ServeError::StoreInUse(dir.to_path_buf())),
        Err(err) => Err(failed(err.into())),
    }
}

/// One tenant's view of the server.
pub(crate) struct TenantApp {
    pub tenant: Tenant,
    pub app: App,
    /// The same store as `app`'s, for what the application layer does not cover (uploaded
    /// components, storage used).
    pub store: Arc<SqliteStore>,
    /// Submissions admitted and still being prepared: they count against `max_queued_runs`
    /// until their run is registered with `app`.
    admitting: Mutex<usize>,
    /// Runs the tenant asked to cancel: a shutdown leaves them canceled, not interrupted.
    canceled: Mutex<std::collections::HashSet<String>>,
}

/// A place among a tenant's unfinished runs, held while a submission is prepared.
pub(crate) struct Admission<'a>(&'a Mutex<usize>);

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        *lock(self.0) -= 1;
    }
}

impl TenantApp {
    /// Admits a new run unless the tenant has `max_queued_runs` unfinished (`429`); the
    /// place is held until the returned admission is dropped, once the run is registered.
    /// A run counts until its final event is out, before the store has it.
    pub(crate) fn admit(&self) -> Result<Admission<'_>, api_error::ApiError> {
        let most = self.tenant.quotas.max_queued_runs;
        let mut admitting = lock(&self.admitting);
        if self.app.running_count() + *admitting < most {
            *admitting += 1;
            return Ok(Admission(&self.admitting));
        }
        let mut err = api_error::ApiError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "too_many_runs",
            format!(
                "this tenant already has {most} unfinished runs, its `max_queued_runs`; retry once one ends"
            ),
        );
        err.retry_after = Some(RETRY_AFTER_SECONDS);
        Err(err)
    }

    /// Refuses to keep `adding` more bytes once the tenant's storage is used up: `409`.
    pub(crate) fn check_storage(&self, adding: u64) -> Result<(), api_error::ApiError> {
        let quota = self.tenant.quotas.storage;
        let used = self.store.storage_used(&self.tenant.name)?;
        if used.saturating_add(adding) <= quota.as_u64() && (adding > 0 || used < quota.as_u64()) {
            return Ok(());
        }
        Err(api_error::ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "storage_full",
            format!(
                "this tenant uses {} of its {quota} storage{}; delete runs or components first",
                bytesize::ByteSize(used),
                if adding > 0 {
                    format!(" and this adds {}", bytesize::ByteSize(adding))
                } else {
                    String::new()
                }
            ),
        ))
    }
}

impl TenantApp {
    /// The local user's application (`host ui`): every run of the store, no quota, its steps
    /// within the server's slots.
    fn local(store: &Arc<SqliteStore>, config: &Config, share: &Share) -> Arc<TenantApp> {
        let tenant = Tenant {
            name: LOCAL.to_string(),
            quotas: crate::tenant::Quotas {
                max_concurrent: config.max_concurrent,
                max_queued_runs: usize::MAX,
                storage: bytesize::ByteSize(u64::MAX),
                ..crate::tenant::Quotas::default()
            },
            created: 0.0,
        };
        let app = App::with_store(store.clone(), &config.store_dir)
            .with_share(share.tenant(LOCAL, config.max_concurrent));
        Arc::new(TenantApp {
            tenant,
            app,
            store: store.clone(),
            admitting: Mutex::new(0),
            canceled: Mutex::default(),
        })
    }

    /// Cancels run `id` at the tenant's request.
    pub(crate) fn cancel(&self, id: &str) -> Result<(), crate::app::AppError> {
        self.app.cancel(id)?;
        lock(&self.canceled).insert(id.to_string());
        Ok(())
    }
}

/// The name `host ui` gives the local user where a tenant's name would go (logs, shares).
const LOCAL: &str = "local";

/// What a `429` suggests waiting, in seconds.
const RETRY_AFTER_SECONDS: u64 = 2;

/// What every request handler shares.
pub(crate) struct Server {
    config: Config,
    /// Every run, for start-up and the tenants' registry.
    store: Arc<SqliteStore>,
    engine: Arc<SharedEngine>,
    share: Share,
    tenants: Mutex<HashMap<String, Arc<TenantApp>>>,
    /// Applications of tenants since removed or added again.
    retired: Mutex<Vec<Arc<TenantApp>>>,
    metrics: metrics::Metrics,
    runs: Mutex<JoinSet<()>>,
    stopping: watch::Sender<bool>,
    /// Bumped whenever a run this server executes ends, so that followers of its events learn
    /// at once rather than at their next poll.
    ended: watch::Sender<u64>,
    /// The local user's application, for `host ui`; tenants' are in `tenants`.
    local: Option<Arc<TenantApp>>,
    /// What the web view knows of each run's steps.
    tallies: web::Tallies,
}

/// Runs the server until SIGTERM or SIGINT; `bound` learns the address it listens on (the
/// port is chosen by the system when `listen` asks for port 0).
pub async fn serve(config: Config, bound: impl FnOnce(SocketAddr)) -> Result<(), ServeError> {
    let local = config.access == Access::Local;
    if local && !config.listen.ip().is_loopback() {
        return Err(ServeError::NotLoopback(config.listen));
    }
    let store = Arc::new(SqliteStore::open(&config.store_dir)?);
    // The local user's runs are resumed by the user; only tenants' runs are the server's.
    let _lock = if local {
        None
    } else {
        Some(lock_store(&config.store_dir)?)
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(ServeError::Http)?;
    // Sized for every tenant's steps together, not for the first run's.
    let engine = Arc::new(SharedEngine::default());
    let size = crate::runtime::EngineSize::for_run(config.max_concurrent, None, &[]);
    engine.for_run(size, Some(&crate::app::cache_dir(&config.store_dir)))?;
    let share = Share::new(config.max_concurrent);
    let local = local.then(|| TenantApp::local(&store, &config, &share));
    let server = Arc::new(Server {
        share,
        local,
        tallies: web::Tallies::default(),
        config,
        store,
        engine,
        tenants: Mutex::default(),
        retired: Mutex::default(),
        metrics: metrics::Metrics::default(),
        runs: Mutex::default(),
        stopping: watch::channel(false).0,
        ended: watch::channel(0).0,
    });
    let signals = signals().map_err(ServeError::Signals)?;
    if server.local.is_none() {
        server.resume_interrupted().await;
    }
    tracing::info!(%addr, "listening");
    bound(addr);
    let stopping = server.clone();
    tokio::spawn(async move {
        let signal = signals.await;
        tracing::info!(
            signal,
            "stopping: no new requests; running steps get their grace"
        );
        stopping.stopping.send_replace(true);
        // At once, not once every connection has closed: a slow client must not hold runs up.
        stopping.cancel_runs();
    });
    let draining = server.clone();
    let http = axum::serve(listener, router(server.clone()))
        .with_graceful_shutdown(async move { draining.stopped().await })
        .into_future();
    // Requests still open once the runs had their grace are dropped.
    let deadline = async {
        server.stopped().await;
        tokio::time::sleep(crate::cancel::DEFAULT_GRACE + DRAIN_AFTER_GRACE).await;
    };
    tokio::select! {
        served = http => served.map_err(ServeError::Http)?,
        () = deadline => tracing::warn!("stopping: dropping requests still open"),
    }
    server.wait_runs().await;
    Ok(())
}

/// How long requests may go on once running steps' grace is over, when stopping.
const DRAIN_AFTER_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

fn router(server: Arc<Server>) -> Router {
    let routes = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(web::routes(&server.config));
    let routes = match server.config.access {
        Access::Tenants => routes
            .route("/metrics", get(metrics::render))
            .merge(components::routes(&server.config))
            .merge(runs::routes(&server.config)),
        Access::Local => routes,
    };
    let routes = routes
        .fallback(|| async { api_error::ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            api_error::ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method",
            )
        })
        .layer(axum::middleware::map_response(api_error::json_errors));
    let routes = match server.config.access {
        Access::Tenants => routes,
        Access::Local => routes.layer(axum::middleware::from_fn(web::loopback_only)),
    };
    routes
        .layer(axum::middleware::from_fn(auth::request_id))
        .with_state(server)
}

/// Completes at the first SIGTERM or SIGINT, with its name.
fn signals() -> std::io::Result<impl std::future::Future<Output = &'static str>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        }
    })
}

impl Server {
    /// The application of `tenant`, made on first use; a tenant removed and added again gets
    /// a new one.
    pub(crate) fn tenant_app(&self, tenant: Tenant) -> Arc<TenantApp> {
        let mut tenants = lock(&self.tenants);
        if let Some(app) = tenants.get(&tenant.name) {
            if app.tenant == tenant {
                return app.clone();
            }
            // Its runs may still execute: they are stopped with the server's.
            lock(&self.retired).push(app.clone());
        }
        let store = Arc::new(self.store.scoped(&tenant.name));
        let policy = Policy {
            quotas: tenant.quotas.clone(),
            allow_env: self.config.allow_env.clone(),
        };
        let share: TenantShare = self
            .share
            .tenant(&tenant.name, tenant.quotas.max_concurrent);
        let app = App::for_tenant(
            store.clone(),
            &self.config.store_dir,
            self.engine.clone(),
            policy,
        )
        .with_share(share);
        let app = match &self.config.coordinator {
            Some(coordinator) => app.with_coordinator(coordinator.clone()),
            None => app,
        };
        let app = Arc::new(TenantApp {
            tenant,
            app,
            store,
            admitting: Mutex::new(0),
            canceled: Mutex::default(),
        });
        tenants.insert(app.tenant.name.clone(), app.clone());
        app
    }

    pub(crate) fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// Completes once the server is stopping.
    pub(crate) async fn stopped(&self) {
        let mut stopping = self.stopping.subscribe();
        let _ignored = stopping.wait_for(|&yes| yes).await;
    }

    /// Completes once some run ends, or the server stops.
    pub(crate) async fn some_run_ended(&self) {
        let mut ended = self.ended.subscribe();
        tokio::select! {
            _ = ended.changed() => {}
            () = self.stopped() => {}
        }
    }

    /// Executes `handle`'s run in the background, attributed to `tenant`.
    pub(crate) fn launch(self: &Arc<Self>, tenant: &Arc<TenantApp>, handle: RunHandle) -> String {
        let server = self.clone();
        let tenant = tenant.clone();
        let launched = handle.run_id().to_string();
        let mut runs = lock(&self.runs);
        // Reaps the runs that ended, so that a long-lived server holds none of them.
        while runs.try_join_next().is_some() {}
        runs.spawn(async move {
            let run_id = handle.run_id().to_string();
            let name = tenant.tenant.name.clone();
            tracing::info!(tenant = %name, run = %run_id, "run started");
            let mut sink = server.metrics.sink(&name);
            let run = handle.execute(&mut sink).await;
            server.ended.send_modify(|n| *n = n.wrapping_add(1));
            let status = if run.succeeded() {
                RunStatus::Success
            } else if run.canceled() {
                RunStatus::Canceled
            } else {
                RunStatus::Failure
            };
            if let Some(err) = &run.sink_error {
                tracing::error!(tenant = %name, run = %run_id, error = %err, "run not recorded in full");
            }
            let by_tenant = lock(&tenant.canceled).remove(&run_id);
            if server.is_stopping() && run.canceled() && !by_tenant {
                // Stopped by the server's shutdown, not by its tenant: the next server
                // resumes it.
                match tenant.store.release(&run_id) {
                    Ok(()) => tracing::info!(tenant = %name, run = %run_id, "run left interrupted"),
                    Err(err) => tracing::error!(tenant = %name, run = %run_id, error = %err, "cannot leave the run interrupted"),
                }
                return;
            }
            tracing::info!(tenant = %name, run = %run_id, %status, "run ended");
        });
        launched
    }

    /// Starts the run that `prepare` records for `tenant`, once the tenant is admitted one
    /// more unfinished run and has storage left, and returns its id. The admission is held
    /// until the run is registered; from then on it counts as unfinished by itself.
    pub(crate) async fn start(
        self: &Arc<Self>,
        tenant: &Arc<TenantApp>,
        prepare: impl std::future::Future<Output = Result<RunHandle, crate::app::AppError>>,
    ) -> Result<String, api_error::ApiError> {
        let admission = tenant.admit()?;
        tenant.check_storage(0)?;
        let handle = prepare.await?;
        drop(admission);
        Ok(self.launch(tenant, handle))
    }

    /// Starts a re-execution of `tenant`'s run `parent` (`select`ed steps, or with none only
    /// what failed or did not run) and returns the new run's id.
    pub(crate) async fn reexecute(
        self: &Arc<Self>,
        tenant: &Arc<TenantApp>,
        parent: &str,
        select: Vec<String>,
    ) -> Result<String, api_error::ApiError> {
        let reexecution = crate::app::Reexecution {
            select,
            config: None,
            reload: false,
        };
        let settings = Settings::default();
        self.start(
            tenant,
            tenant.app.reexecute(parent, &reexecution, &settings),
        )
        .await
    }

    /// Resumes `tenant`'s stopped run `id` where it stopped.
    pub(crate) async fn resume(
        self: &Arc<Self>,
        tenant: &Arc<TenantApp>,
        id: &str,
    ) -> Result<String, api_error::ApiError> {
        let settings = Settings::default();
        self.start(tenant, tenant.app.resume(id, &settings)).await
    }

    /// Resumes every tenant run that a previous server left interrupted.
    async fn resume_interrupted(self: &Arc<Self>) {
        let runs = match self.store.runs() {
            Ok(runs) => runs,
            Err(err) => {
                tracing::error!(error = %err, "cannot list the runs to resume");
                return;
            }
        };
        for run in runs.into_iter().rev() {
            let (Some(name), RunStatus::Interrupted) = (&run.tenant, run.status) else {
                continue;
            };
            let tenant = match self.store.tenant_with_hash(name) {
                Ok(Some((tenant, _))) => tenant,
                Ok(None) => {
                    tracing::warn!(tenant = %name, run = %run.id, "not resuming: the tenant was removed");
                    continue;
                }
                Err(err) => {
                    tracing::error!(run = %run.id, error = %err, "cannot read the run's tenant");
                    continue;
                }
            };
            let tenant = self.tenant_app(tenant);
            match tenant.app.resume(&run.id, &Settings::default()).await {
                Ok(handle) => {
                    tracing::info!(tenant = %name, run = %run.id, "resuming an interrupted run");
                    self.launch(&tenant, handle);
                }
                Err(err) => {
                    tracing::error!(tenant = %name, run = %run.id, error = %err, "cannot resume")
                }
            }
        }
    }

    /// Asks every run this server executes to stop, also those of tenants removed or added
    /// again since.
    fn cancel_runs(&self) {
        let tenants = lock(&self.tenants);
        for tenant in tenants.values().chain(lock(&self.retired).iter()) {
            tenant.app.cancel_all();
        }
    }

    /// Waits for every run this server executes to end.
    async fn wait_runs(&self) {
        let mut runs = std::mem::take(&mut *lock(&self.runs));
        while runs.join_next().await.is_some() {}
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
