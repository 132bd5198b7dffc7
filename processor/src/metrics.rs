//! Prometheus metrics of the processor.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

#[derive(Debug, Clone)]
pub struct ProcessorMetrics {
    pub records: Counter,
    pub events: Counter,
    /// Records left out as replays of a sender's request already in the partition.
    pub replays: Counter,
    pub flushes: Counter,
    pub flush_errors: Counter,
    pub flush_seconds: Histogram,
    pub files_written: Counter,
    pub parquet_bytes: Counter,
    pub line_bytes_flushed: Counter,
    pub hot_line_bytes: Family<SourceLabels, Gauge>,
    pub committed_offset: Family<SourceLabels, Gauge>,
    pub lag_records: Family<SourceLabels, Gauge>,
    /// Bus partitions this process works on now.
    pub partitions: Gauge,
    pub rebalances: Counter,
    /// Per tenant and LogPipeline: events it processed, parsed, failed to parse, dropped,
    /// redacted, left unparsed past the tenant's time budget, and field-label values past
    /// their bound; the time it took; the generation in force.
    pub pipeline_events: Family<PipelineLabels, Counter>,
    pub pipeline_parsed: Family<PipelineLabels, Counter>,
    pub pipeline_failed: Family<PipelineLabels, Counter>,
    pub pipeline_dropped: Family<PipelineLabels, Counter>,
    pub pipeline_redacted: Family<PipelineLabels, Counter>,
    pub pipeline_over_budget: Family<PipelineLabels, Counter>,
    pub pipeline_label_overflow: Family<PipelineLabels, Counter>,
    pub pipeline_seconds: Family<PipelineLabels, Counter<f64, std::sync::atomic::AtomicU64>>,
    pub pipeline_generation: Family<PipelineLabels, Gauge>,
}

/// A tenant's LogPipeline.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PipelineLabels {
    pub tenant: String,
    pub pipeline: String,
}

impl ProcessorMetrics {
    /// Adds what the pipelines did in one chunk.
    pub fn count_pipelines(&self, counts: &crate::hot::PipelineCounts) {
        for ((tenant, tag), (c, took)) in counts {
            let name = tag.rsplit_once('@').map_or(tag.as_str(), |(n, _)| n);
            let l = PipelineLabels {
                tenant: tenant.clone(),
                pipeline: name.to_string(),
            };
            self.pipeline_events.get_or_create(&l).inc_by(c.matched);
            self.pipeline_parsed.get_or_create(&l).inc_by(c.parsed);
            self.pipeline_failed.get_or_create(&l).inc_by(c.failed);
            self.pipeline_dropped.get_or_create(&l).inc_by(c.dropped);
            self.pipeline_redacted.get_or_create(&l).inc_by(c.redacted);
            self.pipeline_over_budget
                .get_or_create(&l)
                .inc_by(c.over_budget);
            self.pipeline_label_overflow
                .get_or_create(&l)
                .inc_by(c.overflowed_labels);
            self.pipeline_seconds
                .get_or_create(&l)
                .inc_by(took.as_secs_f64());
        }
    }

    /// Shows the generation of every pipeline in force (and only those).
    pub fn set_generations(&self, plans: &crate::pipeline::plan::Plans) {
        self.pipeline_generation.clear();
        for (tenant, pipeline, generation) in plans.generations() {
            self.pipeline_generation
                .get_or_create(&PipelineLabels { tenant, pipeline })
                .set(generation);
        }
    }
}

impl ProcessorMetrics {
    /// Drops the gauges of a partition this process no longer works on, so dashboards do not
    /// keep showing its last values.
    pub fn forget(&self, source: &str) {
        let labels = SourceLabels::new(source);
        self.hot_line_bytes.remove(&labels);
        self.committed_offset.remove(&labels);
        self.lag_records.remove(&labels);
    }
}

/// The bus partition (manifest source) a gauge is about: `wal`, `kafka-<topic>-<n>`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    pub source: String,
}

impl SourceLabels {
    pub fn new(source: &str) -> Self {
        Self {
            source: source.to_string(),
        }
    }
}

