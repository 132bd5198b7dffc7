//! Test support for the real parts `./e2e/env up` starts on loopback: a Kubernetes API server with
//! kwok fake nodes, a single-node Apache Kafka, and an S3 endpoint with the lifecycle API.
//!
//! Each entry point ([`kube::TestCluster::connect`], [`kafka::TestKafka::connect`],
//! [`s3::TestS3::connect`]) reads `target/e2e/env` (or the same variables from the process
//! environment), checks that the part answers, and hands out fresh, uniquely named namespaces,
//! topics and buckets so tests run in parallel. When a part is missing the test is skipped with a
//! message saying how to start it, or fails when `REQUIRE_E2E=1` (as CI sets it):
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let Some(cluster) = logstream_e2e::kube::TestCluster::connect().await else { return Ok(()) };
//! let ns = cluster.fresh_namespace("demo").await?;
//! # Ok(()) }
//! ```

pub mod env;
mod error;
pub mod kafka;
pub mod kube;
pub mod s3;
pub mod tools;
mod wait;

pub use env::{E2eEnv, Part};
pub use error::{Error, Result};
/// Signed bucket requests (create bucket, lifecycle rules) now live in the store crate, where
/// the operator uses them too; re-exported under their old names.
pub use logstream_store::{lifecycle, s3_admin as bucket_admin};
pub use wait::wait_until;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A name unique across parallel tests and repeated runs against the same long-lived parts:
/// `<prefix>-<pid>-<time>-<counter>`, lowercase alphanumerics and `-`, at most 63 characters, so
/// it is valid as a namespace, a topic and an S3 bucket name.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let clean: String = prefix
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(30)
        .collect();
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{}-{:x}-{:x}-{count}",
        clean.trim_matches('-'),
        std::process::id(),
        millis % 0xff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::unique_name;

    #[test]
    fn unique_names_are_distinct_and_dns_safe() {
        let a = unique_name("My_Test.Prefix");
        let b = unique_name("My_Test.Prefix");
        assert_ne!(a, b);
        assert!(a.len() <= 63, "{a}");
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{a}"
        );
        assert!(a.starts_with("my-test-prefix-"), "{a}");
    }
}
