//! `logstream standalone`: every role in one process on the embedded WAL and a local store.

use crate::telemetry::{Readiness, ops_router};
use anyhow::Context;
use axum::Router;
use logstream_bus::{Wal, WalConfig, WalMetrics};
use logstream_ingest::{IngestConfig, IngestMetrics, IngestState};
use logstream_processor::{Processor, ProcessorConfig, ProcessorMetrics};
use logstream_query::{Engine, QueryMetrics, QueryState};
use logstream_store::{Manifest, Store};
use prometheus_client::registry::Registry;
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The bus source name of the embedded WAL in object keys and manifests.
pub use logstream_bus::wal::WAL_SOURCE as SOURCE;

/// Settings of a standalone server.
#[derive(Debug, Clone, clap::Args)]
pub struct StandaloneConfig {
    /// Directory for the WAL and (unless --storage says otherwise) the Parquet files.
    #[arg(long, default_value = "./data", env = "LOGSTREAM_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Address the HTTP API listens on (push, query, /metrics, /healthz, /readyz).
    #[arg(long, default_value = "127.0.0.1:3100", env = "LOGSTREAM_LISTEN")]
    pub listen: SocketAddr,
    /// Object storage URL for Parquet files; defaults to `<data-dir>/store`.
    #[arg(long, env = "LOGSTREAM_STORAGE")]
    pub storage: Option<String>,
    /// Flush to Parquet at the latest this long after the oldest unflushed event arrived.
    #[arg(long, default_value_t = 60_000)]
    pub flush_interval_ms: u64,
    /// Flush to Parquet once this many bytes of log lines wait in memory.
    #[arg(long, default_value_t = 128 * 1024 * 1024)]
    pub flush_line_bytes: u64,
    /// Refuse pushes (429) while this many WAL bytes wait for the processor.
    #[arg(long, default_value_t = 2 * 1024 * 1024 * 1024)]
    pub wal_max_retained_bytes: u64,
    /// Largest push body accepted, before decompression (413 above it).
    #[arg(long, default_value_t = 16 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Tenant of requests without an X-Scope-OrgID header.
    #[arg(long, default_value = "default")]
    pub default_tenant: String,
    /// Delete stored events older than this many days (kept forever when unset).
    #[arg(long, env = "LOGSTREAM_RETENTION_DAYS")]
    pub retention_days: Option<u32>,
    /// LogPipeline resources (YAML, `---` between documents) the processor applies to each
    /// tenant's events: the tenant is the namespace, the server's default tenant when none.
    /// Read again every 2 s; a change applies from the next events read.
    #[arg(long, env = "LOGSTREAM_PIPELINES", conflicts_with = "pipelines_config")]
    pub pipelines: Option<PathBuf>,
    /// The `[[pipelines]]` of a config file as the operator renders it (a LogStream's
    /// ConfigMap), instead of --pipelines. Read again every 2 s, like --pipelines.
    #[arg(long, env = "LOGSTREAM_PIPELINES_CONFIG")]
    pub pipelines_config: Option<PathBuf>,
}

impl StandaloneConfig {
    /// Defaults with the given data directory and listen address (for tests and benchmarks).
    pub fn new(data_dir: impl Into<PathBuf>, listen: SocketAddr) -> Self {
        Self {
            data_dir: data_dir.into(),
            listen,
            storage: None,
            flush_interval_ms: 60_000,
            flush_line_bytes: 128 * 1024 * 1024,
            wal_max_retained_bytes: 2 * 1024 * 1024 * 1024,
            max_body_bytes: 16 * 1024 * 1024,
            default_tenant: "default".into(),
            retention_days: None,
            pipelines: None,
            pipelines_config: None,
        }
    }
}