impl Default for ProcessorMetrics {
    fn default() -> Self {
        Self {
            records: Counter::default(),
            events: Counter::default(),
            replays: Counter::default(),
            flushes: Counter::default(),
            flush_errors: Counter::default(),
            flush_seconds: Histogram::new(exponential_buckets(0.01, 2.0, 14)),
            files_written: Counter::default(),
            parquet_bytes: Counter::default(),
            line_bytes_flushed: Counter::default(),
            hot_line_bytes: Family::default(),
            committed_offset: Family::default(),
            lag_records: Family::default(),
            partitions: Gauge::default(),
            rebalances: Counter::default(),
            pipeline_events: Family::default(),
            pipeline_parsed: Family::default(),
            pipeline_failed: Family::default(),
            pipeline_dropped: Family::default(),
            pipeline_redacted: Family::default(),
            pipeline_over_budget: Family::default(),
            pipeline_label_overflow: Family::default(),
            pipeline_seconds: Family::default(),
            pipeline_generation: Family::default(),
        }
    }
}

impl ProcessorMetrics {
    /// Creates the metrics and registers them under `logstream_processor_*`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        let r = registry.sub_registry_with_prefix("logstream_processor");
        r.register("records", "Bus records consumed", m.records.clone());
        r.register("events", "Events consumed", m.events.clone());
        r.register(
            "replayed_records_dropped",
            "Bus records left out as replays of a request already stored (an agent re-sending after a crash or a lost answer)",
            m.replays.clone(),
        );
        r.register("flushes", "Flushes committed", m.flushes.clone());
        r.register(
            "flush_errors",
            "Flushes that failed and will be retried",
            m.flush_errors.clone(),
        );
        r.register_with_unit(
            "flush_duration",
            "Time to encode, upload and commit one flush",
            Unit::Seconds,
            m.flush_seconds.clone(),
        );
        r.register(
            "files_written",
            "Parquet objects written",
            m.files_written.clone(),
        );
        r.register_with_unit(
            "parquet",
            "Bytes of Parquet written",
            Unit::Bytes,
            m.parquet_bytes.clone(),
        );
        r.register_with_unit(
            "flushed_line",
            "Bytes of log lines committed to storage",
            Unit::Bytes,
            m.line_bytes_flushed.clone(),
        );
        r.register_with_unit(
            "hot_line",
            "Bytes of log lines in memory, not yet committed",
            Unit::Bytes,
            m.hot_line_bytes.clone(),
        );
        r.register(
            "committed_offset",
            "Bus offset below which everything is in storage",
            m.committed_offset.clone(),
        );
        r.register(
            "lag_records",
            "Durable bus records not yet read",
            m.lag_records.clone(),
        );
        r.register(
            "partitions",
            "Bus partitions this process works on",
            m.partitions.clone(),
        );
        r.register(
            "partition_changes",
            "Partitions taken on or given up (consumer-group rebalances)",
            m.rebalances.clone(),
        );
        for (name, help, family) in [
            (
                "pipeline_events",
                "Events a tenant's LogPipeline processed",
                &m.pipeline_events,
            ),
            (
                "pipeline_parsed",
                "Events at least one of the pipeline's parsers read",
                &m.pipeline_parsed,
            ),
            (
                "pipeline_failed",
                "Events none of the pipeline's parsers could read (stored with __error__)",
                &m.pipeline_failed,
            ),
            (
                "pipeline_dropped",
                "Events a drop rule of the pipeline dropped",
                &m.pipeline_dropped,
            ),
            (
                "pipeline_redacted",
                "Events whose line a redaction changed",
                &m.pipeline_redacted,
            ),
            (
                "pipeline_over_budget",
                "Events stored unparsed because the tenant's time budget for the chunk was spent",
                &m.pipeline_over_budget,
            ),
            (
                "pipeline_label_overflow",
                "Field-label values stored as __overflow__ past the label's bound",
                &m.pipeline_label_overflow,
            ),
        ] {
            r.register(name, help, family.clone());
        }
        r.register_with_unit(
            "pipeline_processing",
            "Time spent in the pipeline's rules",
            Unit::Seconds,
            m.pipeline_seconds.clone(),
        );
        r.register(
            "pipeline_generation",
            "metadata.generation of each LogPipeline in force in this process",
            m.pipeline_generation.clone(),
        );
        m
    }
}
