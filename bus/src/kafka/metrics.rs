//! Prometheus metrics of the Kafka bus: the transactional producer (ingest) and the consumers
//! (processors' group, queries' follower).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// Counters shared by every Kafka client of a process; clones update the same series.
#[derive(Debug, Clone)]
pub struct KafkaMetrics {
    pub transactions_committed: Counter,
    pub transactions_aborted: Counter,
    pub produced_messages: Counter,
    pub produced_bytes: Counter,
    pub commit_seconds: Histogram,
    pub transaction_requests: Histogram,
    pub rejected_unavailable: Counter,
    pub rejected_full: Counter,
    pub rebalances: Counter,
    pub assigned_partitions: Gauge,
    pub paused_partitions: Gauge,
    pub offset_commits: Counter,
    pub offset_commit_failures: Counter,
    pub offset_resets: Counter,
    pub consumer_errors: Counter,
}

impl Default for KafkaMetrics {
    fn default() -> Self {
        Self {
            transactions_committed: Counter::default(),
            transactions_aborted: Counter::default(),
            produced_messages: Counter::default(),
            produced_bytes: Counter::default(),
            commit_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            transaction_requests: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            rejected_unavailable: Counter::default(),
            rejected_full: Counter::default(),
            rebalances: Counter::default(),
            assigned_partitions: Gauge::default(),
            paused_partitions: Gauge::default(),
            offset_commits: Counter::default(),
            offset_commit_failures: Counter::default(),
            offset_resets: Counter::default(),
            consumer_errors: Counter::default(),
        }
    }
}

impl KafkaMetrics {
    /// Creates the metrics and registers them under `logstream_kafka_*`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        let r = registry.sub_registry_with_prefix("logstream_kafka");
        r.register(
            "transactions_committed",
            "Producer transactions committed (each holds one or more push requests)",
            m.transactions_committed.clone(),
        );
        r.register(
            "transactions_aborted",
            "Producer transactions aborted or failed; their requests were answered with an error",
            m.transactions_aborted.clone(),
        );
        r.register(
            "produced_messages",
            "Messages in committed transactions",
            m.produced_messages.clone(),
        );
        r.register_with_unit(
            "produced",
            "Payload bytes in committed transactions (before compression)",
            Unit::Bytes,
            m.produced_bytes.clone(),
        );
        r.register_with_unit(
            "transaction_commit_duration",
            "Time from flushing a transaction's messages to the coordinator's commit answer",
            Unit::Seconds,
            m.commit_seconds.clone(),
        );
        r.register(
            "transaction_requests",
            "Push requests per transaction (group commit)",
            m.transaction_requests.clone(),
        );
        r.register(
            "rejected_unavailable",
            "Pushes answered at once with 'unavailable' while the brokers were unreachable",
            m.rejected_unavailable.clone(),
        );
        r.register(
            "rejected_full",
            "Pushes refused because the producer's queue was full",
            m.rejected_full.clone(),
        );
        r.register(
            "rebalances",
            "Consumer group rebalance events (assign, revoke, error)",
            m.rebalances.clone(),
        );
        r.register(
            "assigned_partitions",
            "Partitions this process reads now",
            m.assigned_partitions.clone(),
        );
        r.register(
            "paused_partitions",
            "Partitions paused because their reader is behind",
            m.paused_partitions.clone(),
        );
        r.register(
            "offset_commits",
            "Consumer group offset commits the broker accepted",
            m.offset_commits.clone(),
        );
        r.register(
            "offset_commit_failures",
            "Consumer group offset commits that failed (retried with the next flush)",
            m.offset_commit_failures.clone(),
        );
        r.register(
            "offset_resets",
            "Reads that restarted at the earliest offset because retention had dropped records",
            m.offset_resets.clone(),
        );
        r.register(
            "consumer_errors",
            "Errors the consumers reported (other than end of partition)",
            m.consumer_errors.clone(),
        );
        m
    }
}
