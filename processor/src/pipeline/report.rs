//! What each processor applies, told through the object store: the operator reads it to set
//! `status.appliedGeneration` of every LogPipeline.
//!
//! A processor writes `status/processors/<instance>.json` when its pipelines change and then
//! every [`HEARTBEAT`], and deletes it when it stops cleanly. A report older than
//! [`STALE_AFTER`] belongs to a processor that is gone (killed, scaled down) and is ignored.
//!
//! Why the object store and not the Kubernetes API or the processors' HTTP ports: the
//! processors already write there and never call the Kubernetes API (their pods mount no
//! service-account token), and the operator already reads the bucket for its lifecycle rules,
//! whereas reaching every pod's port from the operator would need network policy exceptions.

use crate::pipeline::PlansWatch;
use chrono::{DateTime, Utc};
use logstream_store::ObjectPath as Path;
use logstream_store::Store;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often a running processor rewrites its report.
pub const HEARTBEAT: Duration = Duration::from_secs(30);

/// A report not rewritten for this long is a processor that is gone.
pub const STALE_AFTER: Duration = Duration::from_secs(90);

/// One processor's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedReport {
    /// The processor (its pod name in Kubernetes).
    pub instance: String,
    /// When the processor wrote this report.
    pub updated: DateTime<Utc>,
    /// Every pipeline in force there.
    pub pipelines: Vec<AppliedPipeline>,
}

/// One pipeline a processor applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedPipeline {
    /// The tenant (the LogPipeline's namespace).
    pub namespace: String,
    pub name: String,
    pub generation: i64,
}

fn prefix() -> Path {
    Path::from_iter(["status", "processors"])
}

fn key(instance: &str) -> Path {
    Path::from_iter([
        "status".to_string(),
        "processors".to_string(),
        format!("{instance}.json"),
    ])
}

impl AppliedReport {
    /// The report of `instance` with the pipelines of `plans`, as of now.
    pub fn of(instance: &str, plans: &crate::pipeline::plan::Plans) -> Self {
        Self {
            instance: instance.to_string(),
            updated: Utc::now(),
            pipelines: plans
                .generations()
                .into_iter()
                .map(|(namespace, name, generation)| AppliedPipeline {
                    namespace,
                    name,
                    generation,
                })
                .collect(),
        }
    }

    /// Whether the processor was alive at `now` by this report.
    pub fn is_fresh(&self, now: DateTime<Utc>) -> bool {
        let age = now.signed_duration_since(self.updated);
        age.to_std().map_or(true, |age| age <= STALE_AFTER)
    }

    /// The generation of `namespace/name` this processor applies, if it applies it.
    pub fn generation_of(&self, namespace: &str, name: &str) -> Option<i64> {
        self.pipelines
            .iter()
            .find(|p| p.namespace == namespace && p.name == name)
            .map(|p| p.generation)
    }
}

/// Writes `report`.
pub async fn write(store: &Store, report: &AppliedReport) -> logstream_store::Result<()> {
    let body = serde_json::to_vec_pretty(report).expect("a report serialises");
    store.put(&key(&report.instance), body.into()).await
}

/// Every report in `store` (stale ones included; unreadable ones are skipped with a warning).
pub async fn read_all(store: &Store) -> logstream_store::Result<Vec<AppliedReport>> {
    let mut out = Vec::new();
    for meta in store.list(&prefix()).await? {
        let Some(bytes) = store.get(&meta.location).await? else {
            continue; // deleted between list and get: that processor stopped
        };
        match serde_json::from_slice::<AppliedReport>(&bytes) {
            Ok(r) => out.push(r),
            Err(e) => {
                tracing::warn!(key = %meta.location, error = %e, "unreadable processor report")
            }
        }
    }
    out.sort_by(|a, b| a.instance.cmp(&b.instance));
    Ok(out)
}

/// Keeps `instance`'s report current until `shutdown`, then deletes it. Write errors are
/// logged and retried at the next heartbeat: the report is status, never worth stopping for.
pub async fn run(
    store: Store,
    instance: String,
    mut plans: PlansWatch,
    shutdown: CancellationToken,
) {
    // Closed when the pipelines can no longer change; the heartbeat goes on.
    let mut open = true;
    loop {
        let report = AppliedReport::of(&instance, &plans.borrow_and_update());
        if let Err(e) = write(&store, &report).await {
            tracing::warn!(error = %e, "cannot write this processor's pipelines report");
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            changed = plans.changed(), if open => open = changed.is_ok(),
            () = tokio::time::sleep(HEARTBEAT) => {}
        }
    }
    if let Err(e) = store.delete(&key(&instance)).await {
        tracing::warn!(error = %e, "cannot delete this processor's pipelines report");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(age_secs: i64) -> AppliedReport {
        AppliedReport {
            instance: "p-0".into(),
            updated: Utc::now() - chrono::Duration::seconds(age_secs),
            pipelines: vec![AppliedPipeline {
                namespace: "shop".into(),
                name: "web".into(),
                generation: 4,
            }],
        }
    }

    #[test]
    fn a_report_older_than_the_stale_bound_is_a_gone_processor() {
        let now = Utc::now();
        assert!(report(10).is_fresh(now));
        assert!(!report(STALE_AFTER.as_secs() as i64 + 5).is_fresh(now));
        // A processor clock ahead of ours is alive, not stale.
        assert!(report(-20).is_fresh(now));
        assert_eq!(report(0).generation_of("shop", "web"), Some(4));
        assert_eq!(report(0).generation_of("shop", "api"), None);
    }

    #[tokio::test]
    async fn reports_round_trip_through_the_store_and_go_when_the_processor_stops() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::local(dir.path()).unwrap();
        let (tx, rx) = tokio::sync::watch::channel(std::sync::Arc::new(
            crate::pipeline::plan::Plans::default(),
        ));
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(store.clone(), "p-0".into(), rx, stop.clone()));
        let first = wait_for(&store, |r| r.len() == 1).await;
        assert!(first[0].pipelines.is_empty());
        let source = crate::pipeline::plan::PipelineSource {
            namespace: "shop".into(),
            name: "web".into(),
            generation: 3,
            spec: logstream_crds::LogPipelineSpec::new("main"),
        };
        tx.send(std::sync::Arc::new(
            crate::pipeline::plan::Plans::compile(&[source]).unwrap(),
        ))
        .unwrap();
        let second = wait_for(&store, |r| r.len() == 1 && !r[0].pipelines.is_empty()).await;
        assert_eq!(second[0].generation_of("shop", "web"), Some(3));
        stop.cancel();
        task.await.unwrap();
        assert!(read_all(&store).await.unwrap().is_empty());
    }

    async fn wait_for(
        store: &Store,
        done: impl Fn(&[AppliedReport]) -> bool,
    ) -> Vec<AppliedReport> {
        for _ in 0..200 {
            let r = read_all(store).await.unwrap();
            if done(&r) {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the report did not arrive: {:?}", read_all(store).await);
    }
}
