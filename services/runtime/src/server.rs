//! Assembles service modules into one process: a gRPC server (services, health,
//! reflection) and an HTTP server, started on bound listeners and stopped gracefully.

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context as _;
use sea_orm::DatabaseConnection;
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use tonic::service::RoutesBuilder;
use tonic_health::pb::health_server::{Health, HealthServer};

use crate::{
    Config, ServiceKey, audit,
    auth::{
        Authenticator,
        layer::{GrpcAuthLayer, Guard, rest_guard},
    },
    db, http_api,
    integrity::Integrity,
    peers::{PeerCredentials, Peers},
    readiness,
    telemetry::grpc_request_span,
    tls::{PeerInfo, SecureListener, TlsSource},
};

/// What a service module gets when it starts.
#[derive(Clone)]
pub struct ServiceContext {
    /// The database pool, migrated.
    pub db: DatabaseConnection,
    /// Channels to the other services.
    pub peers: Peers,
    /// Cancelled when the process shuts down; long-running work must watch it.
    pub shutdown: CancellationToken,
    /// The process configuration.
    pub config: Arc<Config>,
    /// The chain keys and checkpoint file (stored events, audit trail).
    pub integrity: Arc<Integrity>,
}

/// One Tracery service, as seen by the process that runs it.
#[async_trait::async_trait]
pub trait ServiceModule: Send + Sync + 'static {
    /// Which service this is, its migrations and what it needs.
    fn info(&self) -> ModuleInfo;

    /// Adds the gRPC service (and any HTTP routes) to `routes` and starts any background
    /// work, returning its tasks (they must end once `ctx.shutdown` is cancelled).
    async fn start(&self, ctx: &ServiceContext, routes: &mut Routes) -> Started;

    /// Which service this is.
    fn key(&self) -> ServiceKey {
        self.info().key
    }

    /// Services this one cannot work without; when one runs in another process, this one
    /// reports NOT_SERVING while that one is not serving.
    fn requires(&self) -> Vec<ServiceKey> {
        self.info().requires
    }

    /// The service's migrations, applied by the one runner.
    fn migrations(&self) -> crate::Migrations {
        self.info().migrations
    }
}

/// What a started service or page runs in the background.
pub type Started = anyhow::Result<Vec<JoinHandle<()>>>;

/// A service module's identity: its key, its migrations, the services it needs.
pub struct ModuleInfo {
    /// Which service this is.
    pub key: ServiceKey,
    /// Its tables' migrations.
    pub migrations: crate::Migrations,
    /// Services it cannot work without.
    pub requires: Vec<ServiceKey>,
}

impl ModuleInfo {
    /// Service `key` with `migrations`, needing no other service.
    pub fn new(key: ServiceKey, migrations: crate::Migrations) -> Self {
        Self {
            key,
            migrations,
            requires: Vec::new(),
        }
    }

    /// The same, needing `peer` too.
    pub fn requiring(mut self, peer: ServiceKey) -> Self {
        self.requires.push(peer);
        self
    }
}

/// Pages served beside the services rather than a service of their own (the operator
/// dashboard): started after the services, with the same context, on the HTTP listener.
#[async_trait::async_trait]
pub trait Pages: Send + Sync + 'static {
    /// Adds the HTTP routes to `routes` and starts any background work, returning its
    /// tasks (they must end once `ctx.shutdown` is cancelled).
    async fn start(&self, ctx: &ServiceContext, routes: &mut Routes) -> Started;
}

/// What the services of one process serve: gRPC services and routes on the HTTP listener.
#[derive(Default)]
pub struct Routes {
    /// gRPC services.
    pub grpc: RoutesBuilder,
    http: axum::Router,
}

impl Routes {
    /// Adds HTTP routes (paths must not clash with another service's).
    pub fn add_http(&mut self, router: axum::Router) {
        self.http = std::mem::take(&mut self.http).merge(router);
    }
}

