//! `logstream bench`: drives a LogStream server over HTTP with real log lines and reports what
//! users feel: events/s acknowledged durably (beside an HTTP sink measured in the same run, the
//! ceiling this client and machine allow), ack latency, ack→visible latency, processor
//! throughput into Parquet, compression, and the latency of a needle query and of a
//! `count_over_time` over everything ingested.

mod corpus;
mod load;
mod report;

pub use corpus::Corpus;
pub use load::{Pushed, push_all};
pub use report::{Report, side_by_side};

use anyhow::{Context, bail};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Base URL the events are pushed to.
    pub target: String,
    /// Base URL queries go to (the push URL when empty).
    pub query_target: String,
    /// Where the processors' `/metrics` are (the push URL when empty).
    pub metrics_targets: Vec<String>,
    /// Events to push.
    pub events: usize,
    /// Events per push request.
    pub batch: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Where the real log samples are (`../shared/data`); a generator is used when absent.
    pub samples: Option<PathBuf>,
}

/// Runs the benchmark against `opts.target`.
pub async fn run(opts: &Options) -> anyhow::Result<Report> {
    let corpus = Corpus::load(opts.samples.as_deref());
    eprintln!("corpus: {} ({} lines)", corpus.source, corpus.lines.len());
    let run_start_ns = now_ns();
    let needle = format!("needle-{run_start_ns:x}");
    let bodies = corpus.bodies(opts.events, opts.batch, run_start_ns, &needle);
    let raw_bytes: usize = bodies.iter().map(|b| b.line_bytes).sum();

    let sink = load::sink_baseline(&bodies, opts.concurrency).await?;
    eprintln!("baseline HTTP sink: {:.0} events/s", sink.events_per_sec());

    let query_target = if opts.query_target.is_empty() {
        opts.target.clone()
    } else {
        opts.query_target.clone()
    };
    let metrics_targets = if opts.metrics_targets.is_empty() {
        vec![opts.target.clone()]
    } else {
        opts.metrics_targets.clone()
    };
    let probe = load::Probe::start(&opts.target, &query_target);
    let push = load::push_all(&opts.target, &bodies, opts.concurrency).await?;
    let visible = probe.stop().await;
    eprintln!(
        "pushed {} events: {:.0} events/s",
        push.events,
        push.events_per_sec()
    );

    let flushed = wait_flushed(&metrics_targets, Duration::from_secs(120)).await?;
    let needle_ms = load::query_latency(
        &query_target,
        &format!("{{job=\"bench\"}} |= \"{needle}\""),
        run_start_ns - 60_000_000_000,
        1,
    )
    .await?;
    let count_query = format!(
        "sum(count_over_time({{job=\"bench\"}}[{}s]))",
        (now_ns() - run_start_ns) / 1_000_000_000 + 120
    );
    let (count_ms, counted) = load::instant_count(&query_target, &count_query).await?;
    if counted != push.events as u64 {
        bail!(
            "count_over_time found {counted} events, {} were acknowledged",
            push.events
        );
    }
    Ok(Report {
        corpus: corpus.source.clone(),
        events: push.events,
        raw_bytes,
        batch: opts.batch,
        concurrency: opts.concurrency,
        push,
        sink,
        visible,
        flushed,
        needle_ms,
        count_ms,
    })
}

/// Processor figures read from the server's `/metrics` once nothing waits in memory.
#[derive(Debug, Clone, Default)]
pub struct Flushed {
    pub line_bytes: f64,
    pub parquet_bytes: f64,
    pub flush_seconds: f64,
    pub files: f64,
}

/// Waits until the processors behind `targets` hold nothing unflushed and have read everything,
/// and sums their figures.
pub async fn wait_flushed(targets: &[String], timeout: Duration) -> anyhow::Result<Flushed> {
    let deadline = Instant::now() + timeout;
    let client = reqwest::Client::new();
    loop {
        let mut texts = Vec::new();
        for t in targets {
            texts.push(
                client
                    .get(format!("{t}/metrics"))
                    .send()
                    .await?
                    .text()
                    .await?,
            );
        }
        let sum = |name: &str| -> Option<f64> {
            texts
                .iter()
                .map(|t| report::metric(t, name))
                .try_fold(0.0, |acc, v| v.map(|v| acc + v))
        };
        if sum("logstream_processor_hot_line_bytes") == Some(0.0)
            && sum("logstream_processor_lag_records") == Some(0.0)
        {
            return Ok(Flushed {
                line_bytes: sum("logstream_processor_flushed_line_bytes_total").unwrap_or(0.0),
                parquet_bytes: sum("logstream_processor_parquet_bytes_total").unwrap_or(0.0),
                flush_seconds: sum("logstream_processor_flush_duration_seconds_sum").unwrap_or(0.0),
                files: sum("logstream_processor_files_written_total").unwrap_or(0.0),
            });
        }
        if Instant::now() > deadline {
            bail!(
                "the processors did not flush everything within {timeout:?}: {:?} bytes in memory, {:?} offsets unread",
                sum("logstream_processor_hot_line_bytes"),
                sum("logstream_processor_lag_records")
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

/// Parses a JSON answer, naming the request on failure.
async fn json(resp: reqwest::Response, what: &str) -> anyhow::Result<serde_json::Value> {
    let status = resp.status();
    let text = resp.text().await.with_context(|| what.to_string())?;
    if !status.is_success() {
        bail!("{what}: {status}: {}", text.trim());
    }
    serde_json::from_str(&text).with_context(|| format!("{what}: answer is not JSON"))
}
