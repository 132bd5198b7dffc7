//! Storage: where events live once they leave the bus.
//!
//! - [`layout`]: the object keys (tenant and retention class before date and hour, bus offsets
//!   in the file name so a replay rewrites the same object).
//! - [`schema`] and [`parquet`]: the Arrow schema and the Parquet files built from it.
//! - [`manifest`]: the one small object per bus source that says which files are committed and
//!   up to which bus offset; the commit point of the exactly-once protocol.
//! - [`store`]: the object store behind a URL, made durable on local disk.

pub mod error;
pub mod layout;
pub mod manifest;
pub mod parquet;
pub mod schema;
pub mod store;

pub use error::{Error, Result};
pub use manifest::{FileMeta, Manifest, OffsetRange};
pub use object_store::path::Path as ObjectPath;
pub use store::Store;
