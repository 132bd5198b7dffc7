//! The operator's Prometheus metrics: reconciles, errors by category and reconcile duration
//! per kind, and whether this replica leads.

use std::sync::atomic::AtomicI64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    kind: &'static str,
    category: &'static str,
}

#[derive(Debug)]
pub struct Metrics {
    reconciles: Family<KindLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    duration: Family<KindLabels, Histogram>,
    /// 1 while this replica holds the lease (runs the controllers), else 0.
    pub leader: Gauge<i64, AtomicI64>,
}

impl Metrics {
    /// Creates the metrics and registers them under `logstream_operator_`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            reconciles: Family::default(),
            errors: Family::default(),
            duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 16))
            }),
            leader: Gauge::default(),
        };
        let r = registry.sub_registry_with_prefix("logstream_operator");
        r.register(
            "reconciles",
            "Reconciles run, by resource kind",
            m.reconciles.clone(),
        );
        r.register(
            "reconcile_errors",
            "Reconciles that failed, by kind and error category (kube_api, kafka, object_store, build)",
            m.errors.clone(),
        );
        r.register(
            "reconcile_duration_seconds",
            "Time one reconcile took, by kind",
            m.duration.clone(),
        );
        r.register(
            "leader",
            "1 while this replica holds the leader lease",
            m.leader.clone(),
        );
        m
    }

    /// Counts one reconcile of `kind` that took `took` and failed with `error` (a category).
    pub fn reconciled(&self, kind: &'static str, took: Duration, error: Option<&'static str>) {
        self.reconciles.get_or_create(&KindLabels { kind }).inc();
        self.duration
            .get_or_create(&KindLabels { kind })
            .observe(took.as_secs_f64());
        if let Some(category) = error {
            self.errors
                .get_or_create(&ErrorLabels { kind, category })
                .inc();
        }
    }

    /// Reconciles of `kind` so far (tests and benchmarks count them).
    pub fn reconciles(&self, kind: &'static str) -> u64 {
        self.reconciles.get_or_create(&KindLabels { kind }).get()
    }
}
