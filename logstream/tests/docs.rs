//! The docs cannot rot: every shell block (```sh, also bash/shell/console) in README.md and
//! docs/*.md is either run here or names the test or CI step that runs it.
//!
//! The marker is an HTML comment on the last non-blank line before the block's fence:
//!
//! - `<!-- doc-test: run -->`: run with bash (`-e -o pipefail`); it must exit 0.
//! - `<!-- doc-test: run expect="TEXT" -->`: also, its output must contain TEXT (re-run for up
//!   to 20 s while it does not: a query right after a push may come before the processor).
//! - `<!-- doc-test: run background -->`: a server; started, then awaited until `/readyz` on
//!   its port answers, stopped after the file's last block.
//! - `<!-- doc-test: run cluster -->`: run with bash in the repository root against the test
//!   cluster of `./e2e/env` (its `KUBECONFIG`; its `kubectl` and `helm` first on PATH); it
//!   must exit 0. Fails under `REQUIRE_E2E=1` when the cluster is not there, else skips.
//!   Only for blocks that leave the shared cluster as they found it (e.g. applying the CRDs).
//! - `<!-- doc-test: covered-by PATH[::TEST_FN] -->`: PATH (from the repository root) exists
//!   and, when given, contains `fn TEST_FN`; that test (or CI step such as `.ci/run`) runs
//!   the same commands.
//! - `<!-- doc-test: untested "REASON" -->`: nothing runs it, said out loud. At most
//!   [`UNTESTED_BUDGET`] blocks may carry it, so the count cannot grow unnoticed.
//!
//! README.md is owned elsewhere and carries no markers: its blocks are mapped in [`README`].
//!
//! The run blocks of one file run in order in one fresh temporary directory, with the
//! `logstream` binary this test was built with first on PATH, and with these rewrites, which
//! change where things run, never what runs: port 3100 becomes a free port (also given as
//! `LOGSTREAM_LISTEN` and `LOGSTREAM_ADDR`); `cargo run --release --` becomes `logstream`, and
//! `cargo install --locked --path logstream` does nothing (the binary is already built).

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// README.md's blocks, by their first line: README carries no markers.
const README: &[(&str, &str)] = &[
    ("cargo run --release -- standalone", "run background"),
    ("./test.sh", "covered-by .ci/run"),
    (
        "# Push with Loki's API",
        r#"run expect="GET /users 500 upstream timeout""#,
    ),
    (
        "logstream agent --pods-dir",
        "covered-by logstream/tests/agent.rs::every_line_arrives_once_through_rotations_and_kill9",
    ),
    (
        "logstream standalone --pipelines",
        "covered-by logstream/tests/pipelines.rs::an_apache_pipeline_parses_redacts_drops_routes_and_labels_real_lines",
    ),
    (
        "export LOGSTREAM_KAFKA_BOOTSTRAP=kafka:9092",
        "covered-by logstream/tests/distributed.rs::every_acknowledged_event_is_stored_exactly_once_through_kill9",
    ),
    (
        "helm install logstream charts/logstream",
        "covered-by logstream/tests/install.rs::helm_install_gives_the_operator_just_the_rights_it_needs",
    ),
];

/// Test files another branch brings (the Helm chart's install test): accepted as covering
/// while absent. Remove an entry once the file exists (a test below insists).
const ARRIVING: &[&str] = &[];

/// Blocks allowed to say `untested`; lower it when one gets a test.
const UNTESTED_BUDGET: usize = 0;

const SHELLS: &[&str] = &["sh", "bash", "shell", "console", "zsh"];

#[derive(Debug, Clone, PartialEq)]
enum Marker {
    Run {
        background: bool,
        expect: Option<String>,
    },
    CoveredBy {
        path: String,
        test: Option<String>,
    },
    Untested(String),
    RunCluster,
}

#[derive(Debug)]
struct Block {
    file: String,
    /// 1-based line of the opening fence.
    line: usize,
    text: String,
    marker: Result<Marker, String>,
}

