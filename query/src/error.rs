//! Errors of the query service, each with the HTTP status it is answered with.

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request parameter is missing or malformed; the message names it.
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Parse(#[from] logstream_logql::ParseError),
    #[error("query execution failed: {0}")]
    Execution(#[from] datafusion::error::DataFusionError),
    #[error("query execution failed: {0}")]
    Internal(String),
}

impl Error {
    pub fn status(&self) -> u16 {
        match self {
            Error::BadRequest(_) | Error::Parse(_) => 400,
            Error::Execution(_) | Error::Internal(_) => 500,
        }
    }
}
