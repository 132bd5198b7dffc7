//! The bus between ingest and processors. It owns the event model ([`event`]), the embedded
//! write-ahead log ([`wal`]) that makes a single machine durable without Kafka, and the Kafka
//! implementation ([`kafka`]) for a cluster. Both implement the traits of [`partition`].

pub mod codec;
pub mod error;
pub mod event;
pub mod kafka;
pub mod metrics;
pub mod partition;
pub mod wal;

pub use error::{Error, Result};
pub use event::{Batch, Entry, Labels, LabelsError, Origin, Stream};
pub use metrics::WalMetrics;
pub use partition::{PartitionControl, PartitionReader, Producer, Record};
pub use wal::{Wal, WalConfig, WalReader};
