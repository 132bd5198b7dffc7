//! Prometheus metrics of ingest, per tenant.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantLabels {
    pub tenant: String,
}

/// Why a request was refused: a fixed set, never error text.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectLabels {
    pub tenant: String,
    pub reason: &'static str,
}

#[derive(Debug, Clone)]
pub struct IngestMetrics {
    pub events: Family<TenantLabels, Counter>,
    pub line_bytes: Family<TenantLabels, Counter>,
    pub requests_rejected: Family<RejectLabels, Counter>,
    pub ack_seconds: Histogram,
}

impl Default for IngestMetrics {
    fn default() -> Self {
        Self {
            events: Family::default(),
            line_bytes: Family::default(),
            requests_rejected: Family::default(),
            ack_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 18)),
        }
    }
}

impl IngestMetrics {
    /// Creates the metrics and registers them under `logstream_ingest_*`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        let r = registry.sub_registry_with_prefix("logstream_ingest");
        r.register("events", "Events acknowledged durably", m.events.clone());
        r.register_with_unit(
            "line",
            "Bytes of log lines acknowledged durably",
            Unit::Bytes,
            m.line_bytes.clone(),
        );
        r.register(
            "requests_rejected",
            "Push requests refused, by reason",
            m.requests_rejected.clone(),
        );
        r.register_with_unit(
            "ack_duration",
            "Time from a request's arrival to its durable acknowledgement",
            Unit::Seconds,
            m.ack_seconds.clone(),
        );
        m
    }

    pub fn reject(&self, tenant: &str, reason: &'static str) {
        self.requests_rejected
            .get_or_create(&RejectLabels {
                tenant: tenant.to_string(),
                reason,
            })
            .inc();
    }
}
