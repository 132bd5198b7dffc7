//! The processor: follows the bus, keeps what it has read but not yet stored in memory (where
//! queries see it within milliseconds of the ack), and flushes it to Parquet in object storage
//! exactly once (see `logstream_store::manifest` for the commit protocol).
//!
//! [`PartitionWorker`] does the work on one bus partition; [`Processor`] runs one over the
//! embedded WAL (standalone), [`GroupProcessor`] one per Kafka partition the consumer group
//! assigns, and [`Tail`] follows every Kafka partition for queries without writing.

pub mod error;
mod flush;
mod group;
pub mod hot;
pub mod metrics;
mod standalone;
mod tail;
mod worker;

pub use error::{Error, Result};
pub use group::GroupProcessor;
pub use hot::{HotChunk, Snapshot};
pub use metrics::ProcessorMetrics;
pub use standalone::Processor;
pub use tail::Tail;
pub use worker::{Mode, PartitionWorker, ProcessorConfig, start_offset};
