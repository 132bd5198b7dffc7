//! `logstream bench`: starts a standalone server in a temporary directory (or uses `--target`)
//! and runs the benchmark in `logstream-bench` against it. With `--distributed` it then runs
//! the same load through ingest → Kafka → processors → S3 → query (all in this process, on a
//! fresh topic and bucket) and prints both side by side, plus how fast processors drain a
//! backlog.

use crate::config::{Config, Role};
use crate::distributed;
use crate::standalone::{Standalone, StandaloneConfig};
use anyhow::Context;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Benchmark this running server instead of starting one.
    #[arg(long)]
    pub target: Option<String>,
    /// Events to push.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: usize,
    /// Events per push request.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Push requests in flight at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Directory with the real log samples (Loghub, Elastic examples).
    #[arg(long, default_value = "../shared/data")]
    pub samples: PathBuf,
    /// Flush interval of the server started for the run.
    #[arg(long, default_value_t = 5_000)]
    pub flush_interval_ms: u64,
    /// Flush size of the server started for the run.
    #[arg(long, default_value_t = 32 * 1024 * 1024)]
    pub flush_line_bytes: u64,
    /// Also run the distributed path (Kafka + object storage) and compare.
    #[arg(long)]
    pub distributed: bool,
    /// Configuration for the distributed run ([kafka] and [storage]; a fresh topic is used).
    /// Without it: KAFKA_BOOTSTRAP and S3_ENDPOINT/S3_REGION/S3_ACCESS_KEY_ID/S3_SECRET_ACCESS_KEY
    /// (what `./e2e/env run` sets) and a fresh bucket.
    #[arg(long)]
    pub distributed_config: Option<PathBuf>,
    /// Processors in the distributed run.
    #[arg(long, default_value_t = 2)]
    pub processors: usize,
    /// Benchmark the node agent instead: tail generated CRI files into a local sink and into a
    /// standalone server.
    #[arg(long)]
    pub agent: bool,
    /// Log lines in the agent benchmark.
    #[arg(long, default_value_t = 1_000_000)]
    pub agent_lines: usize,
    /// Files the agent benchmark spreads its lines over.
    #[arg(long, default_value_t = 8)]
    pub agent_files: usize,
    /// Agent benchmark: also run the OpenTelemetry Collector baseline through this script
    /// (bench/otelcol/run.sh) on the same files.
    #[arg(long)]
    pub otelcol: Option<PathBuf>,
    /// Benchmark the processor's LogPipelines instead: rows per CPU second with no pipeline,
    /// regex, pattern, json and a mixed pipeline, on the Apache sample.
    #[arg(long)]
    pub pipelines: bool,
    /// Events per case of the pipelines benchmark.
    #[arg(long, default_value_t = 500_000)]
    pub pipeline_events: usize,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let samples = args.samples.exists().then(|| args.samples.clone());
    if args.pipelines {
        return crate::bench_pipelines::run(samples.as_deref(), args.pipeline_events);
    }
    if args.agent {
        return crate::bench_agent::run(
            args.agent_lines,
            args.agent_files,
            samples.as_deref(),
            args.otelcol.as_deref(),
        )
        .await;
    }
    let mut opts = logstream_bench::Options {
        target: args.target.clone().unwrap_or_default(),
        query_target: String::new(),
        metrics_targets: Vec::new(),
        events: args.events,
        batch: args.batch,
        concurrency: args.concurrency,
        samples,
    };
    let report = match &args.target {
        Some(_) => logstream_bench::run(&opts).await?,
        None => {
            let dir = tempfile::tempdir()?;
            let mut cfg = StandaloneConfig::new(dir.path(), "127.0.0.1:0".parse()?);
            cfg.flush_interval_ms = args.flush_interval_ms;
            cfg.flush_line_bytes = args.flush_line_bytes;
            let server = Standalone::start(cfg).await?;
            opts.target = format!("http://{}", server.addr);
            eprintln!(
                "started a standalone server at {} in {}",
                opts.target,
                dir.path().display()
            );
            let report = logstream_bench::run(&opts).await;
            server.stop().await?;
            report?
        }
    };
    if !args.distributed {
        println!("{report}");
        return Ok(());
    }
    let (dist, drain) = run_distributed(&args, &opts).await?;
    println!(
        "{}",
        logstream_bench::side_by_side(("standalone", "distributed"), &report, &dist, &[drain])
    );
    Ok(())
}