/// A started standalone server.
#[derive(Debug)]
pub struct Standalone {
    pub addr: SocketAddr,
    pub processor: Processor,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Standalone {
    /// Recovers state, binds the listener and starts serving.
    pub async fn start(cfg: StandaloneConfig) -> anyhow::Result<Self> {
        let mut registry = Registry::default();
        let storage = cfg
            .storage
            .clone()
            .unwrap_or_else(|| cfg.data_dir.join("store").display().to_string());
        let store = Store::from_url(&storage, &Default::default()).context("open storage")?;
        let manifest = Manifest::load(&store, SOURCE)
            .await
            .context("load manifest")?;
        let mut wal_cfg = WalConfig::new(cfg.data_dir.join("wal"));
        wal_cfg.max_retained_bytes = cfg.wal_max_retained_bytes;
        wal_cfg.start_offset = manifest.next_offset;
        let wal = Wal::open(wal_cfg, WalMetrics::register(&mut registry)).context("open WAL")?;
        let shutdown = CancellationToken::new();
        let processor_metrics = ProcessorMetrics::register(&mut registry);
        let file = match (&cfg.pipelines, &cfg.pipelines_config) {
            (Some(path), _) => Some(crate::pipelines::PipelineFile::Yaml {
                path: path.clone(),
                default_tenant: cfg.default_tenant.clone(),
            }),
            (None, Some(path)) => Some(crate::pipelines::PipelineFile::Config(path.clone())),
            (None, None) => None,
        };
        let pipelines =
            crate::pipelines::load(file, &mut registry, &processor_metrics, shutdown.clone())?;
        tokio::spawn(logstream_processor::pipeline::report::run(
            store.clone(),
            "standalone".into(),
            pipelines.clone(),
            shutdown.clone(),
        ));
        let proc_cfg = ProcessorConfig {
            pipelines,
            flush_interval: Duration::from_millis(cfg.flush_interval_ms),
            flush_line_bytes: cfg.flush_line_bytes,
            retention: logstream_store::RetentionPolicy {
                default_days: cfg.retention_days,
                rules: Vec::new(),
            },
            ..ProcessorConfig::default()
        };
        let processor = Processor::start(wal.clone(), store.clone(), proc_cfg, processor_metrics)
            .await
            .context("start processor")?;
        let ingest = Arc::new(IngestState {
            bus: Arc::new(wal),
            config: IngestConfig {
                default_tenant: cfg.default_tenant.clone(),
                max_body_bytes: cfg.max_body_bytes,
                ..IngestConfig::default()
            },
            metrics: IngestMetrics::register(&mut registry),
        });
        let query = Arc::new(QueryState {
            engine: Engine::new(&store)?,
            source: Arc::new(processor.clone()),
            retention: logstream_store::RetentionPolicy {
                default_days: cfg.retention_days,
                rules: Vec::new(),
            },
            default_tenant: cfg.default_tenant.clone(),
            metrics: QueryMetrics::register(&mut registry),
        });
        let ready = Readiness::default();
        let app = app(ingest, query, registry, ready.clone());
        let listener = TcpListener::bind(cfg.listen)
            .await
            .with_context(|| format!("listen on {}", cfg.listen))?;
        let addr = listener.local_addr()?;
        if let Some(days) = cfg.retention_days {
            let policy = logstream_store::RetentionPolicy {
                default_days: Some(days),
                rules: Vec::new(),
            };
            logstream_store::retention::spawn_sweeper(
                store.clone(),
                policy,
                crate::retention::SWEEP_INTERVAL,
                shutdown.clone(),
            );
        }
        let task = tokio::spawn(serve(
            listener,
            app,
            processor.clone(),
            shutdown.clone(),
            ready,
        ));
        tracing::info!(%addr, data_dir = %cfg.data_dir.display(), storage, "LogStream standalone is ready");
        Ok(Self {
            addr,
            processor,
            shutdown,
            task,
        })
    }

    /// Stops accepting, flushes everything to storage and waits for the end.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.task.await?
    }

    /// Waits until the server ends by itself (a fatal processor error).
    pub async fn wait(&mut self) -> anyhow::Result<()> {
        (&mut self.task).await?
    }

    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }
}

/// Every route of the standalone server.
pub fn app(
    ingest: Arc<IngestState>,
    query: Arc<QueryState>,
    registry: Registry,
    ready: Readiness,
) -> Router {
    logstream_ingest::router(ingest)
        .merge(logstream_query::router(query))
        .merge(ops_router(registry, ready))
        .fallback(unknown_endpoint)
}

pub(crate) async fn unknown_endpoint(
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> (axum::http::StatusCode, String) {
    (
        axum::http::StatusCode::NOT_FOUND,
        format!("unknown endpoint: {method} {}\n", uri.path()),
    )
}

async fn serve(
    listener: TcpListener,
    app: Router,
    processor: Processor,
    shutdown: CancellationToken,
    ready: Readiness,
) -> anyhow::Result<()> {
    let proc_stop = CancellationToken::new();
    let mut proc_task = {
        let stop = proc_stop.clone();
        tokio::spawn(async move { processor.run(stop).await })
    };
    ready.set(true);
    let ready_http = ready.clone();
    let http = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.cancelled().await;
            ready_http.set(false);
        })
        .into_future();
    tokio::select! {
        res = http => res.context("serve HTTP")?,
        res = &mut proc_task => {
            // The processor only returns by itself on a fatal error: stop serving too, so a
            // supervisor restarts the process (recovery then resumes from the manifest).
            ready.set(false);
            res?.context("processor")?;
            anyhow::bail!("the processor stopped unexpectedly");
        }
    }
    // HTTP has drained: nothing more can be acknowledged. Store what the processor holds.
    proc_stop.cancel();
    proc_task.await?.context("processor")?;
    Ok(())
}