impl Block {
    fn place(&self) -> String {
        let first = self.text.lines().next().unwrap_or_default();
        format!("{}:{} (block starting `{first}`)", self.file, self.line)
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn doc_files() -> Vec<String> {
    let mut files = vec!["README.md".to_owned()];
    let mut docs: Vec<_> = std::fs::read_dir(repo().join("docs"))
        .expect("list docs/")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    docs.sort();
    files.extend(docs);
    // The install's own READMEs are docs an admin reads too.
    files.extend([
        "charts/logstream/README.md".to_owned(),
        "manifests/README.md".to_owned(),
    ]);
    files
}

fn parse_marker(text: &str) -> Result<Marker, String> {
    let text = text.trim();
    if let Some(rest) = text.strip_prefix("covered-by ") {
        let (path, test) = match rest.trim().split_once("::") {
            Some((p, t)) => (p, Some(t.to_owned())),
            None => (rest.trim(), None),
        };
        return Ok(Marker::CoveredBy {
            path: path.to_owned(),
            test,
        });
    }
    if let Some(reason) = text
        .strip_prefix("untested \"")
        .and_then(|r| r.strip_suffix('"'))
    {
        return Ok(Marker::Untested(reason.to_owned()));
    }
    match text {
        "run cluster" => Ok(Marker::RunCluster),
        "run" => Ok(Marker::Run {
            background: false,
            expect: None,
        }),
        "run background" => Ok(Marker::Run {
            background: true,
            expect: None,
        }),
        _ => text
            .strip_prefix("run expect=\"")
            .and_then(|r| r.strip_suffix('"'))
            .map(|e| Marker::Run {
                background: false,
                expect: Some(e.to_owned()),
            })
            .ok_or_else(|| format!("unknown doc-test marker `{text}`")),
    }
}

/// The shell blocks of one Markdown file, with the marker before each.
fn blocks_of(file: &str, markdown: &str) -> Vec<Block> {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(info) = lines[i].trim_start().strip_prefix("```") else {
            i += 1;
            continue;
        };
        let lang = info.split_whitespace().next().unwrap_or_default();
        let end = (i + 1..lines.len())
            .find(|&j| lines[j].trim_start().starts_with("```"))
            .unwrap_or(lines.len());
        if SHELLS.contains(&lang) {
            let marker = lines[..i]
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .and_then(|l| l.trim().strip_prefix("<!-- doc-test:"))
                .and_then(|l| l.strip_suffix("-->"))
                .map(parse_marker)
                .unwrap_or_else(|| Err("no doc-test marker".into()));
            out.push(Block {
                file: file.to_owned(),
                line: i + 1,
                text: lines[i + 1..end].join("\n"),
                marker,
            });
        }
        i = end + 1;
    }
    out
}

/// Every shell block of the docs, README's markers taken from [`README`].
fn all_blocks() -> Vec<Block> {
    let mut out = Vec::new();
    for file in doc_files() {
        let text = std::fs::read_to_string(repo().join(&file)).expect("read doc");
        let mut blocks = blocks_of(&file, &text);
        if file == "README.md" {
            for block in &mut blocks {
                let first = block.text.lines().next().unwrap_or_default();
                if let Some((_, marker)) = README.iter().find(|(start, _)| first.starts_with(start))
                {
                    block.marker = parse_marker(marker);
                }
            }
        }
        out.extend(blocks);
    }
    out
}

#[test]
fn every_shell_block_is_run_or_covered_by_a_named_test() {
    let mut problems = Vec::new();
    let mut untested = Vec::new();
    for block in all_blocks() {
        match &block.marker {
            Err(why) => problems.push(format!(
                "{}: {why}. Put `<!-- doc-test: run -->` or `<!-- doc-test: covered-by \
                 <file>[::<test fn>] -->` on the line before the fence (see logstream/tests/docs.rs)",
                block.place()
            )),
            Ok(Marker::CoveredBy { path, test }) => {
                if let Err(why) = check_cover(path, test.as_deref()) {
                    problems.push(format!("{}: {why}", block.place()));
                }
            }
            Ok(Marker::Untested(reason)) => untested.push(format!("{}: {reason}", block.place())),
            Ok(Marker::Run { .. } | Marker::RunCluster) => {}
        }
    }
    for line in &untested {
        eprintln!("untested doc block: {line}");
    }
    if untested.len() > UNTESTED_BUDGET {
        problems.push(format!(
            "{} blocks are marked untested, more than UNTESTED_BUDGET ({UNTESTED_BUDGET}): \
             give them a test:\n{}",
            untested.len(),
            untested.join("\n")
        ));
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

fn check_cover(path: &str, test: Option<&str>) -> Result<(), String> {
    let full = repo().join(path);
    if !full.exists() {
        return if ARRIVING.contains(&path) {
            Ok(())
        } else {
            Err(format!("covered-by {path}: no such file"))
        };
    }
    let Some(test) = test else { return Ok(()) };
    let text = std::fs::read_to_string(&full).map_err(|e| format!("read {path}: {e}"))?;
    if text.contains(&format!("fn {test}(")) {
        Ok(())
    } else {
        Err(format!(
            "covered-by {path}::{test}: no `fn {test}` in that file"
        ))
    }
}

#[test]
fn readme_table_and_arriving_list_name_only_what_exists() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README");
    let firsts: Vec<String> = blocks_of("README.md", &readme)
        .iter()
        .map(|b| b.text.lines().next().unwrap_or_default().to_owned())
        .collect();
    for (start, _) in README {
        assert!(
            firsts.iter().any(|f| f.starts_with(start)),
            "README table entry `{start}` matches no README block: remove or update it"
        );
    }
    for path in ARRIVING {
        assert!(
            !repo().join(path).exists(),
            "{path} exists now: remove it from ARRIVING in logstream/tests/docs.rs"
        );
    }
}

/// A run block's command after the rewrites the module doc lists.
fn rewrite(text: &str, port: u16) -> String {
    text.replace(":3100", &format!(":{port}"))
        .replace("cargo run --release --", "logstream")
        .replace("cargo install --locked --path logstream", ":")
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

struct Session {
    dir: tempfile::TempDir,
    port: u16,
    servers: Vec<Child>,
}

impl Session {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
            port: free_port(),
            servers: Vec::new(),
        }
    }

    fn command(&self, script: &str, log: &Path) -> Command {
        let bin = Path::new(env!("CARGO_BIN_EXE_logstream"));
        let path = format!(
            "{}:{}",
            bin.parent().expect("bin dir").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = Command::new("bash");
        cmd.args(["-e", "-o", "pipefail", "-c", script])
            .current_dir(self.dir.path())
            .env("PATH", path)
            .env("LOGSTREAM_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("LOGSTREAM_ADDR", format!("http://127.0.0.1:{}", self.port))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(log).expect("log file"))
            .stderr(std::fs::File::create(log.with_extension("err")).expect("log file"))
            // Its own process group, so stopping a server stops what its shell started.
            .process_group(0);
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("LOGSTREAM_")) {
            if key != "LOGSTREAM_LISTEN" && key != "LOGSTREAM_ADDR" {
                cmd.env_remove(key);
            }
        }
        cmd
    }

    /// Runs one block to its end (at most 60 s); its stdout and stderr, or why it failed.
    fn run(&self, script: &str, n: usize) -> Result<String, String> {
        let log = self.dir.path().join(format!("block-{n}.out"));
        let mut child = self
            .command(script, &log)
            .spawn()
            .map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                break status;
            }
            if Instant::now() > deadline {
                stop(&mut child);
                return Err("still running after 60 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let output = std::fs::read_to_string(&log).unwrap_or_default()
            + &std::fs::read_to_string(log.with_extension("err")).unwrap_or_default();
        if status.success() {
            Ok(output)
        } else {
            Err(format!("exited with {status}:\n{output}"))
        }
    }

    fn start(&mut self, script: &str, n: usize) -> Result<(), String> {
        let log = self.dir.path().join(format!("server-{n}.out"));
        let mut child = self
            .command(script, &log)
            .spawn()
            .map_err(|e| e.to_string())?;
        let url = format!("http://127.0.0.1:{}/readyz", self.port);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                let err = std::fs::read_to_string(log.with_extension("err")).unwrap_or_default();
                return Err(format!("the server exited with {status}:\n{err}"));
            }
            if http_get(&url).is_some_and(|(code, _)| code == 200) {
                self.servers.push(child);
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        stop(&mut child);
        Err(format!("{url} did not answer 200 within 30 s"))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        for child in &mut self.servers {
            stop(child);
        }
    }
}

/// SIGTERM to the child's process group, then SIGKILL after 10 s.
fn stop(child: &mut Child) {
    let group = format!("-{}", child.id());
    let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
    let _ = child.wait();
}

/// A plain HTTP/1.0 GET on loopback: (status code, body).
fn http_get(url: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest.split_once('/')?;
    let mut stream = std::net::TcpStream::connect(host).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let code = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((code, body))
}

/// Runs one file's run blocks in order; afterwards checks the running server's /metrics
/// against docs/metrics.md.
fn run_file(file: &str, blocks: &[&Block]) -> Result<(), String> {
    let mut session = Session::new();
    for (n, block) in blocks.iter().enumerate() {
        let Ok(Marker::Run { background, expect }) = &block.marker else {
            continue;
        };
        let script = rewrite(&block.text, session.port);
        let place = block.place();
        if *background {
            session
                .start(&script, n)
                .map_err(|e| format!("{place}: {e}"))?;
            continue;
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let output = session
                .run(&script, n)
                .map_err(|e| format!("{place}: {e}"))?;
            match expect {
                Some(text) if !output.contains(text.as_str()) => {
                    if Instant::now() > deadline {
                        return Err(format!(
                            "{place}: output lacks `{text}` after 20 s:\n{output}"
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(500));
                }
                _ => break,
            }
        }
    }
    if !session.servers.is_empty() {
        let url = format!("http://127.0.0.1:{}/metrics", session.port);
        let (_, text) = http_get(&url).ok_or_else(|| format!("{file}: GET {url} failed"))?;
        undocumented_metrics(&text).map_err(|e| format!("{file}: the running server's {e}"))?;
    }
    Ok(())
}

/// Names of the metric families in Prometheus text, as the docs write them (counters with
/// `_total`).
fn families(exposition: &str) -> Vec<String> {
    exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let (name, kind) = (parts.next()?, parts.next()?);
            Some(if kind == "counter" && !name.ends_with("_total") {
                format!("{name}_total")
            } else {
                name.to_owned()
            })
        })
        .collect()
}

fn undocumented_metrics(exposition: &str) -> Result<(), String> {
    let doc = std::fs::read_to_string(repo().join("docs/metrics.md")).expect("docs/metrics.md");
    let missing: Vec<_> = families(exposition)
        .into_iter()
        .filter(|name| !doc.contains(&format!("`{name}`")) && !doc.contains(&format!("`{name}{{")))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "/metrics has families docs/metrics.md does not list: {missing:?}"
        ))
    }
}

