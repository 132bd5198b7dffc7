//! Errors of the processor.

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("read the bus: {0}")]
    Bus(#[from] logstream_bus::Error),
    #[error("storage: {0}")]
    Store(#[from] logstream_store::Error),
    #[error("build rows: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("a processor task failed: {0}")]
    Task(String),
    #[error(
        "the manifest says offsets from {expected} are not stored yet, but the bus starts at {found}: \
         the WAL directory does not belong to this storage"
    )]
    Gap { expected: u64, found: u64 },
}

impl Error {
    /// Another processor claimed the partition's manifest: this worker must stop writing.
    pub fn is_fenced(&self) -> bool {
        matches!(self, Error::Store(logstream_store::Error::Fenced { .. }))
    }
}
