//! A distributed LogStream for tests: `logstream ingest|processor|query` processes of the real
#![allow(dead_code)]
//! binary against the real Kafka and S3 endpoint that `./e2e/env up` started.

use crate::common::{all_lines_as, free_port};
use logstream_e2e::kafka::TestKafka;
use logstream_e2e::s3::TestS3;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One process of a role.
pub struct RoleProc {
    pub role: &'static str,
    pub name: String,
    pub port: u16,
    config: PathBuf,
    log: PathBuf,
    env: Vec<(String, String)>,
    child: Option<Child>,
}

impl RoleProc {
    fn spawn(role: &'static str, name: &str, config: &Path, dir: &Path) -> Self {
        Self::spawn_with_env(role, name, config, dir, Vec::new())
    }

    /// `logstream <role> --config <config>` with `env` added to its environment, logging to
    /// `<dir>/<name>.log`.
    pub fn spawn_with_env(
        role: &'static str,
        name: &str,
        config: &Path,
        dir: &Path,
        env: Vec<(String, String)>,
    ) -> Self {
        let mut p = Self {
            role,
            name: name.to_string(),
            port: free_port(),
            config: config.to_path_buf(),
            log: dir.join(format!("{name}.log")),
            env,
            child: None,
        };
        p.start();
        p
    }

    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open role log");
        let child = Command::new(env!("CARGO_BIN_EXE_logstream"))
            .arg(self.role)
            .arg("--config")
            .arg(&self.config)
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--instance")
            .arg(&self.name)
            .env("RUST_LOG", "info,rdkafka=warn")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn logstream");
        self.child = Some(child);
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let client = reqwest::Client::new();
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "{} exited with {status}; log:\n{}",
                    self.name,
                    self.log_text()
                );
            }
            let resp = client.get(format!("{}/readyz", self.url())).send().await;
            if resp.is_ok_and(|r| r.status() == 200) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "{} did not become ready; log:\n{}",
            self.name,
            self.log_text()
        );
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: no chance to flush or leave the group.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("kill -9");
            c.wait().expect("reap");
        }
    }

    /// Starts it again (same name, port and config) and waits until ready.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "{} is still running", self.name);
        self.start();
        self.wait_ready().await;
    }

    /// SIGTERM; returns whether it exited 0.
    pub fn terminate(&mut self) -> bool {
        self.send_term();
        self.wait_exit()
    }

    /// Sends SIGTERM without waiting (to stop several at once).
    pub fn send_term(&self) {
        if let Some(c) = &self.child {
            Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status()
                .expect("send SIGTERM");
        }
    }

    /// Waits for the process to exit; whether it exited 0.
    pub fn wait_exit(&mut self) -> bool {
        match self.child.take() {
            Some(mut c) => c.wait().expect("wait for exit").success(),
            None => true,
        }
    }

    /// The values of a metric family summed over its label sets, from `/metrics`.
    pub async fn metric_sum(&self, name: &str) -> f64 {
        let body = reqwest::get(format!("{}/metrics", self.url()))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics body");
        body.lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

impl Drop for RoleProc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- {} log ---\n{}", self.name, self.log_text());
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Settings of a test cluster.
pub struct ClusterSpec {
    pub ingest: usize,
    pub processors: usize,
    pub queries: usize,
    pub partitions: i32,
    pub flush_interval: &'static str,
    pub flush_line_bytes: u64,
}

/// Every process of a distributed LogStream on a fresh topic and bucket.
pub struct Cluster {
    pub config: PathBuf,
    pub topic: String,
    pub bucket: String,
    pub ingest: Vec<RoleProc>,
    pub processors: Vec<RoleProc>,
    pub queries: Vec<RoleProc>,
    pub kafka: TestKafka,
    pub s3: TestS3,
    /// Last: dropped after the processes, whose logs are printed from it on failure.
    pub dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts the cluster, or fails (never skips) when Kafka or S3 is missing under
    /// REQUIRE_E2E=1; returns `None` only when the parts are absent and not required.
    pub async fn start(spec: ClusterSpec) -> Option<Self> {
        let kafka = TestKafka::connect().await?;
        let s3 = TestS3::connect().await?;
        let dir = tempfile::tempdir().expect("tempdir");
        let bucket = s3.fresh_bucket("dist").await.expect("create bucket");
        let topic = logstream_e2e::unique_name("dist");
        let env = logstream_e2e::env::E2eEnv::load().expect("e2e env");
        let var = |k: &str| env.require(k).expect("S3 settings").to_string();
        let config = dir.path().join("logstream.toml");
        std::fs::write(
            &config,
            format!(
                r#"
[kafka]
bootstrap = "{bootstrap}"
topic = "{topic}"
partitions = {partitions}
request_timeout_ms = 5000

[storage]
url = "s3://{bucket}"
options = {{ aws_endpoint = "{endpoint}", aws_region = "{region}", aws_access_key_id = "{key}", aws_secret_access_key = "{secret}", aws_allow_http = "true", aws_virtual_hosted_style_request = "false" }}

[processor]
flush_interval = "{flush_interval}"
flush_line_bytes = {flush_line_bytes}
group = "{topic}-processors"
"#,
                bootstrap = kafka.bootstrap(),
                partitions = spec.partitions,
                bucket = bucket.name(),
                endpoint = var("S3_ENDPOINT"),
                region = var("S3_REGION"),
                key = var("S3_ACCESS_KEY_ID"),
                secret = var("S3_SECRET_ACCESS_KEY"),
                flush_interval = spec.flush_interval,
                flush_line_bytes = spec.flush_line_bytes,
            ),
        )
        .expect("write config");
        let mut cluster = Self {
            config: config.clone(),
            topic,
            bucket: bucket.name().to_string(),
            ingest: Vec::new(),
            processors: Vec::new(),
            queries: Vec::new(),
            kafka,
            s3,
            dir,
        };
        let d = cluster.dir.path().to_path_buf();
        for i in 0..spec.ingest {
            let mut p = RoleProc::spawn("ingest", &format!("ingest-{i}"), &config, &d);
            p.wait_ready().await;
            cluster.ingest.push(p);
        }
        for i in 0..spec.processors {
            let mut p = RoleProc::spawn("processor", &format!("processor-{i}"), &config, &d);
            p.wait_ready().await;
            cluster.processors.push(p);
        }
        for i in 0..spec.queries {
            cluster.add_query(i).await;
        }
        Some(cluster)
    }

    /// Starts one more query replica.
    pub async fn add_query(&mut self, i: usize) -> &RoleProc {
        let d = self.dir.path().to_path_buf();
        let mut p = RoleProc::spawn("query", &format!("query-{i}"), &self.config, &d);
        p.wait_ready().await;
        self.queries.push(p);
        self.queries.last().expect("just pushed")
    }

    pub fn ingest_urls(&self) -> Vec<String> {
        self.ingest.iter().map(RoleProc::url).collect()
    }
}

/// The process id of a part `./e2e/env up` started (`kafka`, `s3`), from its pid file.
pub fn part_pid(part: &str) -> u32 {
    let env_file = logstream_e2e::env::env_file_path();
    let pids = env_file
        .parent()
        .expect("env file has a directory")
        .join("pids");
    let text = std::fs::read_to_string(pids.join(format!("{part}.pid")))
        .unwrap_or_else(|e| panic!("read the pid file of {part}: {e}"));
    text.trim().parse().expect("pid")
}

/// Freezes (SIGSTOP) or thaws (SIGCONT) a part: to its clients it is gone, then back.
pub fn signal_part(part: &str, signal: &str) {
    let pid = part_pid(part);
    let ok = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("run kill")
        .success();
    assert!(ok, "kill -{signal} {part} ({pid}) failed");
}

/// What the pushers know about each event id.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Acknowledged with 2xx: must be queryable exactly once.
    pub acked: Vec<u64>,
    /// Sent but not acknowledged (error, 5xx, connection cut): at most once.
    pub unknown: Vec<u64>,
    /// Statuses of failed requests and how often.
    pub failures: HashMap<String, usize>,
}

