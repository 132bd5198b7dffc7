//! Pure decoding and validation of push request bodies (no HTTP, no IO): Loki's push API in
//! JSON and protobuf, and LogStream's NDJSON, each turned into validated [`Stream`]s all or
//! nothing. Every error names where and what ([`DecodeError`]) and maps to one HTTP status.
//!
//! Decisions where clients and Loki leave room:
//! - An empty body (after content decoding) is an empty request and yields no streams.
//! - Streams with no entries are dropped without looking at their labels.
//! - Streams with equal label sets (in any order) are merged into one, in first-seen order.
//! - Labels with an empty value are dropped (an empty value means "absent" in LogQL); a Loki
//!   stream needs at least one label left, an NDJSON line may have none.

#![warn(missing_docs)]

mod compression;
mod error;
mod json;
mod labels;
mod loki_json;
pub mod loki_proto;
mod ndjson;
mod tenant;
mod timestamp;
mod validate;

#[cfg(test)]
mod tests;

pub use compression::Encoding;
pub use error::{DecodeError, Location, Problem, TenantProblem};
pub use tenant::validate_tenant;

use logstream_bus::Stream;

/// Size and time limits applied while decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// The most bytes a body may have after content decoding (and snappy, for protobuf).
    pub max_decompressed_bytes: usize,
    /// The longest log line, in bytes (also bounds each structured metadata value).
    pub max_line_bytes: usize,
    /// The most labels one stream may have.
    pub max_labels_per_stream: usize,
    /// The longest label name, in bytes (also bounds structured metadata names).
    pub max_label_name_bytes: usize,
    /// The longest label value, in bytes.
    pub max_label_value_bytes: usize,
    /// How far past `now` a timestamp may be, in nanoseconds.
    pub max_future_ns: i64,
    /// How far before `now` a timestamp may be, in nanoseconds; `None` for no limit.
    pub max_age_ns: Option<i64>,
}

impl Default for Limits {
    /// 64 MiB decompressed, 256 KiB lines, 15 labels (Loki's default), 1024-byte names,
    /// 2048-byte values, 10 minutes into the future, no age limit.
    fn default() -> Self {
        Self {
            max_decompressed_bytes: 64 << 20,
            max_line_bytes: 256 << 10,
            max_labels_per_stream: 15,
            max_label_name_bytes: 1024,
            max_label_value_bytes: 2048,
            max_future_ns: 10 * 60 * 1_000_000_000,
            max_age_ns: None,
        }
    }
}

/// Decodes a Loki push body (`POST /loki/api/v1/push`). A content type of `application/json`
/// (parameters allowed) means JSON; any other or none means snappy-compressed protobuf, as in
/// Loki. `now_ns` anchors the timestamp window.
pub fn decode_loki_push(
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    body: &[u8],
    limits: &Limits,
    now_ns: i64,
) -> Result<Vec<Stream>, DecodeError> {
    let encoding = Encoding::from_header(content_encoding)?;
    if !is_json(content_type) {
        return loki_proto::decode(encoding, body, limits, now_ns);
    }
    let payload = compression::decompress(encoding, body, limits.max_decompressed_bytes)?;
    if payload.is_empty() {
        return Ok(Vec::new());
    }
    loki_json::decode(&payload, limits, now_ns)
}

/// Decodes an NDJSON body (LogStream's native endpoint): one JSON object per line, grouped
/// into streams by its `labels`. Lines without a timestamp get `now_ns`.
pub fn decode_ndjson(
    content_encoding: Option<&str>,
    body: &[u8],
    limits: &Limits,
    now_ns: i64,
) -> Result<Vec<Stream>, DecodeError> {
    let encoding = Encoding::from_header(content_encoding)?;
    let payload = compression::decompress(encoding, body, limits.max_decompressed_bytes)?;
    ndjson::decode(&payload, limits, now_ns)
}

/// Whether the media type (ignoring parameters and case) is `application/json`.
fn is_json(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}
