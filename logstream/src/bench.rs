//! `logstream bench`: starts a standalone server in a temporary directory (or uses `--target`)
//! and runs the benchmark in `logstream-bench` against it.

use crate::standalone::{Standalone, StandaloneConfig};
use std::path::PathBuf;

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
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let samples = args.samples.exists().then(|| args.samples.clone());
    let mut opts = logstream_bench::Options {
        target: args.target.clone().unwrap_or_default(),
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
    println!("{report}");
    Ok(())
}
