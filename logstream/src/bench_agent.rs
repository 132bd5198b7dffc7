//! `logstream bench --agent`: how fast the node agent tails container log files.
//!
//! Writes CRI files laid out as kubelet does (lines from the real samples when present, 5 %
//! split into `P`+`F` pieces), then runs `logstream agent` as a child process twice over
//! copies of them: into a local sink that acknowledges without decoding (the agent's own cost),
//! and into a standalone server (the real path, checked by counting the lines back). The agent's
//! CPU time and peak RSS come from /proc, so lines per CPU second is per core whatever else runs.
//! With `--otelcol bench/otelcol/run.sh` the OpenTelemetry Collector reads the same files.

use crate::standalone::{Standalone, StandaloneConfig};
use anyhow::Context;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What one agent run measured.
#[derive(Debug, Clone)]
pub struct AgentRun {
    pub name: String,
    pub lines: u64,
    pub bytes: u64,
    pub wall_s: f64,
    pub cpu_s: f64,
    pub max_rss_kib: u64,
}

impl AgentRun {
    fn row(&self) -> String {
        format!(
            "| {} | {} | {:.1} | {:.1} | {:.0} | {:.1} | {:.0} | {:.1} |",
            self.name,
            self.lines,
            self.wall_s,
            self.cpu_s,
            self.lines as f64 / self.wall_s.max(1e-9),
            self.bytes as f64 / self.wall_s.max(1e-9) / 1e6,
            self.lines as f64 / self.cpu_s.max(1e-9),
            self.max_rss_kib as f64 / 1024.0
        )
    }
}

/// Runs the agent benchmark and prints a table.
pub async fn run(
    lines: usize,
    files: usize,
    samples: Option<&Path>,
    otelcol: Option<&Path>,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let corpus = logstream_bench::Corpus::load(samples);
    eprintln!(
        "writing {lines} lines into {files} CRI files ({})",
        corpus.source
    );
    let (logical, bytes) = write_files(&dir.path().join("pods"), &corpus, lines, files.max(1))?;

    let mut runs = Vec::new();
    // 1. Into a sink that acknowledges at once: the agent's own cost.
    let sink = start_sink().await?;
    let pods = copy_pods(dir.path(), "sink")?;
    runs.push(
        run_agent(
            "logstream agent → local sink",
            &pods,
            &sink,
            logical,
            bytes,
            dir.path(),
        )
        .await?,
    );

    // 2. Into a standalone server: the real path; the lines are counted back.
    let server_dir = dir.path().join("server");
    std::fs::create_dir_all(&server_dir)?;
    let mut cfg = StandaloneConfig::new(&server_dir, "127.0.0.1:0".parse()?);
    cfg.flush_interval_ms = 5_000;
    let server = Standalone::start(cfg).await?;
    let url = format!("http://{}", server.addr);
    let pods = copy_pods(dir.path(), "ingest")?;
    runs.push(
        run_agent(
            "logstream agent → standalone ingest",
            &pods,
            &url,
            logical,
            bytes,
            dir.path(),
        )
        .await?,
    );
    let counted = count_back(&url).await?;
    server.stop().await?;
    anyhow::ensure!(
        counted == logical,
        "the server holds {counted} lines, the files {logical}: the agent lost or repeated lines"
    );

    // 3. The baseline, on the same files.
    if let Some(script) = otelcol {
        let pods = copy_pods(dir.path(), "otelcol")?;
        runs.push(run_otelcol(script, &pods, logical, bytes)?);
    }

    println!(
        "Agent benchmark: {logical} log lines ({:.1} MB of CRI files) in {files} files, this machine",
        bytes as f64 / 1e6
    );
    println!();
    println!(
        "| agent | lines | wall s | CPU s | lines/s | MB/s | lines per CPU s | peak RSS MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in &runs {
        println!("{}", r.row());
    }
    if let [own, ..] = runs.as_slice()
        && let Some(base) = runs.iter().find(|r| r.name.starts_with("otelcol"))
    {
        println!();
        println!(
            "lines per CPU second, logstream agent / OpenTelemetry Collector: {:.2}",
            (own.lines as f64 / own.cpu_s.max(1e-9)) / (base.lines as f64 / base.cpu_s.max(1e-9))
        );
    }
    println!("\nchecked: the standalone server holds exactly {counted} lines");
    Ok(())
}

