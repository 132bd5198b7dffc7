//! Ingest: turns HTTP push requests (Loki push, NDJSON) into validated [`logstream_bus::Batch`]es
//! and appends them to the bus, answering only once they are durable.

pub mod decode;
pub mod http;
pub mod metrics;

pub use http::{IngestConfig, IngestState, router};
pub use metrics::IngestMetrics;