/// A process with its listeners bound and its database migrated, ready to [`run`](Self::run).
pub struct Application {
    serving: Serving,
    listeners: Listeners,
}

/// What the process serves, and with what.
struct Serving {
    config: Arc<Config>,
    auth: Arc<Authenticator>,
    modules: Vec<Arc<dyn ServiceModule>>,
    pages: Vec<Arc<dyn Pages>>,
    db: DatabaseConnection,
    tls: Option<Arc<TlsSource>>,
    integrity: Arc<Integrity>,
    shutdown: CancellationToken,
}

/// The bound sockets: gRPC, HTTP, and the optional plain-text health port.
struct Listeners {
    grpc: TcpListener,
    http: TcpListener,
    health: Option<TcpListener>,
}

/// The two servers of a running process.
struct Servers {
    grpc: JoinHandle<Result<(), tonic::transport::Error>>,
    http: JoinHandle<std::io::Result<()>>,
}

impl Application {
    /// Connects and migrates the database and binds both listeners. Only the modules named
    /// in `config.services` are kept.
    pub async fn build(
        config: Config,
        available: Vec<Arc<dyn ServiceModule>>,
    ) -> anyhow::Result<Self> {
        let modules = chosen_modules(&config, &available)?;
        let auth = Authenticator::new(config.auth.clone()).map_err(anyhow::Error::msg)?;
        let tls = config.tls.clone().map(TlsSource::load).transpose()?;
        let db = db::connect(&config)
            .await
            .context("database_url: cannot connect")?;
        if config.migrate_on_start {
            migrate_apart(&config, &modules).await?;
        } else {
            await_migrations(&db, &modules).await?;
        }
        warn_of_a_generated_key(&config);
        let integrity = Arc::new(Integrity::load(&config.integrity)?);
        audit::relink_legacy(&db, integrity.keys()).await?;
        let listeners = Listeners::bind(&config).await?;
        Ok(Self {
            serving: Serving {
                config: Arc::new(config),
                auth,
                modules,
                pages: Vec::new(),
                db,
                tls,
                integrity,
                shutdown: CancellationToken::new(),
            },
            listeners,
        })
    }

    /// Also serves `pages` (the dashboard), once [`run`](Self::run) starts the services.
    pub fn with_pages(mut self, pages: Arc<dyn Pages>) -> Self {
        self.serving.pages.push(pages);
        self
    }

    /// The bound gRPC address (useful with port 0).
    pub fn grpc_addr(&self) -> SocketAddr {
        self.listeners
            .grpc
            .local_addr()
            .unwrap_or(self.serving.config.listen)
    }

    /// The bound HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.listeners
            .http
            .local_addr()
            .unwrap_or(self.serving.config.http_listen)
    }

    /// The bound plain-text health address, when `health_listen` is set.
    pub fn health_addr(&self) -> Option<SocketAddr> {
        let health = self.listeners.health.as_ref()?;
        health
            .local_addr()
            .ok()
            .or(self.serving.config.health_listen)
    }

    /// Cancel this token to stop the process gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.serving.shutdown.clone()
    }

    /// Serves until the shutdown token is cancelled, then drains in-flight requests for up
    /// to the configured grace period and closes the database.
    pub async fn run(self) -> anyhow::Result<()> {
        let (grpc_addr, http_addr) = (self.grpc_addr(), self.http_addr());
        let Application { serving, listeners } = self;
        let mut tasks = Vec::new();
        if let Some(tls) = &serving.tls {
            tasks.push(Arc::clone(tls).watch(serving.shutdown.clone()));
        }
        let grpc_listener = SecureListener::bind(listeners.grpc, serving.tls.clone()).await?;
        let http_listener = SecureListener::bind(listeners.http, serving.tls.clone()).await?;
        let running: Vec<ServiceKey> = serving.modules.iter().map(|m| m.key()).collect();
        let ctx = serving.context(reachable(grpc_listener.internal_addr()), &running)?;
        tasks.push(serving.audit_checkpoints());
        tasks.push(tokio::spawn(audit::partitions_ahead(
            serving.db.clone(),
            serving.shutdown.clone(),
        )));

        let (reporter, health_service) = tonic_health::server::health_reporter();
        let health = http_api::Health::new(reporter, &running).await;
        if let Some(listener) = listeners.health {
            let probes = health_service.clone();
            tasks.push(serve_health(listener, probes, &serving.shutdown));
        }
        let mut routes = base_routes(health_service)?;
        tasks.extend(serving.start_services(&ctx, &mut routes).await?);
        // Checked once before anything is served, so the first probe sees the truth.
        let needs = serving.readiness_needs(&ctx);
        let db = serving.db.clone();
        tasks.push(readiness::start(health.clone(), db, needs, serving.shutdown.clone()).await);
        let servers = serving.serve(grpc_listener, http_listener, routes, &health);
        tracing::info!(
            grpc = %grpc_addr,
            http = %http_addr,
            services = ?running,
            "tracery serving"
        );
        serving
            .until_stopped(servers, tasks, &health, &running)
            .await
    }
}