/// Writes the files; returns (logical lines, bytes written).
fn write_files(
    pods: &Path,
    corpus: &logstream_bench::Corpus,
    lines: usize,
    files: usize,
) -> anyhow::Result<(u64, u64)> {
    let start_ns = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0) - 3_600_000_000_000;
    let mut bytes = 0u64;
    for f in 0..files {
        // A UUID-shaped pod UID as the kubelet writes it: agents that read pod metadata from
        // the path (the Collector's container parser does) depend on it.
        let dir = pods.join(format!("bench_app-{f}_{f:08x}-0000-4000-8000-{f:012x}/app"));
        std::fs::create_dir_all(&dir)?;
        let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("0.log"))?);
        for i in (f..lines).step_by(files) {
            let (_, line) = &corpus.lines[(i * 7919) % corpus.lines.len()];
            let ts = chrono::DateTime::from_timestamp_nanos(start_ns + i as i64 * 1000)
                .format("%Y-%m-%dT%H:%M:%S%.9fZ");
            let text = if i % 20 == 0 && line.len() > 8 {
                let cut = line
                    .char_indices()
                    .nth(line.chars().count() / 2)
                    .map_or(0, |(b, _)| b);
                format!(
                    "{ts} stdout P {}\n{ts} stdout F {}\n",
                    &line[..cut],
                    &line[cut..]
                )
            } else {
                format!("{ts} stdout F {line}\n")
            };
            bytes += text.len() as u64;
            out.write_all(text.as_bytes())?;
        }
        out.flush()?;
    }
    Ok((lines as u64, bytes))
}

/// A copy of the generated files for one run (each run starts from unread files).
fn copy_pods(dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let to = dir.join(format!("pods-{name}"));
    let status = Command::new("cp")
        .arg("-r")
        .arg(dir.join("pods"))
        .arg(&to)
        .status()
        .context("copy the generated files")?;
    anyhow::ensure!(status.success(), "cp -r failed");
    Ok(to)
}

/// A push endpoint that acknowledges without looking at the body.
async fn start_sink() -> anyhow::Result<String> {
    let app = axum::Router::new().route(
        "/loki/api/v1/push",
        axum::routing::post(|_body: axum::body::Bytes| async {
            axum::http::StatusCode::NO_CONTENT
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

/// Runs `logstream agent` until it has `lines` acknowledged, with progress every second.
async fn run_agent(
    name: &str,
    pods: &Path,
    ingest: &str,
    lines: u64,
    bytes: u64,
    tmp: &Path,
) -> anyhow::Result<AgentRun> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let state = tmp.join(format!("state-{port}"));
    let started = Instant::now();
    let mut child = Command::new(std::env::current_exe()?)
        .args([
            "agent",
            "--node",
            "bench",
            "--batch-wait",
            "200ms",
            "--listen",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--pods-dir")
        .arg(pods)
        .arg("--state-dir")
        .arg(&state)
        .arg("--ingest")
        .arg(ingest)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .context("start logstream agent")?;
    let pid = child.id();
    let metrics = format!("http://127.0.0.1:{port}/metrics");
    let client = reqwest::Client::new();
    let mut last_report = Instant::now();
    let (mut cpu_s, mut rss) = (0.0, 0);
    loop {
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("the agent exited early: {status}");
        }
        (cpu_s, rss) = proc_usage(pid).unwrap_or((cpu_s, rss));
        let acked = match client.get(&metrics).send().await {
            Ok(r) => metric_sum(
                &r.text().await.unwrap_or_default(),
                "logstream_agent_lines_acked_total",
            ),
            Err(_) => 0.0,
        } as u64;
        if acked >= lines {
            break;
        }
        if last_report.elapsed() >= Duration::from_secs(1) {
            eprintln!("  {name}: {acked} / {lines} lines acknowledged");
            last_report = Instant::now();
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "{name}: not done after 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let wall_s = started.elapsed().as_secs_f64();
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = child.wait();
    Ok(AgentRun {
        name: name.into(),
        lines,
        bytes,
        wall_s,
        cpu_s,
        max_rss_kib: rss,
    })
}

/// CPU seconds (user + system) and peak RSS (KiB) of a process.
fn proc_usage(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())?;
    // USER_HZ is 100 on Linux.
    Some((ticks as f64 / 100.0, hwm))
}

fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Lines the server holds for the benchmark's namespace.
async fn count_back(url: &str) -> anyhow::Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let client = reqwest::Client::new();
    loop {
        let v: serde_json::Value = client
            .get(format!("{url}/loki/api/v1/query"))
            .query(&[("query", r#"sum(count_over_time({namespace="bench"}[3h]))"#)])
            .send()
            .await?
            .json()
            .await?;
        let n = v["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(0.0) as u64;
        if n > 0 || Instant::now() > deadline {
            return Ok(n);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs bench/otelcol/run.sh over the files and reads its JSON line.
fn run_otelcol(script: &Path, pods: &Path, lines: u64, bytes: u64) -> anyhow::Result<AgentRun> {
    eprintln!("  otelcol: {} {} {lines}", script.display(), pods.display());
    let out = Command::new(script)
        .arg(pods)
        .arg(lines.to_string())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("run {}", script.display()))?;
    anyhow::ensure!(out.status.success(), "{} failed", script.display());
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .context("no JSON line from the otelcol script")?;
    let v: serde_json::Value = serde_json::from_str(line)?;
    let version = v["version"].as_str().unwrap_or("?");
    Ok(AgentRun {
        name: format!("otelcol-filelog {version} → nop"),
        lines: v["lines"].as_u64().unwrap_or(lines),
        bytes,
        wall_s: v["wall_s"].as_f64().unwrap_or(0.0),
        cpu_s: v["cpu_s"].as_f64().unwrap_or(0.0),
        max_rss_kib: v["max_rss_kib"].as_u64().unwrap_or(0),
    })
}
