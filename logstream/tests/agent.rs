//! The node agent with the real binaries: `logstream agent` tailing kubelet-style log files
//! into `logstream standalone`, killed with SIGKILL again and again while the files grow and
//! rotate, and facing a server that goes away under load. At the end the query must return
//! every line exactly once.

mod common;

use common::{Server, all_lines, free_port, lines};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `logstream agent` process.
struct Agent {
    child: Child,
    args: Vec<String>,
    log: PathBuf,
    pub metrics_url: String,
}

impl Agent {
    fn start(pods: &Path, state: &Path, ingest: &str, extra: &[&str]) -> Self {
        let port = free_port();
        let mut args: Vec<String> = [
            "agent",
            "--pods-dir",
            pods.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
            "--ingest",
            ingest,
            "--node",
            "node-a",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--batch-wait",
            "100ms",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        let log = state.parent().unwrap().join("agent.log");
        Self {
            child: Self::spawn(&args, &log),
            args,
            log,
            metrics_url: format!("http://127.0.0.1:{port}"),
        }
    }

    fn spawn(args: &[String], log: &Path) -> Child {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        Command::new(env!("CARGO_BIN_EXE_logstream"))
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("spawn logstream agent")
    }

    fn kill9_and_restart(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.child = Self::spawn(&self.args, &self.log);
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    async fn metric(&self, name: &str) -> f64 {
        let Ok(resp) = reqwest::get(format!("{}/metrics", self.metrics_url)).await else {
            return -1.0;
        };
        let text = resp.text().await.unwrap_or_default();
        text.lines()
            .filter(|l| l.starts_with(name) && !l.starts_with('#'))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- agent log ---\n{}", self.log_text());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CRI timestamp of line `id`: a fixed hour ago plus `id` microseconds.
fn cri_ts(base_s: i64, id: u64) -> String {
    let ns = base_s * 1_000_000_000 + id as i64 * 1000;
    chrono::DateTime::from_timestamp_nanos(ns)
        .format("%Y-%m-%dT%H:%M:%S%.9fZ")
        .to_string()
}

fn text_of(id: u64) -> String {
    format!("line={id} user=u{} msg=\"order {id} shipped\"", id % 97)
}

/// Writes lines `ids` into a container's `0.log` as the runtime would (every 50th line in two
/// pieces, P then F), renaming the file away every `rotate_every` lines.
fn write_lines(
    dir: &Path,
    ids: std::ops::Range<u64>,
    base_s: i64,
    rotate_every: u64,
    pace: Duration,
) {
    std::fs::create_dir_all(dir).unwrap();
    let live = dir.join("0.log");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&live)
        .unwrap();
    let mut rotation = 0;
    let mut buf = String::new();
    for id in ids {
        let ts = cri_ts(base_s, id);
        let text = text_of(id);
        if id % 50 == 0 {
            let (a, b) = text.split_at(text.len() / 2);
            buf.push_str(&format!("{ts} stdout P {a}\n{ts} stdout F {b}\n"));
        } else {
            buf.push_str(&format!("{ts} stdout F {text}\n"));
        }
        if id % 200 == 199 {
            f.write_all(buf.as_bytes()).unwrap();
            buf.clear();
            std::thread::sleep(pace);
        }
        if id % rotate_every == rotate_every - 1 {
            f.write_all(buf.as_bytes()).unwrap();
            buf.clear();
            rotation += 1;
            std::fs::rename(&live, dir.join(format!("0.log.20240101-0000{rotation:02}"))).unwrap();
            f = std::fs::File::create(&live).unwrap();
        }
    }
    f.write_all(buf.as_bytes()).unwrap();
}

/// Reads every line of the test pod back: id → times seen; checks each line's content.
async fn read_back(url: &str, base_s: i64, n: u64) -> HashMap<u64, usize> {
    let start = base_s * 1_000_000_000;
    let end = start + n as i64 * 1000 + 1;
    let mut seen = HashMap::new();
    for (_, line) in all_lines(url, r#"{namespace="shop", pod="api-1"}"#, start, end).await {
        let id: u64 = line
            .strip_prefix("line=")
            .and_then(|r| r.split(' ').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("unexpected line {line:?}"));
        assert_eq!(line, text_of(id), "line {id} arrived changed");
        *seen.entry(id).or_insert(0) += 1;
    }
    seen
}

fn problems(seen: &HashMap<u64, usize>, n: u64) -> Option<String> {
    let missing: Vec<u64> = (0..n).filter(|id| !seen.contains_key(id)).collect();
    let twice: Vec<u64> = seen
        .iter()
        .filter(|(_, c)| **c > 1)
        .map(|(id, _)| *id)
        .collect();
    if missing.is_empty() && twice.is_empty() {
        return None;
    }
    Some(format!(
        "{} missing (first {:?}), {} more than once (first {:?})",
        missing.len(),
        &missing[..missing.len().min(5)],
        twice.len(),
        &twice[..twice.len().min(5)]
    ))
}

async fn wait_exactly_once(url: &str, base_s: i64, n: u64, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let seen = read_back(url, base_s, n).await;
        match problems(&seen, n) {
            None => return,
            Some(p) if Instant::now() > deadline => panic!("after {timeout:?}: {p}"),
            Some(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_line_arrives_once_through_rotations_and_kill9() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("server")).unwrap();
    let server = Server::start(&dir.path().join("server"), &[]).await;
    let pods = dir.path().join("pods");
    let container = pods.join("shop_api-1_7f3a-uid/app");
    std::fs::create_dir_all(&container).unwrap();
    let base_s = chrono::Utc::now().timestamp() - 3600;
    let n = 60_000;
    // Some lines before the agent starts: it reads files from their beginning.
    write_lines(&container, 0..1_000, base_s, u64::MAX, Duration::ZERO);
    let mut agent = Agent::start(&pods, &dir.path().join("state"), &server.url, &[]);
    let writer = {
        let container = container.clone();
        std::thread::spawn(move || {
            write_lines(
                &container,
                1_000..n,
                base_s,
                15_000,
                Duration::from_millis(8),
            );
        })
    };
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        agent.kill9_and_restart();
    }
    writer.join().unwrap();
    wait_exactly_once(&server.url, base_s, n, Duration::from_secs(60)).await;

    // Labels from the path, the stream and the node.
    let start = base_s * 1_000_000_000;
    let first = lines(
        &server.url,
        r#"{container="app"}"#,
        start,
        start + 1_000_000,
        1,
        true,
        None,
    )
    .await;
    let (labels, ts, line) = &first[0];
    assert_eq!(
        labels,
        &serde_json::json!({"namespace": "shop", "pod": "api-1", "container": "app", "stream": "stdout", "node": "node-a"})
    );
    assert_eq!((*ts, line.as_str()), (start, text_of(0).as_str()));
    let files = std::fs::read_dir(&container)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().metadata().unwrap().len() > 0)
        .count();
    assert!(files >= 4, "the writer rotated the file: {files} files");
    // Rotated files stay listed, so the agent still follows every one of them (an empty
    // file has no first line to know it by yet, and is not followed).
    let followed = agent.metric("logstream_agent_files").await;
    assert_eq!(followed, files as f64, "{}", agent.log_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_away_under_load_costs_no_line_and_no_memory() {
    let dir = tempfile::tempdir().unwrap();
    let server_dir = dir.path().join("server");
    std::fs::create_dir_all(&server_dir).unwrap();
    let port = free_port();
    let server = Server::start_on(&server_dir, port, Vec::new()).await;
    let url = server.url.clone();
    let pods = dir.path().join("pods");
    let container = pods.join("shop_api-1_7f3a-uid/app");
    std::fs::create_dir_all(&container).unwrap();
    let base_s = chrono::Utc::now().timestamp() - 3600;
    let budget = 4 << 20;
    let agent = Agent::start(
        &pods,
        &dir.path().join("state"),
        &url,
        &[
            "--memory-budget",
            &budget.to_string(),
            "--batch-bytes",
            "262144",
        ],
    );
    write_lines(&container, 0..1_000, base_s, u64::MAX, Duration::ZERO);
    wait_exactly_once(&url, base_s, 1_000, Duration::from_secs(30)).await;
    let rss_before = agent.rss_kib();

    // Server gone; 200,000 lines (~16 MB, four times the budget) are written meanwhile.
    assert!(server.terminate().success());
    let n = 200_000;
    write_lines(&container, 1_000..n, base_s, 80_000, Duration::ZERO);
    let mut rss_max = 0;
    let mut memory_max: f64 = 0.0;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        rss_max = rss_max.max(agent.rss_kib());
        memory_max = memory_max.max(agent.metric("logstream_agent_memory_bytes").await);
    }
    assert!(
        memory_max <= f64::from(budget + (256 << 10)),
        "log data held: {memory_max} bytes, budget {budget}"
    );
    assert!(agent.metric("logstream_agent_push_retries_total").await >= 1.0);
    let grown = rss_max.saturating_sub(rss_before);
    assert!(
        grown < 3 * budget as u64 / 1024,
        "RSS grew by {grown} KiB with a {budget}-byte budget ({rss_before} KiB before)"
    );

    // Back on the same port: everything arrives, once.
    let server = Server::start_on(&server_dir, port, Vec::new()).await;
    wait_exactly_once(&server.url, base_s, n, Duration::from_secs(90)).await;
    eprintln!(
        "MEASURE agent RSS {rss_before} KiB before, max {rss_max} KiB while the server was away; data held max {memory_max} bytes"
    );
}

/// What the test sink keeps: per sender, the highest request number and the ids it stored, in
/// order. It drops replays exactly as the processors do (a request at or below the sender's
/// highest), so duplicates in it mean the agent sent new requests over old lines.
#[derive(Default)]
struct SinkState {
    marks: HashMap<String, u64>,
    stored: HashMap<String, Vec<(u32, u64)>>,
    requests: u64,
    replays: u64,
}

/// A push endpoint that fails on purpose: 1 in 8 requests gets 503 before anything is stored,
/// 1 in 8 is stored and then answered 500 (the answer lost: the agent must replay it).
async fn start_sink(seed: u64) -> (String, std::sync::Arc<std::sync::Mutex<SinkState>>) {
    use axum::http::{HeaderMap, StatusCode};
    use rand::{Rng, SeedableRng};
    let state = std::sync::Arc::new(std::sync::Mutex::new(SinkState::default()));
    let rng = std::sync::Arc::new(std::sync::Mutex::new(rand::rngs::StdRng::seed_from_u64(
        seed,
    )));
    let s = state.clone();
    let app = axum::Router::new().route(
        "/loki/api/v1/push",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let (s, rng) = (s.clone(), rng.clone());
            async move {
                let fate = rng.lock().unwrap().random_range(0..8u32);
                if fate == 0 {
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                let origin = headers["x-logstream-origin"].to_str().unwrap().to_string();
                let (seq, source) = origin.split_once(' ').unwrap();
                let seq: u64 = seq.parse().unwrap();
                let streams = logstream_ingest::decode::decode_loki_push(
                    headers.get("content-type").and_then(|v| v.to_str().ok()),
                    headers
                        .get("content-encoding")
                        .and_then(|v| v.to_str().ok()),
                    &body,
                    &logstream_ingest::decode::Limits::default(),
                    common::now_ns(),
                )
                .expect("the agent sends valid pushes");
                let mut st = s.lock().unwrap();
                st.requests += 1;
                if st.marks.get(source).is_some_and(|m| seq <= *m) {
                    st.replays += 1;
                } else {
                    st.marks.insert(source.to_string(), seq);
                    let mut ids: Vec<(i64, u32, u64)> = Vec::new();
                    for stream in &streams {
                        for e in &stream.entries {
                            let (c, id) = parse_model_line(&e.line);
                            ids.push((e.ts_ns, c, id));
                        }
                    }
                    // One stream per request here (stdout only): already in file order.
                    st.stored
                        .entry(source.to_string())
                        .or_default()
                        .extend(ids.into_iter().map(|(_, c, id)| (c, id)));
                }
                if fate == 1 {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::NO_CONTENT
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, state)
}

fn model_line(c: u32, id: u64) -> String {
    format!("c{c} id={id} {}", "x".repeat((id % 40) as usize))
}

fn parse_model_line(line: &str) -> (u32, u64) {
    let mut parts = line.split(' ');
    let c = parts.next().and_then(|p| p.strip_prefix('c')?.parse().ok());
    let id = parts
        .next()
        .and_then(|p| p.strip_prefix("id=")?.parse().ok());
    match (c, id) {
        (Some(c), Some(id)) => (c, id),
        _ => panic!("unexpected line {line:?}"),
    }
}

/// One container's files as the model knows them: which lines each file generation holds and
/// whether that file was deleted (its unread lines may then be lost).
struct ModelContainer {
    dir: PathBuf,
    next_id: u64,
    generation: u32,
    /// (generation, ids) of every file this container had.
    files: Vec<(u32, Vec<u64>)>,
    /// Rotated paths still on disk, with their generation.
    rotated: Vec<(PathBuf, u32)>,
    deleted: std::collections::HashSet<u32>,
}

impl ModelContainer {
    fn live(&self) -> PathBuf {
        self.dir.join("0.log")
    }

    fn write(&mut self, c: u32, n: u64) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.live())
            .unwrap();
        let mut text = String::new();
        for _ in 0..n {
            let id = self.next_id;
            self.next_id += 1;
            let ts = cri_ts(chrono::Utc::now().timestamp() - 60, id);
            text.push_str(&format!("{ts} stdout F {}\n", model_line(c, id)));
            match self.files.last_mut() {
                Some((g, ids)) if *g == self.generation => ids.push(id),
                _ => self.files.push((self.generation, vec![id])),
            }
        }
        f.write_all(text.as_bytes()).unwrap();
    }

    fn rotated_path(&self) -> PathBuf {
        self.dir
            .join(format!("0.log.2024010{}-000000", self.generation))
    }

    fn rotate_rename(&mut self) {
        if !self.live().exists() {
            return;
        }
        let to = self.rotated_path();
        std::fs::rename(self.live(), &to).unwrap();
        std::fs::File::create(self.live()).unwrap();
        self.rotated.push((to, self.generation));
        self.generation += 1;
    }

    fn copy_truncate(&mut self) {
        if !self.live().exists() {
            return;
        }
        let to = self.rotated_path();
        std::fs::copy(self.live(), &to).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(self.live())
            .unwrap()
            .set_len(0)
            .unwrap();
        self.rotated.push((to, self.generation));
        self.generation += 1;
    }

    fn delete_oldest_rotated(&mut self) {
        if self.rotated.is_empty() {
            return;
        }
        let (path, g) = self.rotated.remove(0);
        std::fs::remove_file(path).unwrap();
        self.deleted.insert(g);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_writes_rotations_truncations_deletions_and_crashes_lose_or_repeat_nothing() {
    use rand::{Rng, SeedableRng};
    for seed in [1u64, 2, 3, 4, 5] {
        let dir = tempfile::tempdir().unwrap();
        let (sink, state) = start_sink(seed).await;
        let pods = dir.path().join("pods");
        let mut containers: Vec<ModelContainer> = (0..2)
            .map(|c| {
                let d = pods.join(format!("ns_pod-{c}_uid-{c}/app"));
                std::fs::create_dir_all(&d).unwrap();
                ModelContainer {
                    dir: d,
                    next_id: 0,
                    generation: 0,
                    files: Vec::new(),
                    rotated: Vec::new(),
                    deleted: Default::default(),
                }
            })
            .collect();
        let mut agent = Agent::start(&pods, &dir.path().join("state"), &sink, &[]);
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut ops = Vec::new();
        for _ in 0..80 {
            let c = rng.random_range(0..2usize);
            let op = rng.random_range(0..100u32);
            let m = &mut containers[c];
            match op {
                0..45 => {
                    let n = rng.random_range(1..400);
                    m.write(c as u32, n);
                    ops.push(format!("write c{c} {n}"));
                }
                45..55 => {
                    m.rotate_rename();
                    ops.push(format!("rename c{c}"));
                }
                55..63 => {
                    m.copy_truncate();
                    ops.push(format!("copytruncate c{c}"));
                }
                63..68 => {
                    m.delete_oldest_rotated();
                    ops.push(format!("delete c{c}"));
                }
                68..78 => {
                    agent.kill9_and_restart();
                    ops.push("kill9".into());
                }
                _ => {
                    let ms = rng.random_range(50..300);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    ops.push(format!("sleep {ms}"));
                }
            }
        }
        // Every line of a file that was never deleted must arrive once; lines of deleted files
        // at most once; per file, in order.
        let deadline = Instant::now() + Duration::from_secs(60);
        let verdict = loop {
            let problems = {
                let st = state.lock().unwrap();
                let mut count: HashMap<(u32, u64), usize> = HashMap::new();
                for ids in st.stored.values() {
                    for key in ids {
                        *count.entry(*key).or_default() += 1;
                    }
                }
                let mut missing = Vec::new();
                let mut twice = Vec::new();
                for (c, m) in containers.iter().enumerate() {
                    for (g, ids) in &m.files {
                        for id in ids {
                            match count.get(&(c as u32, *id)).copied().unwrap_or(0) {
                                0 if !m.deleted.contains(g) => missing.push((c, *id)),
                                0 | 1 => {}
                                _ => twice.push((c, *id)),
                            }
                        }
                    }
                }
                let mut disorder = Vec::new();
                for (source, ids) in &st.stored {
                    if ids.windows(2).any(|w| w[0].0 != w[1].0 || w[0].1 >= w[1].1) {
                        disorder.push(source.clone());
                    }
                }
                (missing, twice, disorder, st.requests, st.replays)
            };
            let (missing, twice, disorder, requests, replays) = problems;
            if missing.is_empty() && twice.is_empty() && disorder.is_empty() {
                break format!("seed {seed}: {requests} requests, {replays} replays dropped");
            }
            if Instant::now() > deadline || !twice.is_empty() || !disorder.is_empty() {
                panic!(
                    "seed {seed}: {} missing (first {:?}), {} twice (first {:?}), out of order in {disorder:?}\nops: {ops:?}\n{}",
                    missing.len(),
                    &missing[..missing.len().min(5)],
                    twice.len(),
                    &twice[..twice.len().min(5)],
                    agent.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        eprintln!("MEASURE model {verdict}; ops: {}", ops.len());
        assert!(
            state.lock().unwrap().replays > 0,
            "the sink lost answers on purpose: some requests must have come back as replays"
        );
    }
}

/// Creates a pod on `node` (bypassing the scheduler) and returns its uid.
async fn create_pod(
    ns: &logstream_e2e::kube::TestNamespace,
    name: &str,
    node: &str,
    app: &str,
    exclude: bool,
) -> String {
    let mut pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"nodeName": node, "containers": [{"name": "app", "image": "example/app:1"}]},
    }))
    .unwrap();
    if exclude {
        pod.metadata.annotations =
            Some([("logstream.dev/exclude".to_string(), "true".to_string())].into());
    }
    let created = ns
        .api::<k8s_openapi::api::core::v1::Pod>()
        .create(&Default::default(), &pod)
        .await
        .expect("create pod");
    created.metadata.uid.expect("uid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_cluster_only_pods_a_pipeline_selects_ship_as_their_namespace_with_pod_labels() {
    let Some(cluster) = logstream_e2e::kube::TestCluster::connect().await else {
        return;
    };
    let ns = cluster.fresh_namespace("agent").await.expect("namespace");
    let n = ns.name().to_string();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("server")).unwrap();
    let server = Server::start(&dir.path().join("server"), &[]).await;
    let pods = dir.path().join("pods");
    let base_s = chrono::Utc::now().timestamp() - 3600;
    // On this node: selected, opted out, not selected. On another node: same labels, but not
    // ours (its pod is not in this node's watch).
    let mut expected = 0;
    let mut api1: Option<PathBuf> = None;
    for (i, (pod, node, app, exclude)) in [
        ("api-1", "kwok-node-0", "api", false),
        ("api-2", "kwok-node-0", "api", true),
        ("db-0", "kwok-node-0", "db", false),
        ("api-3", "kwok-node-1", "api", false),
    ]
    .into_iter()
    .enumerate()
    {
        let uid = create_pod(&ns, pod, node, app, exclude).await;
        let container = pods.join(format!("{n}_{pod}_{uid}/app"));
        let from = i as u64 * 1000;
        write_lines(
            &container,
            from..from + 500,
            base_s,
            u64::MAX,
            Duration::ZERO,
        );
        if i == 0 {
            expected = 500;
            api1 = Some(container.clone());
            // A second container writing a stack trace: the pipeline joins it into one event.
            let java = pods.join(format!("{n}_{pod}_{uid}/java"));
            std::fs::create_dir_all(&java).unwrap();
            let ts = cri_ts(base_s, 9000);
            let mut text =
                format!("{ts} stdout F line=9000 java.lang.IllegalStateException: boom\n");
            for frame in [
                "\tat com.shop.Api.handle(Api.java:42)",
                "\tat com.shop.Main.main(Main.java:7)",
            ] {
                text.push_str(&format!("{ts} stdout F {frame}\n"));
            }
            text.push_str(&format!(
                "{} stdout F line=9001 recovered\n",
                cri_ts(base_s, 9001)
            ));
            std::fs::write(java.join("0.log"), text).unwrap();
            expected += 2;
        }
    }
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            r#"[agent]
kubernetes = true

[[pipelines]]
namespace = "{n}"
name = "web"
spec = {{ logStreamRef = {{ name = "main" }}, selector = {{ matchLabels = {{ app = "api" }} }}, labels = {{ team = "checkout" }}, multiline = {{ firstLine = "^line=", timeoutMillis = 500 }} }}

[[pipelines]]
namespace = "elsewhere"
name = "all"
spec = {{ logStreamRef = {{ name = "main" }}, selector = {{}} }}
"#
        ),
    )
    .unwrap();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_logstream"))
        .args(["agent", "--config", config.to_str().unwrap()])
        .args(["--pods-dir", pods.to_str().unwrap()])
        .args(["--state-dir", dir.path().join("state").to_str().unwrap()])
        .args([
            "--ingest",
            &server.url,
            "--node",
            "kwok-node-0",
            "--batch-wait",
            "100ms",
        ])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("KUBECONFIG", cluster.kubeconfig())
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("agent.log")).unwrap())
        .spawn()
        .expect("spawn logstream agent");
    let start = base_s * 1_000_000_000;
    let end = start + 10_000_000;
    let deadline = Instant::now() + Duration::from_secs(60);
    let got = loop {
        let got = common::all_lines_as(
            &server.url,
            &format!(r#"{{namespace="{n}"}}"#),
            start,
            end,
            &n,
        )
        .await;
        if got.len() >= expected || Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    // Give the agent time to ship what it should not, if it would.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got_after = common::all_lines_as(
        &server.url,
        &format!(r#"{{namespace="{n}"}}"#),
        start,
        end,
        &n,
    )
    .await;

    // The API server frozen (SIGSTOP): api-1's container restarts into a new file, 1.log. The
    // pod cache still knows the pod, so the new file ships meanwhile.
    let restarted = {
        let _thaw = Frozen::part("kube-apiserver");
        let ts = |id| cri_ts(base_s, id);
        let text: String = (2000..2100u64)
            .map(|id| format!("{} stdout F {}\n", ts(id), text_of(id)))
            .collect();
        std::fs::write(api1.as_ref().unwrap().join("1.log"), text).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = common::all_lines_as(
                &server.url,
                &format!(r#"{{namespace="{n}"}}"#),
                start,
                end,
                &n,
            )
            .await;
            if got.len() >= expected + 100 || Instant::now() > deadline {
                break got.len();
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    };
    let log = std::fs::read_to_string(dir.path().join("agent.log")).unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        restarted,
        expected + 100,
        "a new file of a cached pod ships while the API server is away\n{log}"
    );
    assert_eq!(got.len(), expected, "api-1's lines, as tenant {n}\n{log}");
    assert_eq!(
        got_after.len(),
        expected,
        "nothing of api-2 (opted out), db-0 (not selected) or api-3 (other node)"
    );
    let ids: Vec<u64> = got_after
        .iter()
        .map(|(_, l)| {
            l.strip_prefix("line=")
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    let mut want: Vec<u64> = (0..500).collect();
    want.extend([9000, 9001]);
    assert_eq!(ids, want);
    assert_eq!(
        got_after[500].1,
        "line=9000 java.lang.IllegalStateException: boom\n\tat com.shop.Api.handle(Api.java:42)\n\tat com.shop.Main.main(Main.java:7)",
        "the stack trace is one event"
    );
    let first = lines(
        &server.url,
        r#"{pod="api-1"}"#,
        start,
        end,
        1,
        true,
        Some(&n),
    )
    .await;
    assert_eq!(
        first[0].0,
        serde_json::json!({"namespace": n, "pod": "api-1", "container": "app", "stream": "stdout",
            "node": "kwok-node-0", "app": "api", "team": "checkout", "logpipeline": "web"})
    );
    // Not under the default tenant.
    let default = common::all_lines(&server.url, r#"{pod="api-1"}"#, start, end).await;
    assert!(
        default.is_empty(),
        "{} lines under the default tenant",
        default.len()
    );
    ns.delete().await.expect("delete namespace");
}

/// A part of `./e2e/env` frozen with SIGSTOP until dropped (SIGCONT, even when a test fails).
struct Frozen(u32);

impl Frozen {
    fn part(name: &str) -> Self {
        let pids = logstream_e2e::env::env_file_path()
            .parent()
            .expect("env file has a directory")
            .join("pids");
        let pid: u32 = std::fs::read_to_string(pids.join(format!("{name}.pid")))
            .unwrap_or_else(|e| panic!("read the pid file of {name}: {e}"))
            .trim()
            .parse()
            .expect("pid");
        Self::signal(pid, "STOP");
        Self(pid)
    }

    fn signal(pid: u32, signal: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok || signal == "CONT", "kill -{signal} {pid} failed");
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        Self::signal(self.0, "CONT");
    }
}