/// The modules of `available` that `config.services` names, in that order.
fn chosen_modules(
    config: &Config,
    available: &[Arc<dyn ServiceModule>],
) -> anyhow::Result<Vec<Arc<dyn ServiceModule>>> {
    config
        .services
        .iter()
        .map(|key| {
            available
                .iter()
                .find(|m| m.key() == *key)
                .map(Arc::clone)
                .with_context(|| format!("services: `{key}` is not built into this binary"))
        })
        .collect()
}

fn warn_of_a_generated_key(config: &Config) {
    if matches!(
        config.integrity.key,
        crate::config::ChainKeySource::Generated(_)
    ) && !config.database_url.expose().starts_with("sqlite:")
    {
        tracing::warn!(
            "no [integrity] key is configured: this process uses a key of its own; replicas sharing this database need one key ([integrity] key)"
        );
    }
}

impl Listeners {
    async fn bind(config: &Config) -> anyhow::Result<Self> {
        let grpc = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("listen: cannot bind {}", config.listen))?;
        let http = TcpListener::bind(config.http_listen)
            .await
            .with_context(|| format!("http_listen: cannot bind {}", config.http_listen))?;
        let health = match config.health_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("health_listen: cannot bind {addr}"))?,
            ),
            None => None,
        };
        Ok(Self { grpc, http, health })
    }
}

