//! Storage: where events live once they leave the bus.
//!
//! - [`layout`]: the object keys (tenant and retention class before date and hour, bus offsets
//!   in the file name so a replay rewrites the same object).
//! - [`schema`] and [`parquet`]: the Arrow schema and the Parquet files built from it.
//! - [`manifest`]: the one small object per bus source that says which files are committed and
//!   up to which bus offset; the commit point of the exactly-once protocol.
//! - [`store`] and [`location`]: the object store behind a URL (local directory, S3, GCS,
//!   Azure), made durable on local disk, large objects uploaded in parts.
//! - [`retention`]: how long data is kept, enforced by S3 lifecycle rules ([`lifecycle`],
//!   written through [`s3_admin`]) or by a sweeper.

pub mod error;
pub mod layout;
pub mod lifecycle;
pub mod location;
pub mod manifest;
pub mod parquet;
pub mod retention;
pub mod s3_admin;
pub mod schema;
pub mod store;

pub use error::{Error, Result};
pub use manifest::{FileMeta, Manifest, OffsetRange};
pub use object_store::path::Path as ObjectPath;
pub use retention::{RetentionPolicy, RetentionRule};
pub use s3_admin::{BucketAdmin, S3Config, S3Location};
pub use store::{Multipart, ObjectVersion, Store};
