//! Where the parts are: the variables `./e2e/env up` writes to `target/e2e/env`, and the policy
//! for a part that is missing (skip locally, fail under `REQUIRE_E2E=1`).

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Variables the support crate reads; `./e2e/env up` exports all of them.
pub const VARS: &[&str] = &[
    "KUBECONFIG",
    "KUBECTL",
    "HELM",
    "KUBERNETES_VALIDATE",
    "KAFKA_BOOTSTRAP",
    "S3_ENDPOINT",
    "S3_REGION",
    "S3_ACCESS_KEY_ID",
    "S3_SECRET_ACCESS_KEY",
];

/// One of the real parts, named in skip and failure messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// kube-apiserver with kwok nodes.
    Kubernetes,
    /// Apache Kafka in KRaft mode.
    Kafka,
    /// The S3 endpoint (moto).
    S3,
    /// helm and kubernetes-validate binaries.
    Helm,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Kubernetes => "kubernetes (kube-apiserver + kwok)",
            Part::Kafka => "kafka",
            Part::S3 => "s3 endpoint",
            Part::Helm => "helm / kubernetes-validate",
        })
    }
}

/// The parts' addresses and tool paths.
///
/// Values come from `target/e2e/env` (or the file named by `E2E_ENV_FILE`) when it exists, so a
/// stray `KUBECONFIG` in a developer's shell never points tests at another cluster; without the
/// file they come from the process environment (e.g. after `. target/e2e/env`).
#[derive(Debug, Clone, Default)]
pub struct E2eEnv {
    vars: BTreeMap<String, String>,
    source: String,
}

impl E2eEnv {
    /// Load from the env file if present, else from the process environment.
    pub fn load() -> Result<Self> {
        let path = env_file_path();
        if path.exists() {
            let text = std::fs::read_to_string(&path).map_err(|source| Error::ReadEnvFile {
                path: path.display().to_string(),
                source,
            })?;
            return Ok(Self {
                vars: parse_env_file(&text),
                source: path.display().to_string(),
            });
        }
        let vars = VARS
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| ((*k).to_owned(), v)))
            .collect();
        Ok(Self {
            vars,
            source: "the process environment".to_owned(),
        })
    }

    /// A variable's value, if set and not empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Like [`E2eEnv::get`], with an error message naming where it looked.
    pub fn require(&self, key: &str) -> std::result::Result<&str, String> {
        self.get(key)
            .ok_or_else(|| format!("{key} is not set in {}", self.source))
    }
}

/// `E2E_ENV_FILE`, else `<repo>/target/e2e/env` (fixed, whatever `CARGO_TARGET_DIR` is).
///
/// `<repo>` comes from the `CARGO_MANIFEST_DIR` cargo gives the running test (every member
/// sits one level below the root), not the one this crate was compiled in: clones that share
/// a `CARGO_TARGET_DIR` share this crate's build, so a compiled-in path may be another clone's.
pub fn env_file_path() -> PathBuf {
    if let Some(path) = std::env::var_os("E2E_ENV_FILE") {
        return PathBuf::from(path);
    }
    let member = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    Path::new(&member).join("../target/e2e/env")
}

/// Parse `export KEY=value` lines (also plain `KEY=value`); comments and other lines are ignored.
fn parse_env_file(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.strip_prefix("export ").unwrap_or(line).split_once('='))
        .map(|(k, v)| {
            (
                k.trim().to_owned(),
                v.trim().trim_matches(|c| c == '"' || c == '\'').to_owned(),
            )
        })
        .collect()
}

/// True when CI demands the real parts (`REQUIRE_E2E=1`).
pub fn required() -> bool {
    std::env::var("REQUIRE_E2E").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// A part is unavailable: fail the test under `REQUIRE_E2E=1`, otherwise print why and skip.
///
/// # Panics
/// When `REQUIRE_E2E=1`: that is how a test that cannot reach its part fails in CI.
pub fn unavailable<T>(part: Part, why: &str) -> Option<T> {
    let msg = format!(
        "{part} is not available: {why}. Start the real parts with `./e2e/env up` \
         (then run tests via `./e2e/env run -- cargo test ...`, or `. target/e2e/env`)"
    );
    assert!(
        !required(),
        "{msg} [REQUIRE_E2E=1: a missing part fails the test]"
    );
    // Written to stderr directly: libtest captures `eprintln!` of passing tests, and a skip
    // should be seen.
    let _ = writeln!(std::io::stderr(), "skipping: {msg}");
    None
}

#[cfg(test)]
mod tests {
    use super::parse_env_file;

    #[test]
    fn parses_exports_and_ignores_comments() {
        let vars = parse_env_file(
            "# header\nexport KAFKA_BOOTSTRAP=127.0.0.1:9092\nS3_REGION=\"us-east-1\"\n\n",
        );
        assert_eq!(
            vars.get("KAFKA_BOOTSTRAP").map(String::as_str),
            Some("127.0.0.1:9092")
        );
        assert_eq!(vars.get("S3_REGION").map(String::as_str), Some("us-east-1"));
        assert_eq!(vars.len(), 2);
    }
}
