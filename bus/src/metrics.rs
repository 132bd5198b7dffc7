//! Prometheus metrics of the embedded WAL.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

#[derive(Debug, Clone)]
pub struct WalMetrics {
    pub records: Counter,
    pub bytes: Counter,
    pub fsync_seconds: Histogram,
    pub group_records: Histogram,
    pub retained_bytes: Gauge,
    pub segments_trimmed: Counter,
    pub rejected_full: Counter,
    pub write_errors: Counter,
}

impl Default for WalMetrics {
    fn default() -> Self {
        Self {
            records: Counter::default(),
            bytes: Counter::default(),
            fsync_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            group_records: Histogram::new(exponential_buckets(1.0, 2.0, 14)),
            retained_bytes: Gauge::default(),
            segments_trimmed: Counter::default(),
            rejected_full: Counter::default(),
            write_errors: Counter::default(),
        }
    }
}

impl WalMetrics {
    /// Creates the metrics and registers them under `logstream_wal_*`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        let r = registry.sub_registry_with_prefix("logstream_wal");
        r.register(
            "appended_records",
            "Records made durable",
            m.records.clone(),
        );
        r.register_with_unit(
            "appended",
            "Bytes written to segments",
            Unit::Bytes,
            m.bytes.clone(),
        );
        r.register_with_unit(
            "group_commit_duration",
            "Time to write and fsync one group",
            Unit::Seconds,
            m.fsync_seconds.clone(),
        );
        r.register(
            "group_commit_records",
            "Records per group commit (one fsync)",
            m.group_records.clone(),
        );
        r.register_with_unit(
            "retained",
            "Bytes of segments not yet trimmed",
            Unit::Bytes,
            m.retained_bytes.clone(),
        );
        r.register(
            "segments_trimmed",
            "Segments deleted after the processor committed them",
            m.segments_trimmed.clone(),
        );
        r.register(
            "rejected_full",
            "Appends refused because the bus was full",
            m.rejected_full.clone(),
        );
        r.register(
            "write_errors",
            "Failed group writes",
            m.write_errors.clone(),
        );
        m
    }
}
