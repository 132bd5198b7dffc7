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
pub mod pipeline;
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

/// Locks a mutex, taking the data of one a panic poisoned (the state stays usable: every
/// writer leaves it consistent between statements).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}
