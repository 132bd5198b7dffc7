//! The bus as processors and queries see it, whichever implementation is behind it: partitions
//! of records in offset order. The embedded WAL is one partition; a Kafka topic has many.
//!
//! A partition is handed to its consumer as two halves: a [`PartitionReader`] that yields
//! records, and a [`PartitionControl`] that tells how far the bus has got and takes the
//! "stored below" signal after a commit to object storage.

use crate::error::Result;
use std::fmt::Debug;

/// One record of a partition: its offset and an encoded [`Batch`](crate::Batch)
/// (see [`codec`](crate::codec)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub offset: u64,
    pub payload: Vec<u8>,
}

/// Reads one partition in offset order. Offsets increase but need not be consecutive (Kafka
/// leaves gaps for transaction markers).
#[async_trait::async_trait]
pub trait PartitionReader: Send + Debug {
    /// Offset just past the last record returned (the start offset before any).
    fn position(&self) -> u64;

    /// Waits until at least one record is readable, then returns the readable records up to
    /// about `max_bytes` (always at least one). Cancel-safe: dropping the future loses nothing.
    async fn next(&mut self, max_bytes: usize) -> Result<Vec<Record>>;
}

/// The bus side of a partition's bookkeeping.
pub trait PartitionControl: Send + Sync + Debug {
    /// Offset just past the last record the bus holds now, as far as this process knows
    /// (lag metric, read-your-writes).
    fn end(&self) -> u64;

    /// Everything below `offset` is committed to object storage: the WAL drops it, Kafka
    /// commits the consumer group's offset. Best effort: a failure is logged and retried
    /// with the next call, since the manifest, not the bus, is the record of what is stored.
    fn stored_below(&self, offset: u64);
}

/// Ingest's side of the bus.
#[async_trait::async_trait]
pub trait Producer: Send + Sync + Debug {
    /// Appends one request's batch, all or nothing, and returns once it is durable (fsync'd, or
    /// acknowledged by all in-sync replicas). On error no consumer ever sees any of it.
    async fn append(&self, batch: &crate::Batch) -> Result<()>;
}