/// The health service and gRPC reflection (both versions), which every process serves.
fn base_routes(health_service: HealthServer<impl Health>) -> anyhow::Result<Routes> {
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(tracery_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let mut routes = Routes::default();
    routes.grpc.add_service(health_service);
    routes.grpc.add_service(reflection().build_v1()?);
    routes.grpc.add_service(reflection().build_v1alpha()?);
    Ok(routes)
}

impl Serving {
    /// What each module starts with: the database, its peers (this process for the
    /// services it runs, `self_endpoint` being its own gRPC address), the configuration.
    fn context(
        &self,
        self_endpoint: SocketAddr,
        running: &[ServiceKey],
    ) -> anyhow::Result<ServiceContext> {
        let self_endpoint = format!("http://{self_endpoint}");
        let internal: Arc<str> = Arc::from(self.auth.internal_token());
        let peer_tls = match &self.tls {
            Some(tls) => tls.client_config()?,
            None => None,
        };
        let remote_credentials = || {
            self.auth
                .peer_token()
                .cloned()
                .map_or(PeerCredentials::None, PeerCredentials::Token)
        };
        let peers = Peers::new(
            |key| match self.config.peers.get(key) {
                Some(remote) => Some((remote.to_owned(), remote_credentials())),
                None => running.contains(&key).then(|| {
                    let credentials = PeerCredentials::Internal(internal.clone());
                    (self_endpoint.clone(), credentials)
                }),
            },
            peer_tls.as_ref(),
        )?;
        Ok(ServiceContext {
            db: self.db.clone(),
            peers,
            shutdown: self.shutdown.clone(),
            config: Arc::clone(&self.config),
            integrity: Arc::clone(&self.integrity),
        })
    }

    /// Signs the audit chain's head at the configured interval.
    fn audit_checkpoints(&self) -> JoinHandle<()> {
        tokio::spawn(crate::integrity::checkpoint_every(
            self.config.integrity.checkpoint_interval,
            Arc::clone(&self.integrity),
            self.db.clone(),
            audit::CHAIN,
            self.shutdown.clone(),
            |db| Box::pin(async move { audit::head(&db).await }),
        ))
    }

    /// Starts the services, then the pages beside them.
    async fn start_services(&self, ctx: &ServiceContext, routes: &mut Routes) -> Started {
        let mut tasks = Vec::new();
        for module in &self.modules {
            tasks.extend(module.start(ctx, routes).await?);
        }
        for pages in &self.pages {
            tasks.extend(pages.start(ctx, routes).await?);
        }
        Ok(tasks)
    }

    /// For each service, the peers in other processes it cannot work without.
    fn readiness_needs(&self, ctx: &ServiceContext) -> Vec<readiness::Needs> {
        self.modules
            .iter()
            .map(|module| readiness::Needs {
                service: module.key(),
                peers: module
                    .requires()
                    .into_iter()
                    .filter(|peer| self.config.peers.get(*peer).is_some())
                    .filter_map(|peer| ctx.peers.channel(peer).ok().map(|c| (peer, c)))
                    .collect(),
            })
            .collect()
    }

    /// Both servers, behind the one guard (who speaks, audit, limits).
    fn serve(
        &self,
        grpc_listener: SecureListener,
        http_listener: SecureListener,
        routes: Routes,
        health: &http_api::Health,
    ) -> Servers {
        let limits = &self.config.limits;
        let guard = Guard::new(
            Arc::clone(&self.auth),
            self.db.clone(),
            self.integrity.keys().clone(),
            limits,
        );
        let timeout = std::time::Duration::from_secs(limits.request_timeout_secs);
        let grpc = tokio::spawn(
            tonic::transport::Server::builder()
                .trace_fn(grpc_request_span)
                .timeout(timeout)
                .layer(GrpcAuthLayer::new(guard.clone()))
                .add_routes(routes.grpc.routes())
                .serve_with_incoming_shutdown(
                    grpc_listener.into_stream(),
                    self.shutdown.clone().cancelled_owned(),
                ),
        );
        let service_routes = guarded_http(routes.http, guard, limits.max_body_bytes, timeout);
        let http = tokio::spawn(
            axum::serve(
                http_listener,
                http_api::router(health.clone(), self.db.clone())
                    .merge(service_routes)
                    .into_make_service_with_connect_info::<PeerInfo>(),
            )
            .with_graceful_shutdown(self.shutdown.clone().cancelled_owned())
            .into_future(),
        );
        Servers { grpc, http }
    }

    /// Waits for the shutdown token (or a server's early end), then reports not serving,
    /// drains for up to the grace period and closes the database.
    async fn until_stopped(
        self,
        servers: Servers,
        mut tasks: Vec<JoinHandle<()>>,
        health: &http_api::Health,
        running: &[ServiceKey],
    ) -> anyhow::Result<()> {
        let Servers { mut grpc, mut http } = servers;
        // Both servers also watch the shutdown token, so one of them may be the branch that
        // completes on a normal shutdown: that is not an early exit. A finished JoinHandle must
        // not be polled again below, hence the flags.
        let (mut grpc_done, mut http_done) = (false, false);
        let early_exit = tokio::select! {
            () = self.shutdown.cancelled() => None,
            result = &mut grpc => {
                grpc_done = true;
                let result = result.map(|r| r.map_err(anyhow::Error::from));
                (!self.shutdown.is_cancelled()).then(|| flatten("grpc server", result))
            }
            result = &mut http => {
                http_done = true;
                let result = result.map(|r| r.map_err(anyhow::Error::from));
                (!self.shutdown.is_cancelled()).then(|| flatten("http server", result))
            }
        };
        self.shutdown.cancel();
        for key in running {
            health.set(*key, false).await;
        }
        tracing::info!("shutting down: draining in-flight requests");
        let grace = self.config.shutdown_grace;
        let drain = async {
            if !grpc_done {
                let _ = (&mut grpc).await;
            }
            if !http_done {
                let _ = (&mut http).await;
            }
            for task in &mut tasks {
                let _ = task.await;
            }
        };
        if tokio::time::timeout(grace, drain).await.is_err() {
            tracing::warn!(?grace, "grace period over; closing with work in flight");
            grpc.abort();
            http.abort();
            tasks.iter().for_each(JoinHandle::abort);
        }
        self.db.close().await.context("closing the database")?;
        tracing::info!("stopped");
        early_exit.unwrap_or(Ok(()))
    }
}

/// The services' HTTP routes behind the guard, the body limit and the request timeout;
/// `/healthz` and `/metrics` are added unguarded beside them (probes, scrapers).
fn guarded_http(
    routes: axum::Router,
    guard: Guard,
    max_body_bytes: usize,
    timeout: std::time::Duration,
) -> axum::Router {
    if !routes.has_routes() {
        return routes;
    }
    routes
        .route_layer(axum::middleware::from_fn_with_state(guard, rest_guard))
        .layer(axum::extract::DefaultBodyLimit::max(max_body_bytes))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            http::StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
}

/// Applies the audit trail's and `modules`' migrations to `db`.
pub async fn apply_migrations(
    db: &DatabaseConnection,
    modules: &[Arc<dyn ServiceModule>],
) -> anyhow::Result<()> {
    crate::Migrations::of::<crate::audit::Migrator>()
        .apply(db)
        .await
        .context("migrating the audit tables")?;
    for module in modules {
        module
            .migrations()
            .apply(db)
            .await
            .with_context(|| format!("migrating the {} tables", module.key()))?;
        tracing::info!(service = %module.key(), "migrated");
    }
    Ok(())
}

/// `tracery_migrations_pending`: what a replica started with `migrate_on_start = false` is
/// waiting for.
fn pending_migrations_gauge() -> &'static prometheus::IntGauge {
    static GAUGE: std::sync::OnceLock<prometheus::IntGauge> = std::sync::OnceLock::new();
    GAUGE.get_or_init(|| {
        crate::metrics::gauge(
            "tracery_migrations_pending",
            "Migrations this process waits for `tracery migrate` to apply",
        )
    })
}

