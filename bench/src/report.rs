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

/// The value of a metric in Prometheus/OpenMetrics text, summed over its label sets; `None`
/// when it is absent.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for l in text.lines() {
        let Some(rest) = l.strip_prefix(name) else {
            continue;
        };
        let value = if let Some(v) = rest.strip_prefix(' ') {
            v
        } else if rest.starts_with('{') {
            match rest.rsplit_once("} ") {
                Some((_, v)) => v,
                None => continue,
            }
        } else {
            continue;
        };
        if let Ok(v) = value.trim().parse::<f64>() {
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl Report {
    /// The report as (measure, value) rows.
    pub fn rows(&self) -> Vec<(String, String)> {
        let fl = &self.flushed;
        let mbps = if fl.flush_seconds > 0.0 {
            fl.line_bytes / 1e6 / fl.flush_seconds
        } else {
            0.0
        };
        let ratio = if fl.parquet_bytes > 0.0 {
            fl.line_bytes / fl.parquet_bytes
        } else {
            0.0
        };
        vec![
            ("corpus".into(), self.corpus.clone()),
            (
                format!(
                    "events pushed (batch {}, {} in flight)",
                    self.batch, self.concurrency
                ),
                format!(
                    "{} ({:.1} MB of lines)",
                    self.events,
                    self.raw_bytes as f64 / 1e6
                ),
            ),
            (
                "acknowledged durably".into(),
                format!(
                    "{:.0} events/s, {:.1} MB/s",
                    self.push.events_per_sec(),
                    self.push.mb_per_sec()
                ),
            ),
            (
                "baseline: same client into an HTTP sink".into(),
                format!("{:.0} events/s", self.sink.events_per_sec()),
            ),
            (
                "ratio to the sink".into(),
                format!(
                    "{:.2}",
                    self.push.events_per_sec() / self.sink.events_per_sec()
                ),
            ),
            (
                "ack latency p50 / p99".into(),
                format!(
                    "{:.1} ms / {:.1} ms",
                    ms(self.push.percentile(0.5)),
                    ms(self.push.percentile(0.99))
                ),
            ),
            (
                "pushes retried after 429/503".into(),
                self.push.retries.to_string(),
            ),
            (
                "ack→visible p50 / p99".into(),
                format!(
                    "{:.1} ms / {:.1} ms ({} probes)",
                    ms(percentile(&self.visible, 0.5)),
                    ms(percentile(&self.visible, 0.99)),
                    self.visible.len()
                ),
            ),
            (
                "processor into Parquet (lines per flush-busy second)".into(),
                format!("{mbps:.1} MB/s"),
            ),
            (
                "stored: lines → Parquet".into(),
                format!(
                    "{:.1} MB → {:.2} MB in {} files, {ratio:.1}×",
                    fl.line_bytes / 1e6,
                    fl.parquet_bytes / 1e6,
                    fl.files
                ),
            ),
            (
                "needle query (`|= \"needle-…\"`, 1 hit), median of 5".into(),
                format!("{:.1} ms", self.needle_ms),
            ),
            (
                "`sum(count_over_time(...))` over all, median of 5".into(),
                format!("{:.1} ms", self.count_ms),
            ),
        ]
    }
}

/// Two reports of the same run side by side, with extra rows appended.
pub fn side_by_side(
    names: (&str, &str),
    a: &Report,
    b: &Report,
    extra: &[(String, String, String)],
) -> String {
    let mut out = format!("| measure | {} | {} |\n|---|---|---|\n", names.0, names.1);
    for ((k, va), (_, vb)) in a.rows().into_iter().zip(b.rows()) {
        out.push_str(&format!("| {k} | {va} | {vb} |\n"));
    }
    for (k, va, vb) in extra {
        out.push_str(&format!("| {k} | {va} | {vb} |\n"));
    }
    out
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "| measure | value |")?;
        writeln!(f, "|---|---|")?;
        for (k, v) in self.rows() {
            writeln!(f, "| {k} | {v} |")?;
        }
        Ok(())
    }
}
