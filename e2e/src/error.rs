//! The support crate's error type: one variant per operation that failed, sources kept.

use std::time::Duration;

/// Errors from setting up or talking to the real parts.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading the e2e env file {path}")]
    ReadEnvFile {
        path: String,
        source: std::io::Error,
    },
    #[error("loading kubeconfig {path}")]
    LoadKubeconfig {
        path: String,
        source: kube::config::KubeconfigError,
    },
    #[error("{path} is not the e2e cluster: its current context is not {context}")]
    ForeignCluster { path: String, context: &'static str },
    #[error("building the kube client")]
    KubeClient(#[source] kube::Error),
    #[error("kubernetes api call {op}")]
    KubeApi { op: String, source: kube::Error },
    #[error("kafka {op}")]
    Kafka {
        op: String,
        source: rdkafka::error::KafkaError,
    },
    #[error("creating kafka topic {topic}: {code}")]
    CreateTopic { topic: String, code: String },
    #[error("building the object store for bucket {bucket}")]
    ObjectStore {
        bucket: String,
        source: object_store::Error,
    },
    #[error("s3 bucket administration")]
    Store(#[from] logstream_store::Error),
    #[error("timed out after {timeout:?} waiting for {what}")]
    Timeout { what: String, timeout: Duration },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `err` and its sources joined with `: `, for one-line skip and failure messages.
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
