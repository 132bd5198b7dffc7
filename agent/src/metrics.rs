//! Prometheus metrics of the agent (`logstream_agent_*`), per tenant where it applies.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantLabels {
    pub tenant: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RetryLabels {
    /// HTTP status, or connect / timeout / transport.
    pub reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FileLabels {
    pub path: String,
}

#[derive(Debug, Clone, Default)]
pub struct AgentMetrics {
    pub lines_read: Family<TenantLabels, Counter>,
    pub bytes_read: Family<TenantLabels, Counter>,
    pub lines_sent: Family<TenantLabels, Counter>,
    pub lines_acked: Family<TenantLabels, Counter>,
    pub bytes_acked: Family<TenantLabels, Counter>,
    pub lines_rejected: Family<TenantLabels, Counter>,
    pub lines_malformed: Family<TenantLabels, Counter>,
    pub lost_bytes: Family<TenantLabels, Counter>,
    pub retries: Family<RetryLabels, Counter>,
    pub lag_bytes: Family<FileLabels, Gauge>,
    pub files: Gauge,
    pub memory_bytes: Gauge,
    pub checkpoint_writes: Counter,
}

impl AgentMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        let r = registry.sub_registry_with_prefix("logstream_agent");
        r.register(
            "lines_read",
            "Log lines read from container log files",
            m.lines_read.clone(),
        );
        r.register_with_unit(
            "read",
            "Bytes read from container log files",
            Unit::Bytes,
            m.bytes_read.clone(),
        );
        r.register(
            "lines_sent",
            "Log lines sent to ingest (a retried request counts once)",
            m.lines_sent.clone(),
        );
        r.register(
            "lines_acked",
            "Log lines ingest acknowledged",
            m.lines_acked.clone(),
        );
        r.register_with_unit(
            "acked",
            "Bytes of log lines ingest acknowledged",
            Unit::Bytes,
            m.bytes_acked.clone(),
        );
        r.register(
            "lines_rejected",
            "Log lines in requests ingest refused for good (4xx other than 429); see the agent's log for why",
            m.lines_rejected.clone(),
        );
        r.register(
            "lines_malformed",
            "Lines that were neither CRI nor docker json-file, shipped as raw text",
            m.lines_malformed.clone(),
        );
        r.register_with_unit(
            "lost",
            "Bytes of log files that disappeared or were truncated before they were read",
            Unit::Bytes,
            m.lost_bytes.clone(),
        );
        r.register(
            "push_retries",
            "Push requests retried, by status or error",
            m.retries.clone(),
        );
        r.register_with_unit(
            "lag",
            "Bytes of a file not yet acknowledged by ingest",
            Unit::Bytes,
            m.lag_bytes.clone(),
        );
        r.register("files", "Files being followed", m.files.clone());
        r.register_with_unit(
            "memory",
            "Bytes of log data held in memory (read and not yet acknowledged)",
            Unit::Bytes,
            m.memory_bytes.clone(),
        );
        r.register(
            "checkpoint_writes",
            "Checkpoint files written",
            m.checkpoint_writes.clone(),
        );
        m
    }

    pub fn tenant(t: &str) -> TenantLabels {
        TenantLabels {
            tenant: t.to_string(),
        }
    }
}
