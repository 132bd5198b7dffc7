//! Retention for a role that writes storage: on S3 the bucket's lifecycle rules are made to
//! match the policy (idempotently, keeping rules LogStream does not own); on a local directory
//! a sweeper deletes expired hour partitions. GCS and Azure have lifecycle policies of their own
//! that LogStream does not manage yet: it says so at start.

use crate::config::StorageConfig;
use anyhow::Context;
use logstream_store::retention::{apply_lifecycle, spawn_sweeper};
use logstream_store::{BucketAdmin, RetentionPolicy, Store};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How often the local sweeper runs.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(600);

/// Puts `policy` into effect for `store`; returns the sweeper task when there is one.
pub async fn start(
    store: &Store,
    storage: &StorageConfig,
    policy: &RetentionPolicy,
    shutdown: CancellationToken,
) -> anyhow::Result<Option<JoinHandle<()>>> {
    let url = storage.url.trim();
    let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or("file");
    let keep_forever = policy.default_days.is_none() && policy.rules.is_empty();
    match scheme {
        // On S3 even "keep forever" has a rule: abort multipart uploads a crash left behind.
        "s3" | "s3a" => {
            let (admin, location) = BucketAdmin::from_url(url, &storage.options)
                .with_context(|| format!("bucket admin for {url}"))?;
            let change = apply_lifecycle(&admin, &location.bucket, &location.prefix, policy)
                .await
                .with_context(|| format!("apply lifecycle rules to bucket {}", location.bucket))?;
            tracing::info!(bucket = %location.bucket, ?change, "retention: bucket lifecycle rules in place");
            Ok(None)
        }
        _ if keep_forever => Ok(None),
        "file" => Ok(Some(spawn_sweeper(
            store.clone(),
            policy.clone(),
            SWEEP_INTERVAL,
            shutdown,
        ))),
        other => {
            tracing::warn!(
                scheme = other,
                "retention is not applied by LogStream on this storage: set the bucket's own lifecycle policy (docs/storage.md)"
            );
            Ok(None)
        }
    }
}