#[test]
fn run_blocks_work_as_written() {
    let blocks = all_blocks();
    let mut by_file: BTreeMap<&str, Vec<&Block>> = BTreeMap::new();
    for block in &blocks {
        if matches!(block.marker, Ok(Marker::Run { .. })) {
            by_file.entry(block.file.as_str()).or_default().push(block);
        }
    }
    assert!(
        by_file.contains_key("docs/quickstart.md"),
        "docs/quickstart.md has no run blocks"
    );
    let failures: Vec<String> = by_file
        .iter()
        .filter_map(|(file, blocks)| run_file(file, blocks).err())
        .collect();
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

/// The `run cluster` blocks, as written, against the test cluster.
#[test]
fn cluster_blocks_work_as_written() {
    let blocks: Vec<Block> = all_blocks()
        .into_iter()
        .filter(|b| b.marker == Ok(Marker::RunCluster))
        .collect();
    assert!(!blocks.is_empty(), "no `run cluster` blocks found");
    let env = logstream_e2e::env::E2eEnv::load().ok();
    let get = |k: &str| env.as_ref().and_then(|e| e.get(k)).map(str::to_owned);
    let (Some(kubeconfig), Some(kubectl), Some(helm)) =
        (get("KUBECONFIG"), get("KUBECTL"), get("HELM"))
    else {
        let _: Option<()> = logstream_e2e::env::unavailable(
            logstream_e2e::env::Part::Kubernetes,
            "target/e2e/env lacks KUBECONFIG, KUBECTL or HELM",
        );
        return;
    };
    let tools = tempfile::tempdir().expect("temp dir");
    std::os::unix::fs::symlink(&kubectl, tools.path().join("kubectl")).expect("link kubectl");
    std::os::unix::fs::symlink(&helm, tools.path().join("helm")).expect("link helm");
    let bin = Path::new(env!("CARGO_BIN_EXE_logstream"));
    let path = format!(
        "{}:{}:{}",
        tools.path().display(),
        bin.parent().expect("bin dir").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut failures = Vec::new();
    for block in &blocks {
        let out = Command::new("bash")
            .args(["-e", "-o", "pipefail", "-c", &block.text])
            .current_dir(repo())
            .env("PATH", &path)
            .env("KUBECONFIG", &kubeconfig)
            .stdin(Stdio::null())
            .output()
            .expect("run bash");
        if !out.status.success() {
            failures.push(format!(
                "{} exited with {}:\n{}{}",
                block.place(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

/// docs/operations.md has a section for each reason the operator writes.
#[test]
fn operations_guide_explains_every_condition_reason() {
    let source = std::fs::read_to_string(repo().join("crds/src/conditions.rs")).expect("read");
    let module = source
        .split("pub mod reasons {")
        .nth(1)
        .and_then(|rest| rest.split("\n}").next())
        .expect("crds/src/conditions.rs has `pub mod reasons`");
    let reasons: Vec<&str> = module
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub const "))
        .filter_map(|l| l.split('"').nth(1))
        .collect();
    assert!(reasons.len() >= 10, "reasons found: {reasons:?}");
    let guide = std::fs::read_to_string(repo().join("docs/operations.md")).expect("read");
    let missing: Vec<_> = reasons
        .iter()
        .filter(|r| !guide.contains(&format!("\n### `{r}`\n")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/operations.md lacks a `### `Reason`` section for {missing:?}"
    );
}

#[test]
fn markers_parse_and_blocks_are_found_with_them() {
    let md = "text\n<!-- doc-test: run expect=\"a b\" -->\n\n```sh\necho a b\n```\n\
              ```yaml\nx: 1\n```\n```sh\nls\n```\n";
    let blocks = blocks_of("x.md", md);
    assert_eq!(blocks.len(), 2);
    assert_eq!(
        blocks[0].marker,
        Ok(Marker::Run {
            background: false,
            expect: Some("a b".into())
        })
    );
    assert_eq!(blocks[0].line, 4);
    assert!(blocks[1].marker.is_err());
    assert_eq!(
        parse_marker("covered-by a/b.rs::t"),
        Ok(Marker::CoveredBy {
            path: "a/b.rs".into(),
            test: Some("t".into())
        })
    );
    assert_eq!(
        rewrite(
            "curl localhost:3100/x; cargo run --release -- search q",
            4000
        ),
        "curl localhost:4000/x; logstream search q"
    );
    assert_eq!(
        families("# TYPE a counter\n# TYPE b_seconds histogram\n"),
        ["a_total", "b_seconds"]
    );
}
