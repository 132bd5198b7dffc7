//! The processor: follows the bus, keeps what it has read but not yet stored in memory (where
//! queries see it within milliseconds of the ack), and flushes it to Parquet in object storage
//! exactly once (see `logstream_store::manifest` for the commit protocol).

pub mod error;
mod flush;
pub mod hot;
pub mod metrics;
mod run;

pub use error::{Error, Result};
pub use hot::{HotChunk, Snapshot};
pub use metrics::ProcessorMetrics;
pub use run::{Processor, ProcessorConfig};
