//! Prometheus metrics of the query service.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub endpoint: &'static str,
    pub status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DurationLabels {
    pub endpoint: &'static str,
}

#[derive(Debug, Clone)]
pub struct QueryMetrics {
    pub requests: Family<EndpointLabels, Counter>,
    pub seconds: Family<DurationLabels, Histogram>,
}

impl Default for QueryMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 16))
            }),
        }
    }
}

impl QueryMetrics {
    /// Creates the metrics and registers them under `logstream_query_*`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        let r = registry.sub_registry_with_prefix("logstream_query");
        r.register(
            "requests",
            "Query API requests by endpoint and status class",
            m.requests.clone(),
        );
        r.register_with_unit(
            "request_duration",
            "Time to answer a query API request",
            Unit::Seconds,
            m.seconds.clone(),
        );
        m
    }

    pub fn observe(&self, endpoint: &'static str, status: &'static str, secs: f64) {
        self.requests
            .get_or_create(&EndpointLabels { endpoint, status })
            .inc();
        self.seconds
            .get_or_create(&DurationLabels { endpoint })
            .observe(secs);
    }
}