/// Waits until someone else (`tracery migrate`, a Kubernetes Job) has applied every
/// migration, so replicas never race each other to change the schema.
async fn await_migrations(
    db: &DatabaseConnection,
    modules: &[Arc<dyn ServiceModule>],
) -> anyhow::Result<()> {
    loop {
        let mut pending = crate::Migrations::of::<crate::audit::Migrator>()
            .pending(db)
            .await
            .context("reading the audit migrations")?;
        for module in modules {
            pending += module
                .migrations()
                .pending(db)
                .await
                .with_context(|| format!("reading the {} migrations", module.key()))?;
        }
        pending_migrations_gauge().set(i64::try_from(pending).unwrap_or(i64::MAX));
        if pending == 0 {
            return Ok(());
        }
        tracing::info!(
            pending,
            "waiting for `tracery migrate` (migrate_on_start = false)"
        );
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
}

/// Serves `grpc.health.v1` alone on `listener`, in plain text, until `shutdown`.
fn serve_health(
    listener: TcpListener,
    health: HealthServer<impl Health>,
    shutdown: &CancellationToken,
) -> JoinHandle<()> {
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        let served = tonic::transport::Server::builder()
            .add_service(health)
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                shutdown.cancelled_owned(),
            )
            .await;
        if let Err(err) = served {
            tracing::error!(%err, "the health listener failed");
        }
    })
}

