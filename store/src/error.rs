//! Errors of the storage layer.

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid storage URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error(
        "unsupported storage URL scheme '{scheme}' in {url}: use a local path, file://, s3://, gs:// or az://"
    )]
    UnsupportedScheme { scheme: String, url: String },
    #[error("storage option {key:?} for {url}: {reason}")]
    InvalidOption {
        url: String,
        key: String,
        reason: String,
    },
    #[error("open storage {url}: {source}")]
    Open {
        url: String,
        source: object_store::Error,
    },
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
    #[error("object {key} was changed by another writer")]
    Conflict { key: String },
    #[error(
        "the manifest of {source_name} was claimed by {owner} (epoch {epoch}): this process no longer owns it"
    )]
    Fenced {
        source_name: String,
        owner: String,
        epoch: u64,
    },
    #[error("manifest {key} is unreadable: {reason}")]
    Manifest { key: String, reason: String },
    #[error("s3 credentials for {op}: {source}")]
    S3Credentials {
        op: String,
        source: object_store::Error,
    },
    #[error("s3 request {op} to {url}: {source}")]
    S3Request {
        op: String,
        url: String,
        source: object_store::client::HttpError,
    },
    #[error("s3 request {op} answered {status}: {body}")]
    S3Status {
        op: String,
        status: u16,
        body: String,
    },
    #[error("lifecycle configuration xml: {reason}")]
    LifecycleXml { reason: String },
    #[error("invalid retention policy: {reason}")]
    InvalidRetention { reason: String },
    #[error("bucket {bucket} would hold {count} lifecycle rules, more than the 1000 S3 allows")]
    TooManyLifecycleRules { bucket: String, count: usize },
}