/// Picks a free local port.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A role running in this process.
struct RoleTask {
    url: String,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RoleTask {
    async fn start(role: Role, mut cfg: Config) -> anyhow::Result<Self> {
        let port = free_port()?;
        let listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let stop = CancellationToken::new();
        let s = stop.clone();
        let task = match role {
            Role::Ingest => {
                cfg.ingest.listen = listen;
                tokio::spawn(distributed::run_ingest(cfg, s))
            }
            Role::Processor => {
                cfg.processor.listen = listen;
                tokio::spawn(distributed::run_processor(cfg, None, s))
            }
            Role::Query => {
                cfg.query.listen = listen;
                tokio::spawn(distributed::run_query(cfg, None, s))
            }
        };
        let url = format!("http://{listen}");
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if task.is_finished() {
                task.await??;
                anyhow::bail!("{role:?} stopped during start-up");
            }
            let ok = client.get(format!("{url}/readyz")).send().await;
            if ok.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "{role:?} did not become ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Self { url, stop, task })
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.stop.cancel();
        self.task.await?
    }
}

/// The configuration of the distributed run: the given file, or the e2e environment.
async fn distributed_config(args: &BenchArgs, events: usize) -> anyhow::Result<Config> {
    let stamp = chrono::Utc::now().format("%Y%m%d%H%M%S").to_string();
    let mut cfg = match &args.distributed_config {
        Some(path) => Config::from_file(path).map_err(anyhow::Error::msg)?,
        None => {
            let var = |k: &str| {
                std::env::var(k).with_context(|| {
                    format!("{k} is not set: pass --distributed-config or run under ./e2e/env run")
                })
            };
            let mut cfg = Config::default();
            cfg.kafka.bootstrap = var("KAFKA_BOOTSTRAP")?;
            let bucket = format!("bench-{stamp}");
            let options: std::collections::BTreeMap<String, String> = [
                ("aws_endpoint", var("S3_ENDPOINT")?),
                ("aws_region", var("S3_REGION")?),
                ("aws_access_key_id", var("S3_ACCESS_KEY_ID")?),
                ("aws_secret_access_key", var("S3_SECRET_ACCESS_KEY")?),
                ("aws_allow_http", "true".into()),
                ("aws_virtual_hosted_style_request", "false".into()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            cfg.storage.url = format!("s3://{bucket}");
            cfg.storage.options = options;
            let (admin, _) =
                logstream_store::BucketAdmin::from_url(&cfg.storage.url, &cfg.storage.options)?;
            admin
                .create_bucket(&bucket)
                .await
                .with_context(|| format!("create bucket {bucket}"))?;
            cfg
        }
    };
    cfg.kafka.topic = format!("bench-{stamp}");
    cfg.processor.group = format!("bench-{stamp}");
    cfg.processor.flush_interval = Duration::from_millis(args.flush_interval_ms);
    cfg.processor.flush_line_bytes = args.flush_line_bytes;
    cfg.ingest.instance = Some(format!("bench-ingest-{stamp}"));
    cfg.validate(Role::Processor).map_err(anyhow::Error::msg)?;
    let _ = events;
    Ok(cfg)
}

/// The distributed run, and the drain measurement as an extra row.
async fn run_distributed(
    args: &BenchArgs,
    base: &logstream_bench::Options,
) -> anyhow::Result<(logstream_bench::Report, (String, String, String))> {
    let cfg = distributed_config(args, base.events).await?;
    eprintln!(
        "distributed run: topic {} ({} partitions), storage {}, {} processors",
        cfg.kafka.topic, cfg.kafka.partitions, cfg.storage.url, args.processors
    );
    let ingest = RoleTask::start(Role::Ingest, cfg.clone()).await?;
    let mut processors = Vec::new();
    for _ in 0..args.processors {
        processors.push(RoleTask::start(Role::Processor, cfg.clone()).await?);
    }
    let query = RoleTask::start(Role::Query, cfg.clone()).await?;
    let opts = logstream_bench::Options {
        target: ingest.url.clone(),
        query_target: query.url.clone(),
        metrics_targets: processors.iter().map(|p| p.url.clone()).collect(),
        ..base.clone()
    };
    let report = logstream_bench::run(&opts).await?;

    // Drain: with the processors stopped, push a backlog, then start them and time the catch-up.
    for p in processors.drain(..) {
        p.stop().await?;
    }
    let corpus = logstream_bench::Corpus::load(base.samples.as_deref());
    let backlog_events = (base.events / 2).max(1);
    let start_ns = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
    let bodies = corpus.bodies(backlog_events, base.batch, start_ns, "drain-needle");
    let pushed = logstream_bench::push_all(&ingest.url, &bodies, base.concurrency).await?;
    let started = Instant::now();
    for _ in 0..args.processors {
        processors.push(RoleTask::start(Role::Processor, cfg.clone()).await?);
    }
    let targets: Vec<String> = processors.iter().map(|p| p.url.clone()).collect();
    logstream_bench::wait_flushed(&targets, Duration::from_secs(600)).await?;
    let took = started.elapsed().as_secs_f64();
    let drain = (
        format!(
            "backlog drain: {} events pushed with processors stopped, then started",
            pushed.events
        ),
        "n/a (the WAL drains inline)".to_string(),
        format!(
            "{:.0} events/s ({:.1} s incl. group join)",
            pushed.events as f64 / took,
            took
        ),
    );
    for p in processors {
        p.stop().await?;
    }
    query.stop().await?;
    ingest.stop().await?;
    Ok((report, drain))
}
