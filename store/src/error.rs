//! Errors of the storage layer.

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid storage URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("object store {op} {key}: {source}")]
    ObjectStore {
        op: &'static str,
        key: String,
        source: object_store::Error,
    },
    #[error("make {path} durable: {source}")]
    Sync {
        path: String,
        source: std::io::Error,
    },
    #[error("build record batch: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("write parquet: {0}")]
    Parquet(#[from] ::parquet::errors::ParquetError),
    #[error("manifest {key} is unreadable: {reason}")]
    Manifest { key: String, reason: String },
}
