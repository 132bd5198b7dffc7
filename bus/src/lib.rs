//! The bus between ingest and processors. It owns the event model ([`event`]) and the embedded
//! write-ahead log ([`wal`]) that makes a single machine durable without Kafka.

pub mod event;

pub use event::{Batch, Entry, Labels, LabelsError, Stream};
