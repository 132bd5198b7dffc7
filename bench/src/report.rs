//! The benchmark's report, printed as Markdown for `docs/benchmarks.md`.

use crate::Flushed;
use crate::load::{Pushed, percentile};
use std::fmt;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Report {
    pub corpus: String,
    pub events: usize,
    pub raw_bytes: usize,
    pub batch: usize,
    pub concurrency: usize,
    pub push: Pushed,
    pub sink: Pushed,
    pub visible: Vec<Duration>,
    pub flushed: Flushed,
    pub needle_ms: f64,
    pub count_ms: f64,
}

/// The value of an un-labelled metric in Prometheus/OpenMetrics text.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fl = &self.flushed;
        writeln!(f, "| measure | value |")?;
        writeln!(f, "|---|---|")?;
        writeln!(f, "| corpus | {} |", self.corpus)?;
        writeln!(
            f,
            "| events pushed (batch {}, {} in flight) | {} ({:.1} MB of lines) |",
            self.batch,
            self.concurrency,
            self.events,
            self.raw_bytes as f64 / 1e6
        )?;
        writeln!(
            f,
            "| acknowledged durably | {:.0} events/s, {:.1} MB/s |",
            self.push.events_per_sec(),
            self.push.mb_per_sec()
        )?;
        writeln!(
            f,
            "| baseline: same client into an HTTP sink | {:.0} events/s |",
            self.sink.events_per_sec()
        )?;
        writeln!(
            f,
            "| ratio to the sink | {:.2} |",
            self.push.events_per_sec() / self.sink.events_per_sec()
        )?;
        writeln!(
            f,
            "| ack latency p50 / p99 | {:.1} ms / {:.1} ms |",
            ms(self.push.percentile(0.5)),
            ms(self.push.percentile(0.99))
        )?;
        writeln!(
            f,
            "| pushes retried after 429/503 | {} |",
            self.push.retries
        )?;
        writeln!(
            f,
            "| ack→visible p50 / p99 ({} probes) | {:.1} ms / {:.1} ms |",
            self.visible.len(),
            ms(percentile(&self.visible, 0.5)),
            ms(percentile(&self.visible, 0.99))
        )?;
        let mbps = if fl.flush_seconds > 0.0 {
            fl.line_bytes / 1e6 / fl.flush_seconds
        } else {
            0.0
        };
        writeln!(
            f,
            "| processor into Parquet (lines per flush-busy second) | {mbps:.1} MB/s |"
        )?;
        let ratio = if fl.parquet_bytes > 0.0 {
            fl.line_bytes / fl.parquet_bytes
        } else {
            0.0
        };
        writeln!(
            f,
            "| stored: {:.1} MB of lines in {:.2} MB of Parquet, {} files | {ratio:.1}× compression |",
            fl.line_bytes / 1e6,
            fl.parquet_bytes / 1e6,
            fl.files
        )?;
        writeln!(
            f,
            "| needle query (`|= \"needle-…\"`, 1 hit), median of 5 | {:.1} ms |",
            self.needle_ms
        )?;
        writeln!(
            f,
            "| `sum(count_over_time(...))` over all, median of 5 | {:.1} ms |",
            self.count_ms
        )
    }
}
