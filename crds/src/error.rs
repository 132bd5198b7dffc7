//! The crate's error type: one variant per operation that failed, sources kept.

/// Errors from rendering the custom resource definitions.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("rendering the CustomResourceDefinition {name} as YAML")]
    RenderYaml {
        name: String,
        source: serde_saphyr::SerializeError,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
