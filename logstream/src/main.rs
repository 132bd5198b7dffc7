//! `logstream`: one binary, a subcommand per role.

use clap::{Parser, Subcommand};
use logstream::config::{Config, Role, RoleArgs};
use logstream::standalone::{Standalone, StandaloneConfig};
use logstream::{bench, distributed, query_cli, telemetry};
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(name = "logstream", version, about = "Kubernetes-native log platform")]
struct Cli {
    /// Log as JSON lines instead of text.
    #[arg(long, global = true, env = "LOGSTREAM_LOG_JSON")]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every role in one process: ingest, embedded WAL, processor, query.
    Standalone(StandaloneConfig),
    /// Distributed: the push endpoints, producing to Kafka.
    Ingest(RoleArgs),
    /// Distributed: a consumer-group member writing Parquet to object storage.
    Processor(RoleArgs),
    /// Distributed: the Loki query API over object storage and the Kafka tail.
    Query(RoleArgs),
    /// Run the node agent: tail container log files and ship them to ingest.
    Agent(logstream::agent::AgentArgs),
    /// Run the Kubernetes operator: reconcile LogStream and LogPipeline resources.
    Operator(logstream_operator::OperatorArgs),
    /// Run a LogQL query against a running server and print the result.
    Search(query_cli::QueryArgs),
    /// Measure ingest, storage and query speed on a standalone server.
    Bench(bench::BenchArgs),
    /// Print the CustomResourceDefinitions (LogStream, LogPipeline) as YAML, e.g. for
    /// `logstream crd | kubectl apply --server-side -f -`.
    Crd,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = match cli.command {
        Command::Search(_) | Command::Bench(_) | Command::Crd => "warn",
        _ => "info",
    };
    telemetry::init_logging(filter, cli.log_json);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Standalone(cfg) => run_standalone(cfg).await,
            Command::Ingest(args) => run_role(Role::Ingest, args).await,
            Command::Processor(args) => run_role(Role::Processor, args).await,
            Command::Query(args) => run_role(Role::Query, args).await,
            Command::Agent(args) => {
                until_signal(move |stop| logstream::agent::run(args, stop)).await
            }
            Command::Operator(args) => run_operator(args).await,
            Command::Search(args) => query_cli::run(args).await,
            Command::Bench(args) => bench::run(args).await,
            Command::Crd => print_crds(),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run_standalone(cfg: StandaloneConfig) -> anyhow::Result<()> {
    let mut server = Standalone::start(cfg).await?;
    let stop = server.shutdown_token();
    tokio::select! {
        res = server.wait() => return res,
        () = shutdown_signal() => {}
    }
    tracing::info!("shutting down: draining requests and flushing to storage");
    stop.cancel();
    server.wait().await?;
    tracing::info!("stopped cleanly");
    Ok(())
}

async fn run_role(role: Role, args: RoleArgs) -> anyhow::Result<()> {
    let cfg = Config::load(role, &args).map_err(anyhow::Error::msg)?;
    let file = args.config.clone();
    until_signal(move |stop| async move {
        match role {
            Role::Ingest => distributed::run_ingest(cfg, stop).await,
            Role::Processor => distributed::run_processor(cfg, file, stop).await,
            Role::Query => distributed::run_query(cfg, file, stop).await,
        }
    })
    .await
}

async fn run_operator(args: logstream_operator::OperatorArgs) -> anyhow::Result<()> {
    until_signal(move |stop| logstream::operator::run(args, stop)).await
}

/// Runs what `start` returns until it ends or a signal asks it to stop (through the token it
/// was given), then waits for it to finish.
async fn until_signal<F>(start: impl FnOnce(CancellationToken) -> F) -> anyhow::Result<()>
where
    F: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let stop = CancellationToken::new();
    let mut task = tokio::spawn(start(stop.clone()));
    tokio::select! {
        res = &mut task => return res?,
        () = shutdown_signal() => {}
    }
    tracing::info!("shutting down");
    stop.cancel();
    task.await??;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Both CRDs on stdout, separated by `---`. A reader that stops early (`| head`) is no error.
fn print_crds() -> anyhow::Result<()> {
    use std::io::Write;
    let yaml = logstream_crds::yaml::render_all()?;
    match std::io::stdout().lock().write_all(yaml.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
