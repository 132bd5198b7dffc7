//! Starting the real `logstream` binary and talking to it, for the integration tests.
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `logstream standalone` process.
pub struct Server {
    pub url: String,
    pub dir: PathBuf,
    child: Child,
    args: Vec<String>,
}

pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

impl Server {
    /// Starts the binary on `dir` and waits until `/readyz` answers 200.
    pub async fn start(dir: &Path, extra: &[&str]) -> Self {
        let args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        Self::start_with(dir, args).await
    }

    async fn start_with(dir: &Path, args: Vec<String>) -> Self {
        Self::start_on(dir, free_port(), args).await
    }

    /// Starts the binary on `dir` listening on `port` (to come back where clients expect it).
    pub async fn start_on(dir: &Path, port: u16, args: Vec<String>) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("server.log"))
            .expect("open server log");
        let child = Command::new(env!("CARGO_BIN_EXE_logstream"))
            .arg("standalone")
            .arg("--data-dir")
            .arg(dir)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .args(&args)
            .env("RUST_LOG", "info,logstream_ingest=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn logstream");
        let server = Self {
            url: format!("http://127.0.0.1:{port}"),
            dir: dir.to_path_buf(),
            child,
            args,
        };
        server.wait_ready().await;
        server
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = reqwest::Client::new();
        while Instant::now() < deadline {
            let resp = client.get(format!("{}/readyz", self.url)).send().await;
            if resp.is_ok_and(|r| r.status() == 200) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        panic!("server did not become ready; log:\n{log}");
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reap");
    }

    /// SIGTERM and the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("send SIGTERM");
        self.child.wait().expect("wait for exit")
    }

    pub async fn restart_after_kill9(self) -> Self {
        let (dir, args) = (self.dir.clone(), self.args.clone());
        self.kill9();
        Self::start_with(&dir, args).await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
            eprintln!("--- server log ({}) ---\n{log}", self.url);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().expect("time fits")
}

/// POSTs a body and returns (status, body text).
pub async fn post(
    url: &str,
    content_type: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, String) {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", content_type)
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("send");
    (resp.status().as_u16(), resp.text().await.expect("body"))
}

/// GETs a Loki API path with query parameters; returns (status, body text).
pub async fn get(
    base: &str,
    path: &str,
    params: &[(&str, String)],
    tenant: Option<&str>,
) -> (u16, String) {
    let mut req = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .query(params);
    if let Some(t) = tenant {
        req = req.header("X-Scope-OrgID", t);
    }
    let resp = req.send().await.expect("send");
    (resp.status().as_u16(), resp.text().await.expect("body"))
}

/// Runs a log query and returns (labels json, ts, line) in result order.
pub async fn lines(
    base: &str,
    query: &str,
    start: i64,
    end: i64,
    limit: usize,
    forward: bool,
    tenant: Option<&str>,
) -> Vec<(Value, i64, String)> {
    let params = [
        ("query", query.to_string()),
        ("start", start.to_string()),
        ("end", end.to_string()),
        ("limit", limit.to_string()),
        (
            "direction",
            if forward { "forward" } else { "backward" }.to_string(),
        ),
    ];
    let (status, body) = get(base, "/loki/api/v1/query_range", &params, tenant).await;
    assert_eq!(status, 200, "query {query} failed: {body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["status"], "success");
    assert_eq!(v["data"]["resultType"], "streams");
    let mut out = Vec::new();
    for s in v["data"]["result"].as_array().expect("result array") {
        for e in s["values"].as_array().expect("values") {
            let ts: i64 = e[0].as_str().expect("ts string").parse().expect("ts int");
            out.push((
                s["stream"].clone(),
                ts,
                e[1].as_str().expect("line").to_string(),
            ));
        }
    }
    out
}

/// Every line of a query in [start, end), paging forward through Loki's per-query limit.
pub async fn all_lines(base: &str, query: &str, start: i64, end: i64) -> Vec<(i64, String)> {
    all_lines_paged(base, query, start, end, None).await
}

/// [`all_lines`] for a tenant.
pub async fn all_lines_as(
    base: &str,
    query: &str,
    start: i64,
    end: i64,
    tenant: &str,
) -> Vec<(i64, String)> {
    all_lines_paged(base, query, start, end, Some(tenant)).await
}

async fn all_lines_paged(
    base: &str,
    query: &str,
    start: i64,
    end: i64,
    tenant: Option<&str>,
) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    let mut from = start;
    loop {
        let page = lines(base, query, from, end, 5000, true, tenant).await;
        let mut page: Vec<(i64, String)> = page.into_iter().map(|(_, t, l)| (t, l)).collect();
        page.sort();
        let Some(last) = page.last().map(|(t, _)| *t) else {
            return out;
        };
        if page.len() < 5000 {
            out.extend(page);
            return out;
        }
        // The page may have cut the lines of its last timestamp short: read all of them again
        // on the next page (so duplicates are counted, not hidden at page edges).
        page.retain(|(t, _)| *t < last);
        assert!(
            !page.is_empty(),
            "more than 5000 lines share timestamp {last}"
        );
        out.extend(page);
        from = last;
    }
}

/// The one value of an instant vector query (0 when empty).
pub async fn instant_value(base: &str, query: &str) -> f64 {
    let (status, body) = get(
        base,
        "/loki/api/v1/query",
        &[("query", query.to_string())],
        None,
    )
    .await;
    assert_eq!(status, 200, "{query}: {body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    v["data"]["result"][0]["value"][1]
        .as_str()
        .map_or(0.0, |s| s.parse().expect("number"))
}
