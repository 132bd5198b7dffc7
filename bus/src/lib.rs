//! The bus between ingest and processors. It owns the event model ([`event`]) and the embedded
//! write-ahead log ([`wal`]) that makes a single machine durable without Kafka.

pub mod error;
pub mod event;
pub mod metrics;
pub mod wal;

pub use error::{Error, Result};
pub use event::{Batch, Entry, Labels, LabelsError, Stream};
pub use metrics::WalMetrics;
pub use wal::{Wal, WalConfig, WalReader};
