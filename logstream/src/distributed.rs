//! The distributed roles: `logstream ingest`, `logstream processor`, `logstream query`, each
//! its own process (a StatefulSet in Kubernetes), with Apache Kafka as the bus and object
//! storage for the Parquet files.

use crate::config::Config;
use crate::pipelines::PipelineFile;
use crate::telemetry::{Readiness, ops_router};
use anyhow::Context;
use axum::Router;
use logstream_bus::kafka::{KafkaMetrics, KafkaProducer, ensure_topic};
use logstream_ingest::{IngestConfig, IngestMetrics, IngestState};
use logstream_processor::pipeline::report;
use logstream_processor::{GroupProcessor, ProcessorConfig, ProcessorMetrics, Tail};
use logstream_query::{Engine, QueryMetrics, QueryState};
use logstream_store::Store;
use prometheus_client::registry::Registry;
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// `logstream ingest`: the push endpoints, producing to Kafka.
pub async fn run_ingest(cfg: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let instance = cfg.instance().map_err(anyhow::Error::msg)?;
    let mut registry = Registry::default();
    let topic = ensure_topic(&cfg.kafka)
        .await
        .with_context(|| format!("prepare Kafka topic {:?}", cfg.kafka.topic))?;
    let kafka_metrics = KafkaMetrics::register(&mut registry);
    let producer = KafkaProducer::start(
        &cfg.kafka,
        instance.clone(),
        topic.partitions,
        kafka_metrics,
    )
    .context("start the Kafka producer")?;
    let state = Arc::new(IngestState {
        bus: Arc::new(producer),
        config: IngestConfig {
            default_tenant: cfg.ingest.default_tenant.clone(),
            max_body_bytes: cfg.ingest.max_body_bytes,
            ..IngestConfig::default()
        },
        metrics: IngestMetrics::register(&mut registry),
    });
    let ready = Readiness::default();
    let app = logstream_ingest::router(state).merge(ops_router(registry, ready.clone()));
    tracing::info!(
        %instance,
        topic = %cfg.kafka.topic,
        partitions = topic.partitions,
        "LogStream ingest is ready"
    );
    serve(cfg.ingest.listen, app, ready, shutdown).await
}

/// `logstream processor`: a consumer-group member writing Parquet to object storage.
///
/// `config_file` is where `cfg` came from: its `[[pipelines]]` are read again every 2 s, so a
/// changed LogPipeline applies without a restart (the operator's ConfigMap volume changes
/// under the running pod).
pub async fn run_processor(
    cfg: Config,
    config_file: Option<PathBuf>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut registry = Registry::default();
    let store = open_store(&cfg)?;
    ensure_topic(&cfg.kafka)
        .await
        .with_context(|| format!("prepare Kafka topic {:?}", cfg.kafka.topic))?;
    let p = &cfg.processor;
    let metrics = ProcessorMetrics::register(&mut registry);
    let pipelines_stop = CancellationToken::new();
    let pipelines = crate::pipelines::load(
        config_file.map(PipelineFile::Config),
        &mut registry,
        &metrics,
        pipelines_stop.clone(),
    )?;
    let instance = cfg
        .instance()
        .unwrap_or_else(|_| format!("processor-{}", std::process::id()));
    let report = tokio::spawn(report::run(
        store.clone(),
        instance.clone(),
        pipelines.clone(),
        pipelines_stop.clone(),
    ));
    let proc_cfg = ProcessorConfig {
        pipelines,
        class: p.class.clone(),
        flush_interval: p.flush_interval,
        flush_line_bytes: p.flush_line_bytes,
        retention: cfg.retention.clone(),
        instance,
        ..ProcessorConfig::default()
    };
    let processor = GroupProcessor::start(
        &cfg.kafka,
        &p.group,
        store.clone(),
        proc_cfg,
        metrics,
        KafkaMetrics::register(&mut registry),
    )
    .context("join the processor group")?;
    let retention = crate::retention::start(&store, &cfg.storage, &cfg.retention, shutdown.clone())
        .await
        .context("set up retention")?;
    let ready = Readiness::default();
    let app = ops_router(registry, ready.clone());
    let http_stop = CancellationToken::new();
    let http = tokio::spawn(serve(p.listen, app, ready, http_stop.clone()));
    tracing::info!(group = %p.group, topic = %cfg.kafka.topic, storage = %store.url(), "LogStream processor is running");
    let result = processor.run(shutdown).await;
    // The report goes once the processor stopped: a clean stop is not a stale processor.
    pipelines_stop.cancel();
    if let Err(e) = report.await {
        tracing::warn!(error = %e, "the pipelines report task failed");
    }
    http_stop.cancel();
    if let Some(task) = retention {
        task.abort();
    }
    http.await??;
    result.context("processor")
}

/// `logstream query`: the Loki query API over object storage plus the Kafka tail.
///
/// The tail runs the same LogPipelines as the processors (from `config_file`'s
/// `[[pipelines]]`), so events not yet in object storage answer like stored ones.
pub async fn run_query(
    cfg: Config,
    config_file: Option<PathBuf>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut registry = Registry::default();
    let store = open_store(&cfg)?;
    let topic = ensure_topic(&cfg.kafka)
        .await
        .with_context(|| format!("prepare Kafka topic {:?}", cfg.kafka.topic))?;
    let metrics = ProcessorMetrics::register(&mut registry);
    let pipelines = crate::pipelines::load(
        config_file.map(PipelineFile::Config),
        &mut registry,
        &metrics,
        shutdown.clone(),
    )?;
    let tail = Arc::new(
        Tail::start(
            &cfg.kafka,
            topic.partitions,
            store.clone(),
            ProcessorConfig {
                pipelines,
                flush_line_bytes: cfg.processor.flush_line_bytes,
                ..ProcessorConfig::default()
            },
            metrics,
            KafkaMetrics::register(&mut registry),
        )
        .await
        .context("follow the Kafka topic")?,
    );
    let state = Arc::new(QueryState {
        engine: Engine::new(&store)?,
        source: tail.clone(),
        retention: cfg.retention.clone(),
        default_tenant: cfg.query.default_tenant.clone(),
        metrics: QueryMetrics::register(&mut registry),
    });
    let ready = Readiness::default();
    let app = logstream_query::router(state).merge(ops_router(registry, ready.clone()));
    tracing::info!(topic = %cfg.kafka.topic, storage = %store.url(), "LogStream query is ready");
    let result = serve(cfg.query.listen, app, ready, shutdown).await;
    tail.stop().await;
    result
}

fn open_store(cfg: &Config) -> anyhow::Result<Store> {
    Store::from_url(&cfg.storage.url, &cfg.storage.options)
        .with_context(|| format!("open storage {}", cfg.storage.url))
}

/// Serves `app` (plus the unknown-endpoint answer) until `shutdown`, ready meanwhile.
pub(crate) async fn serve(
    listen: SocketAddr,
    app: Router,
    ready: Readiness,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("listen on {listen}"))?;
    tracing::info!(addr = %listener.local_addr()?, "serving HTTP");
    let app = app.fallback(crate::standalone::unknown_endpoint);
    ready.set(true);
    let ready_http = ready.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.cancelled().await;
            ready_http.set(false);
        })
        .into_future()
        .await
        .context("serve HTTP")
}
