//! Query: LogQL over the Loki HTTP API. [`select`] picks the files and hot rows whose streams
//! match, [`row_labels`] turns label filters and groupings into per-stream decisions and scan
//! expressions, [`exec`] scans with DataFusion, [`eval`] turns per-bucket counts into metric
//! series, and [`api`] speaks Loki's request and response shapes.

pub mod api;
pub mod error;
pub mod eval;
pub mod exec;
pub mod metrics;
pub mod params;
pub mod row_labels;
pub mod select;

pub use api::{QueryState, SnapshotSource, router};
pub use error::{Error, Result};
pub use exec::Engine;
pub use metrics::QueryMetrics;
