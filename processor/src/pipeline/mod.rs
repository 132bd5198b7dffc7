//! The parsing library of LogPipelines: line parsers (`json`, `logfmt`, `regex`, `pattern`)
//! that turn a log line into fields, timestamp formats that read a field into an instant, and
//! level normalisation. Everything here is compiled once per pipeline and then runs on the
//! hot path without IO and, where the text allows, without allocating.

pub mod level;
pub mod parse;
pub mod plan;
pub mod report;
pub mod time;

/// The pipelines in force, as the processors' configuration gives them; a new value takes
/// over at the next chunk read from the bus.
pub type PlansWatch = tokio::sync::watch::Receiver<std::sync::Arc<plan::Plans>>;

/// A watch that always holds no pipelines.
pub fn no_plans() -> PlansWatch {
    tokio::sync::watch::channel(std::sync::Arc::new(plan::Plans::default())).1
}