fn flatten(
    what: &str,
    result: Result<anyhow::Result<()>, tokio::task::JoinError>,
) -> anyhow::Result<()> {
    match result {
        Ok(Ok(())) => Err(anyhow::anyhow!("{what} stopped unexpectedly")),
        Ok(Err(err)) => Err(err.context(format!("{what} failed"))),
        Err(err) => Err(anyhow::anyhow!("{what} panicked: {err}")),
    }
}

/// An address peers in this process can dial: the wildcard address becomes loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        let loopback = match addr {
            SocketAddr::V4(_) => std::net::IpAddr::from([127, 0, 0, 1]),
            SocketAddr::V6(_) => std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
        };
        SocketAddr::new(loopback, addr.port())
    } else {
        addr
    }
}

/// Waits for SIGTERM or SIGINT (Ctrl-C), then cancels `token`.
pub async fn cancel_on_signal(token: CancellationToken) {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
    token.cancel();
}

/// The whole life of a server process: load configuration, start telemetry, serve until
/// SIGTERM/SIGINT. `only` restricts the process to one service (per-service binaries);
/// `pages` are served beside the services (the all-in-one binary's dashboard).
pub async fn serve(
    args: &crate::config::ServeArgs,
    modules: Vec<Arc<dyn ServiceModule>>,
    only: Option<ServiceKey>,
    pages: Vec<Arc<dyn Pages>>,
) -> anyhow::Result<()> {
    let mut config = Config::load(args)?;
    if let Some(key) = only {
        config.services = vec![key];
    }
    // A process running one service is named after it, so traces show which service of
    // a split deployment did what.
    let telemetry_name = match config.services.as_slice() {
        [one] => format!("tracery-{one}"),
        _ => "tracery".to_owned(),
    };
    let _telemetry = crate::telemetry::init_telemetry(&telemetry_name, config.log_format)?;
    let mut app = Application::build(config, modules).await?;
    for page in pages {
        app = app.with_pages(page);
    }
    tokio::spawn(cancel_on_signal(app.shutdown_token()));
    app.run().await
}

/// The whole `main` of a per-service binary (`tracery-capture` and so on): the flags of
/// `tracery serve`, one service.
pub async fn serve_single(module: Arc<dyn ServiceModule>) -> anyhow::Result<()> {
    use clap::{Args as _, FromArgMatches as _};
    let key = module.key();
    let command =
        crate::config::ServeArgs::augment_args(clap::Command::new(format!("tracery-{key}")))
            .version(env!("CARGO_PKG_VERSION"))
            .about(format!("Tracery {key} service"));
    let matches = command.get_matches();
    let args = crate::config::ServeArgs::from_arg_matches(&matches)?;
    serve(&args, vec![module], Some(key), Vec::new()).await
}

/// Runs the migrations of the configured services and exits (for a Kubernetes Job, so
/// replicas never race each other to migrate).
pub async fn migrate(
    args: &crate::config::ServeArgs,
    modules: Vec<Arc<dyn ServiceModule>>,
) -> anyhow::Result<()> {
    let config = Config::load(args)?;
    let _telemetry = crate::telemetry::init_telemetry("tracery-migrate", config.log_format)?;
    let modules: Vec<_> = modules
        .into_iter()
        .filter(|m| config.services.contains(&m.key()))
        .collect();
    migrate_apart(&config, &modules).await
}

/// Applies the migrations on a pool of their own, closed afterwards: a migration that
/// changes a column's type leaves behind prepared statements that PostgreSQL refuses to
/// run again ("cached plan must not change result type"), so no serving connection may
/// have prepared them.
async fn migrate_apart(config: &Config, modules: &[Arc<dyn ServiceModule>]) -> anyhow::Result<()> {
    let migrating = db::connect(config)
        .await
        .context("database_url: cannot connect")?;
    apply_migrations(&migrating, modules).await?;
    migrating.close().await?;
    Ok(())
}
