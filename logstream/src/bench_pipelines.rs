//! `logstream bench --pipelines`: how fast the processor turns bus records into stored rows
//! with a tenant's LogPipeline, per core, next to no pipeline at all in the same run.
//!
//! The input is the Elastic examples' Apache access log (10,000 real lines, repeated to the
//! requested size), as it is and re-encoded as JSON objects (the same fields, a nested
//! `http` object), encoded into bus records of 1,000 events the way ingest writes them. Each
//! case runs the processor's own chunk builder (`HotChunk::from_records`: decode, pipeline,
//! Arrow rows) on one thread over chunks of about 4 MiB, as a processor reads them; the
//! figure is line bytes per CPU second of that thread, best of three passes.

use anyhow::Context;
use logstream_bus::{Batch, Entry, Labels, Record, Stream, codec};
use logstream_processor::hot::{HotChunk, Marks};
use logstream_processor::pipeline::plan::{PipelineSource, Plans};
use std::path::Path;
use std::time::Instant;

/// One case of the benchmark.
struct Case {
    name: &'static str,
    input: &'static str,
    pipeline: Option<&'static str>,
}

const CASES: [Case; 6] = [
    Case {
        name: "no pipeline",
        input: "text",
        pipeline: None,
    },
    Case {
        name: "regex (combined log, 8 fields)",
        input: "text",
        pipeline: Some(
            r#"parsers: [{regex: {pattern: '^(?P<client>\S+) \S+ \S+ \[(?P<ts>[^\]]+)\] "(?P<method>\S+) (?P<path>\S+) (?P<protocol>[^"]*)" (?P<status>\d+) (?P<size>\S+) "(?P<referer>[^"]*)" "(?P<agent>[^"]*)"'}}]"#,
        ),
    },
    Case {
        name: "pattern (same fields)",
        input: "text",
        pipeline: Some(
            r#"parsers: [{pattern: {pattern: '<client> - - [<ts>] "<method> <path> <protocol>" <status> <size> "<referer>" "<agent>"'}}]"#,
        ),
    },
    Case {
        name: "mixed: redact, pattern, time, drop, route, field label",
        input: "text",
        pipeline: Some(
            r#"redact: [{pattern: '^\d+\.\d+\.\d+\.\d+', replacement: '<ip>'}]
  parsers: [{pattern: {pattern: '<client> - - [<ts>] "<method> <path> <protocol>" <status> <size> "<referer>" "<agent>"'}}]
  timestamp: {field: ts, format: '%d/%b/%Y:%H:%M:%S %z'}
  dropFields: [referer]
  drop: [{lineMatches: '\.(png|gif|ico|jpg) HTTP', keepRatio: 0.1}]
  routes: [{fields: {status: '5..'}, class: errors, days: 30}]
  fieldLabels: [{field: method, maxValues: 5}]"#,
        ),
    },
    Case {
        name: "no pipeline",
        input: "json",
        pipeline: None,
    },
    Case {
        name: "json (9 fields, one nested object)",
        input: "json",
        pipeline: Some("parsers: [{json: {}}]"),
    },
];

/// Runs every case over `events` events and prints a table.
pub fn run(samples: Option<&Path>, events: usize) -> anyhow::Result<()> {
    let dir = samples.context("--pipelines needs the samples (--samples ../shared/data)")?;
    let path = dir.join("elastic-examples/apache_logs");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    let raw: Vec<&str> = text.lines().collect();
    anyhow::ensure!(!raw.is_empty(), "{} is empty", path.display());
    let json: Vec<String> = raw.iter().map(|l| as_json(l)).collect();
    let inputs = [
        (
            "text",
            raw.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        ),
        ("json", json),
    ];
    eprintln!(
        "pipelines benchmark: {events} events per case from {} ({} lines), one thread",
        path.display(),
        raw.len()
    );
    println!(
        "| input | pipeline | events | MB of lines | CPU s | MB/s per core | vs no pipeline |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|");
    let mut baseline: std::collections::HashMap<&str, f64> = Default::default();
    for case in &CASES {
        let lines = &inputs.iter().find(|(n, _)| *n == case.input).unwrap().1;
        let (records, bytes) = records(lines, events)?;
        let plans = match case.pipeline {
            None => Plans::default(),
            Some(rules) => Plans::compile(&[pipeline(rules)?])
                .map_err(anyhow::Error::new)
                .with_context(|| case.name)?,
        };
        let mut best = f64::MAX;
        let mut rows = 0;
        for _ in 0..3 {
            let (cpu, n) = pass(&records, &plans)?;
            best = best.min(cpu);
            rows = n;
        }
        let mbps = bytes as f64 / 1e6 / best;
        let ratio = match case.pipeline {
            None => {
                baseline.insert(case.input, mbps);
                "1.00".to_string()
            }
            Some(_) => baseline
                .get(case.input)
                .map_or("-".into(), |b| format!("{:.2}", mbps / b)),
        };
        println!(
            "| {} | {} | {} | {:.1} | {:.2} | {:.1} | {} |",
            case.input,
            case.name,
            rows,
            bytes as f64 / 1e6,
            best,
            mbps,
            ratio
        );
    }
    Ok(())
}

