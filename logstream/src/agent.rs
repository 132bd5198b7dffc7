//! `logstream agent`: the node agent (crate logstream-agent) with the /metrics, /healthz and
//! /readyz server every role has. `/readyz` answers once the first scan of the pod log
//! directory is done, `/healthz` fails when the reader thread stalls.
//!
//! In a cluster it runs from the operator's DaemonSet with `--config` (the `[agent]` section);
//! on a laptop or in a test, flags alone do: `logstream agent --pods-dir DIR --ingest URL`.

use crate::telemetry::{Readiness, ops_router_with};
use anyhow::Context;
use logstream_agent::format::MultilineConfig;
use logstream_agent::kubernetes::{Pipeline, PodCache};
use logstream_agent::metrics::AgentMetrics;
use logstream_agent::{AgentConfig, Health, Policy};
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, clap::Args)]
pub struct AgentArgs {
    /// TOML configuration file (its `[agent]` section); flags override it.
    #[arg(long, short = 'c', env = "LOGSTREAM_CONFIG")]
    pub config: Option<PathBuf>,
    /// kubelet's pod log directory.
    #[arg(long, env = "LOGSTREAM_PODS_DIR")]
    pub pods_dir: Option<PathBuf>,
    /// Base URL of the ingest API (or a standalone server), e.g. http://127.0.0.1:3100.
    #[arg(long, env = "LOGSTREAM_INGEST_URL")]
    pub ingest: Option<String>,
    /// Tenant to ship as (X-Scope-OrgID); ingest's default tenant when unset.
    #[arg(long)]
    pub tenant: Option<String>,
    /// This node's name; defaults to $NODE_NAME, then the host name.
    #[arg(long, env = "NODE_NAME")]
    pub node: Option<String>,
    /// Where checkpoints are kept.
    #[arg(long, env = "LOGSTREAM_AGENT_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "LOGSTREAM_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Cut a request at the latest this long after its first line was read.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub batch_wait: Option<Duration>,
    /// Cut a request once it holds this many bytes of lines.
    #[arg(long)]
    pub batch_bytes: Option<usize>,
    /// Log data held in memory at most; reading pauses at this.
    #[arg(long)]
    pub memory_budget: Option<usize>,
    /// Ship only pods LogPipelines select, as their namespace, with pod labels from a watch of
    /// this node's pods (KUBECONFIG or in-cluster). On by default inside a pod, or with
    /// `kubernetes = true` in the config's [agent] section.
    #[arg(long)]
    pub kubernetes: bool,
}

/// Resolves flags over the config file over defaults: the agent's settings, where to serve,
/// whether to run against the Kubernetes API, and the LogPipelines to apply then.
pub fn config(args: &AgentArgs) -> anyhow::Result<(AgentConfig, SocketAddr, bool, Vec<Pipeline>)> {
    let file = match &args.config {
        Some(p) => crate::config::Config::from_file(p).map_err(anyhow::Error::msg)?,
        None => crate::config::Config::default(),
    };
    let section = file.agent;
    let kubernetes = args.kubernetes
        || section.kubernetes
        || std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
    let pipelines = file
        .pipelines
        .iter()
        .map(|p| {
            let multiline = p
                .spec
                .multiline
                .as_ref()
                .map(|m| multiline(&p.namespace, &p.name, m))
                .transpose()?;
            Pipeline::new(
                &p.namespace,
                &p.name,
                p.spec.selector.clone(),
                p.spec.labels.clone(),
                multiline,
            )
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let node = args
        .node
        .clone()
        .filter(|n| !n.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .unwrap_or_else(|| "localhost".into());
    let mut cfg = AgentConfig::new(
        args.pods_dir.clone().unwrap_or(section.pods_dir),
        args.ingest.clone().unwrap_or(section.ingest_url),
        args.state_dir.clone().unwrap_or(section.state_dir),
        node,
    );
    cfg.tenant = args.tenant.clone();
    if let Some(w) = args.batch_wait {
        cfg.batch_wait = w;
    }
    if let Some(b) = args.batch_bytes {
        cfg.batch_bytes = b;
    }
    if let Some(m) = args.memory_budget {
        cfg.memory_budget = m;
    }
    Ok((
        cfg,
        args.listen.unwrap_or(section.listen),
        kubernetes,
        pipelines,
    ))
}

/// Runs the agent until `shutdown`.
pub async fn run(args: AgentArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let (cfg, listen, kubernetes, pipelines) = config(&args)?;
    cfg.validate()?;
    let policy = if kubernetes {
        let client = kube::Client::try_default().await.context(
            "connect to the Kubernetes API (the pod's service account in a cluster, else KUBECONFIG)",
        )?;
        let (pods, watch) = PodCache::watch(client, &cfg.node);
        tokio::spawn(watch);
        tracing::info!(
            pipelines = pipelines.len(),
            "shipping the pods LogPipelines select"
        );
        Policy::Kubernetes { pods, pipelines }
    } else {
        Policy::All
    };
    tracing::info!(
        pods_dir = %cfg.pods_dir.display(),
        ingest = %cfg.ingest_url,
        node = %cfg.node,
        state_dir = %cfg.state_dir.display(),
        "starting the agent"
    );
    let mut registry = Registry::default();
    let metrics = AgentMetrics::register(&mut registry);
    let health = Health::default();
    let (alive, started) = (health.clone(), health.clone());
    let ready = Readiness::default();
    let router = ops_router_with(
        registry,
        ready.clone(),
        Some(Arc::new(move || alive.alive())),
        Some(Arc::new(move || started.ready())),
    );
    let http_stop = CancellationToken::new();
    let http = tokio::spawn(crate::distributed::serve(
        listen,
        router,
        ready,
        http_stop.clone(),
    ));
    let result = logstream_agent::run(cfg, policy, metrics, health, shutdown)
        .await
        .context("agent");
    http_stop.cancel();
    http.await??;
    result
}

/// A LogPipeline's multiline settings as the decoder takes them.
fn multiline(
    namespace: &str,
    name: &str,
    m: &logstream_crds::logpipeline::Multiline,
) -> Result<MultilineConfig, String> {
    use logstream_crds::logpipeline::Multiline as M;
    let first_line = regex::Regex::new(&m.first_line).map_err(|e| {
        format!("LogPipeline {namespace}/{name}: spec.multiline.firstLine does not compile: {e}")
    })?;
    Ok(MultilineConfig {
        first_line,
        max_lines: m.max_lines.unwrap_or(M::DEFAULT_MAX_LINES) as usize,
        max_bytes: m.max_bytes.unwrap_or(M::DEFAULT_MAX_BYTES) as usize,
        timeout: Duration::from_millis(u64::from(
            m.timeout_millis.unwrap_or(M::DEFAULT_TIMEOUT_MILLIS),
        )),
    })
}
