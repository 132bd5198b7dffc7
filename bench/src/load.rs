//! Load generation: pushing bodies with bounded concurrency, the HTTP sink baseline, the
//! ack→visible probe and query timings.

use crate::corpus::Body;
use anyhow::{Context, bail};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// Outcome of pushing every body.
#[derive(Debug, Clone, Default)]
pub struct Pushed {
    pub events: usize,
    pub bytes: usize,
    pub elapsed: Duration,
    /// Per-request ack latencies, sorted.
    pub latencies: Vec<Duration>,
    pub retries: usize,
}

impl Pushed {
    pub fn events_per_sec(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }

    pub fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64()
    }

    pub fn percentile(&self, p: f64) -> Duration {
        percentile(&self.latencies, p)
    }
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Pushes every body to `{target}/loki/api/v1/push`, `concurrency` at a time; 429/503 answers
/// are retried after a short pause (and counted).
pub async fn push_all(target: &str, bodies: &[Body], concurrency: usize) -> anyhow::Result<Pushed> {
    push_to(&format!("{target}/loki/api/v1/push"), bodies, concurrency).await
}

async fn push_to(url: &str, bodies: &[Body], concurrency: usize) -> anyhow::Result<Pushed> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let bodies: Arc<Vec<Body>> = Arc::new(bodies.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..concurrency {
        let (client, bodies, next, url) = (
            client.clone(),
            bodies.clone(),
            next.clone(),
            url.to_string(),
        );
        tasks.spawn(async move {
            let mut mine = Pushed::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else { break };
                let t = Instant::now();
                mine.retries += send_until_acked(&client, &url, body).await?;
                mine.latencies.push(t.elapsed());
                mine.events += body.events;
                mine.bytes += body.line_bytes;
            }
            anyhow::Ok(mine)
        });
    }
    let mut total = Pushed::default();
    while let Some(res) = tasks.join_next().await {
        let part = res??;
        total.events += part.events;
        total.bytes += part.bytes;
        total.retries += part.retries;
        total.latencies.extend(part.latencies);
    }
    total.elapsed = started.elapsed();
    total.latencies.sort_unstable();
    Ok(total)
}

async fn send_until_acked(
    client: &reqwest::Client,
    url: &str,
    body: &Body,
) -> anyhow::Result<usize> {
    for attempt in 0..100 {
        let resp = client
            .post(url)
            .header("content-type", "application/json")
            .body(body.json.clone())
            .send()
            .await
            .with_context(|| format!("push to {url}"))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(attempt);
        }
        if status.as_u16() != 429 && status.as_u16() != 503 {
            bail!(
                "push answered {status}: {}",
                resp.text().await.unwrap_or_default().trim()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("push still refused after 100 retries")
}

/// The same pushes against an in-process HTTP server that reads each body and answers 204:
/// the most this client and machine can do, measured in the same run as the real thing.
pub async fn sink_baseline(bodies: &[Body], concurrency: usize) -> anyhow::Result<Pushed> {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/sink",
        post(|body: axum::body::Bytes| async move {
            std::hint::black_box(body.len());
            axum::http::StatusCode::NO_CONTENT
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let res = push_to(&format!("http://{addr}/sink"), bodies, concurrency).await;
    server.abort();
    res
}

const MIN_PROBES: usize = 20;

/// Pushes one marked event every 100 ms and measures how long after its ack a query sees it.
pub struct Probe {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<Duration>>,
}

impl Probe {
    pub fn start(target: &str, query_target: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (s, target) = (stop.clone(), target.to_string());
        let query_target = query_target.to_string();
        let task = tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut seen = Vec::new();
            let mut n = 0u64;
            // Keep probing until told to stop and at least MIN_PROBES answers are in.
            while !s.load(Ordering::SeqCst) || seen.len() < MIN_PROBES {
                n += 1;
                match probe_once(&client, &target, &query_target, n).await {
                    Ok(d) => seen.push(d),
                    Err(_) if n > 10 * MIN_PROBES as u64 => break,
                    Err(_) => {}
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            seen.sort_unstable();
            seen
        });
        Self { stop, task }
    }

    pub async fn stop(self) -> Vec<Duration> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap_or_default()
    }
}

async fn probe_once(
    client: &reqwest::Client,
    target: &str,
    query_target: &str,
    n: u64,
) -> anyhow::Result<Duration> {
    let ts = crate::now_ns();
    let marker = format!("probe-{ts}-{n}");
    let body = serde_json::json!({"streams": [{"stream": {"job": "probe"}, "values": [[ts.to_string(), marker]]}]});
    let resp = client
        .post(format!("{target}/loki/api/v1/push"))
        .json(&body)
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!("probe push refused");
    }
    let acked = Instant::now();
    let query = format!("{{job=\"probe\"}} |= \"{marker}\"");
    while acked.elapsed() < Duration::from_secs(10) {
        let v = range_query(client, query_target, &query, ts - 1_000_000_000, 10).await?;
        if v["data"]["result"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
        {
            return Ok(acked.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    bail!("probe {marker} not visible after 10 s")
}

async fn range_query(
    client: &reqwest::Client,
    target: &str,
    query: &str,
    start_ns: i64,
    limit: usize,
) -> anyhow::Result<serde_json::Value> {
    let resp = client
        .get(format!("{target}/loki/api/v1/query_range"))
        .query(&[
            ("query", query.to_string()),
            ("start", start_ns.to_string()),
            ("end", (crate::now_ns() + 1_000_000_000).to_string()),
            ("limit", limit.to_string()),
        ])
        .send()
        .await?;
    crate::json(resp, "query_range").await
}

/// Median latency of a log query over 5 runs, checking it returns `expect_lines` lines.
pub async fn query_latency(
    target: &str,
    query: &str,
    start_ns: i64,
    expect_lines: usize,
) -> anyhow::Result<f64> {
    let client = reqwest::Client::new();
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let v = range_query(&client, target, query, start_ns, 100).await?;
        times.push(t.elapsed());
        let lines: usize = v["data"]["result"]
            .as_array()
            .map(|r| {
                r.iter()
                    .map(|s| s["values"].as_array().map_or(0, |a| a.len()))
                    .sum()
            })
            .unwrap_or(0);
        if lines != expect_lines {
            bail!("{query} returned {lines} lines, expected {expect_lines}");
        }
    }
    times.sort_unstable();
    Ok(times[2].as_secs_f64() * 1e3)
}

/// Median latency of an instant metric query over 5 runs and the value of its single series.
pub async fn instant_count(target: &str, query: &str) -> anyhow::Result<(f64, u64)> {
    let client = reqwest::Client::new();
    let mut times = Vec::new();
    let mut value = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let resp = client
            .get(format!("{target}/loki/api/v1/query"))
            .query(&[("query", query)])
            .send()
            .await?;
        let v = crate::json(resp, "query").await?;
        times.push(t.elapsed());
        value = v["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(0.0) as u64;
    }
    times.sort_unstable();
    Ok((times[2].as_secs_f64() * 1e3, value))
}