/// The line of event `id`: its content is derived from the id, so a reader can check it.
pub fn line_of(id: u64) -> String {
    format!(
        "ev={id} level={} msg=\"request {id} handled in {}ms\"",
        ["info", "warn", "error"][(id % 3) as usize],
        id % 997
    )
}

/// Pushes events `ids` (in the order given) in requests of `batch` events, spread over the
/// ingest replicas in turn, pacing requests `pause` apart. Failed requests are not retried
/// (their events are counted unknown), so an event id is sent at most once.
pub async fn push_events(
    ingest: Vec<String>,
    ids: impl IntoIterator<Item = u64>,
    batch: usize,
    t0: i64,
    pause: Duration,
) -> Ledger {
    let ids: Vec<u64> = ids.into_iter().collect();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let mut ledger = Ledger::default();
    for (turn, chunk) in ids.chunks(batch.max(1)).enumerate() {
        let mut streams: HashMap<u64, Vec<serde_json::Value>> = HashMap::new();
        for &id in chunk {
            streams.entry(id % 8).or_default().push(serde_json::json!([
                (t0 + id as i64 * 1000).to_string(),
                line_of(id)
            ]));
        }
        let body = serde_json::json!({
            "streams": streams.into_iter().map(|(s, values)| serde_json::json!({
                "stream": {"job": "dist", "shard": format!("s{s}")},
                "values": values,
            })).collect::<Vec<_>>()
        });
        let url = format!("{}/loki/api/v1/push", ingest[turn % ingest.len()]);
        let outcome = client
            .post(&url)
            .header("X-Scope-OrgID", "dist")
            .json(&body)
            .send()
            .await;
        match outcome {
            Ok(r) if r.status().is_success() => ledger.acked.extend_from_slice(chunk),
            Ok(r) => {
                let status = r.status().as_u16();
                let retry_after = r.headers().contains_key("retry-after");
                let text = r.text().await.unwrap_or_default();
                *ledger
                    .failures
                    .entry(format!(
                        "{status}{} {}",
                        if retry_after { " +Retry-After" } else { "" },
                        text.trim().chars().take(80).collect::<String>()
                    ))
                    .or_default() += 1;
                ledger.unknown.extend_from_slice(chunk);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => {
                let kind = if e.is_connect() {
                    "connect"
                } else if e.is_timeout() {
                    "timeout"
                } else {
                    "transport"
                };
                *ledger.failures.entry(kind.to_string()).or_default() += 1;
                ledger.unknown.extend_from_slice(chunk);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        tokio::time::sleep(pause).await;
    }
    ledger
}

/// Reads every event of the test stream through a query replica: id → times seen, checking
/// each line's content. Reads time windows of 50,000 events, four at a time: one query over
/// everything would page through every file again for each page of 5000 lines.
pub async fn read_events(query: &str, t0: i64, max_id: u64) -> HashMap<u64, usize> {
    use futures::StreamExt;
    const WINDOW: u64 = 50_000;
    let windows = (0..max_id.div_ceil(WINDOW).max(1)).map(|w| {
        // Event `id` is at t0 + id µs; window w holds ids [w·WINDOW, (w+1)·WINDOW), end exclusive.
        let start = t0 + (w * WINDOW) as i64 * 1000;
        let end = t0 + ((w + 1) * WINDOW).min(max_id.max(1)) as i64 * 1000;
        async move { all_lines_as(query, r#"{job="dist"}"#, start, end, "dist").await }
    });
    let pages: Vec<Vec<(i64, String)>> = futures::stream::iter(windows)
        .buffer_unordered(4)
        .collect()
        .await;
    let mut seen: HashMap<u64, usize> = HashMap::new();
    for (_, line) in pages.into_iter().flatten() {
        let id: u64 = line
            .strip_prefix("ev=")
            .and_then(|r| r.split(' ').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("unexpected line {line:?}"));
        assert_eq!(line, line_of(id), "content of event {id} changed");
        *seen.entry(id).or_default() += 1;
    }
    seen
}

/// Checks the exactly-once promise: each acknowledged event once, each unknown at most once,
/// nothing else. Returns a description of what is wrong, if anything.
pub fn exactly_once_problems(ledger: &Ledger, seen: &HashMap<u64, usize>) -> Option<String> {
    let mut missing = Vec::new();
    let mut dup = Vec::new();
    for id in &ledger.acked {
        match seen.get(id).copied().unwrap_or(0) {
            0 => missing.push(*id),
            1 => {}
            _ => dup.push(*id),
        }
    }
    let unknown: std::collections::HashSet<u64> = ledger.unknown.iter().copied().collect();
    let acked: std::collections::HashSet<u64> = ledger.acked.iter().copied().collect();
    let extra: Vec<u64> = seen
        .iter()
        .filter(|(id, n)| {
            (!acked.contains(id) && !unknown.contains(id)) || (unknown.contains(id) && **n > 1)
        })
        .map(|(id, _)| *id)
        .collect();
    if missing.is_empty() && dup.is_empty() && extra.is_empty() {
        return None;
    }
    Some(format!(
        "{} acked events missing (first {:?}), {} duplicated (first {:?}), {} unexpected (first {:?})",
        missing.len(),
        &missing[..missing.len().min(5)],
        dup.len(),
        &dup[..dup.len().min(5)],
        extra.len(),
        &extra[..extra.len().min(5)],
    ))
}

/// Waits until every acknowledged event is visible exactly once through `query` (or times out
/// with what is wrong).
pub async fn wait_exactly_once(
    query: &str,
    ledger: &Ledger,
    t0: i64,
    max_id: u64,
    timeout: Duration,
) -> HashMap<u64, usize> {
    let deadline = Instant::now() + timeout;
    loop {
        let seen = read_events(query, t0, max_id).await;
        match exactly_once_problems(ledger, &seen) {
            None => return seen,
            Some(p) if Instant::now() > deadline => panic!("after {timeout:?}: {p}"),
            Some(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}
