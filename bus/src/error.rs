//! Errors of the bus.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("open WAL directory {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{op}: {source}")]
    Io {
        op: &'static str,
        source: std::io::Error,
    },
    #[error("the disk holding the WAL is full")]
    DiskFull,
    #[error("WAL write failed: {0}")]
    WriteFailed(String),
    /// Too much waits to be stored: WAL bytes for the processor, or pushes for a Kafka
    /// transaction.
    #[error("the bus is full: {retained_bytes} bytes wait (limit {limit_bytes})")]
    Full {
        retained_bytes: u64,
        limit_bytes: u64,
    },
    #[error("WAL segment {segment} is corrupt at byte {pos}: {reason}")]
    Corrupt {
        segment: u64,
        pos: u64,
        reason: &'static str,
    },
    #[error("offset {offset} was trimmed from the WAL")]
    Trimmed { offset: u64 },
    #[error("encode record: {0}")]
    Encode(postcard::Error),
    #[error("decode record: {0}")]
    Decode(postcard::Error),
    #[error("the WAL writer has stopped")]
    Closed,
    #[error("a WAL lock was poisoned by a panic")]
    Poisoned,
    /// The brokers cannot take writes now (down, unreachable, no leader, timed out).
    #[error("the bus is unavailable: {0}")]
    Unavailable(String),
    /// The bus refused the data and will refuse it again (too large, not authorized, ...).
    #[error("the bus refused the data: {0}")]
    Rejected(String),
    /// Any other Kafka client failure.
    #[error("kafka: {0}")]
    Kafka(String),
}

impl Error {
    /// True when retrying later can succeed without anyone changing anything (space frees up,
    /// the processor catches up): ingest answers these with 429/503 and `Retry-After`.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::DiskFull | Error::WriteFailed(_) | Error::Full { .. } | Error::Unavailable(_)
        )
    }
}