fn pipeline(rules: &str) -> anyhow::Result<PipelineSource> {
    let yaml = format!(
        "apiVersion: logstream.dev/v1alpha1\nkind: LogPipeline\nmetadata: {{name: bench, namespace: bench}}\nspec:\n  logStreamRef: {{name: main}}\n  selector: {{}}\n  {rules}\n"
    );
    let mut p = crate::pipelines::parse_yaml(&yaml, "bench")?;
    let mut one = p.remove(0);
    one.generation = 1;
    Ok(one)
}

/// An access-log line as a JSON object with the same fields.
fn as_json(line: &str) -> String {
    let parts: Vec<&str> = line.splitn(4, ' ').collect();
    let quoted: Vec<&str> = line.split('"').collect();
    let request = quoted.get(1).copied().unwrap_or("");
    let mut req = request.splitn(3, ' ');
    let after: Vec<&str> = quoted
        .get(2)
        .map(|s| s.split_whitespace().collect())
        .unwrap_or_default();
    serde_json::json!({
        "client": parts.first().copied().unwrap_or(""),
        "ts": line.split(['[', ']']).nth(1).unwrap_or(""),
        "http": {
            "method": req.next().unwrap_or(""),
            "path": req.next().unwrap_or(""),
            "protocol": req.next().unwrap_or(""),
            "status": after.first().and_then(|s| s.parse::<u32>().ok()),
        },
        "size": after.get(1).copied().unwrap_or("-"),
        "referer": quoted.get(3).copied().unwrap_or(""),
        "agent": quoted.get(5).copied().unwrap_or(""),
    })
    .to_string()
}

/// `events` lines (the input repeated) as bus records of 1,000 events; and their line bytes.
fn records(lines: &[String], events: usize) -> anyhow::Result<(Vec<Record>, usize)> {
    let labels = Labels::new(vec![("job".into(), "apache".into())])?;
    let mut out = Vec::new();
    let mut bytes = 0;
    let mut i = 0;
    while i < events {
        let n = 1000.min(events - i);
        let entries: Vec<Entry> = (i..i + n)
            .map(|j| {
                let line = lines[j % lines.len()].clone();
                bytes += line.len();
                Entry {
                    ts_ns: 1_700_000_000_000_000_000 + j as i64,
                    line,
                    metadata: Vec::new(),
                }
            })
            .collect();
        let batch = Batch {
            tenant: "bench".into(),
            streams: vec![Stream {
                labels: labels.clone(),
                entries,
            }],
            origin: None,
        };
        out.push(Record {
            offset: out.len() as u64,
            payload: codec::encode(&batch)?,
        });
        i += n;
    }
    Ok((out, bytes))
}

/// CPU seconds of this thread to build chunks of ~4 MiB from `records`, and the rows made.
fn pass(records: &[Record], plans: &Plans) -> anyhow::Result<(f64, usize)> {
    let started = thread_cpu_s();
    let wall = Instant::now();
    let mut rows = 0;
    let mut marks = Marks::new();
    let mut start = 0;
    while start < records.len() {
        let mut end = start;
        let mut size = 0;
        while end < records.len() && size < 4 << 20 {
            size += records[end].payload.len();
            end += 1;
        }
        if let Some(chunk) = HotChunk::from_records(&records[start..end], &mut marks, plans)? {
            rows += chunk
                .tenants
                .values()
                .map(|t| t.batch.num_rows())
                .sum::<usize>();
        }
        start = end;
    }
    let cpu = thread_cpu_s() - started;
    // The tick is 10 ms: fall back to wall time for very short passes.
    Ok((
        if cpu > 0.05 {
            cpu
        } else {
            wall.elapsed().as_secs_f64()
        },
        rows,
    ))
}

/// utime + stime of the calling thread, in seconds.
fn thread_cpu_s() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/thread-self/stat") else {
        return 0.0;
    };
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    ticks as f64 / 100.0
}
