//! Why a request body was refused. [`DecodeError`] covers the request as a whole; when one stream,
//! entry or NDJSON line is at fault it carries that [`Location`] and the [`Problem`] found there.
//! [`DecodeError::status`] is the one place errors map to HTTP statuses, and
//! [`DecodeError::reason`] gives a fixed category that metrics may use as a label.

use super::timestamp::{human_duration, rfc3339};
use logstream_bus::LabelsError;
use std::fmt;

/// Why a push request body was refused. Any error rejects the whole request.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The `Content-Encoding` header names an encoding this decoder does not handle.
    #[error("unsupported content encoding {0:?} (supported: identity, gzip, deflate, snappy)")]
    UnsupportedEncoding(String),
    /// The body as received is larger than the decompressed-size limit.
    #[error("body is {len} bytes, over the limit of {limit}")]
    BodyTooLarge {
        /// The body's size in bytes.
        len: usize,
        /// [`super::Limits::max_decompressed_bytes`].
        limit: usize,
    },
    /// Decompressing the body would pass the limit; decompression stopped there.
    #[error("body decompresses to more than {limit} bytes (limit)")]
    DecompressedTooLarge {
        /// [`super::Limits::max_decompressed_bytes`].
        limit: usize,
    },
    /// The body is not valid data of its content encoding.
    #[error("invalid {encoding} data: {source}")]
    Corrupt {
        /// The encoding's name, e.g. `gzip`.
        encoding: &'static str,
        /// The decompressor's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The (decompressed) body is not a protobuf `PushRequest`.
    #[error("invalid protobuf: {0}")]
    Protobuf(#[source] prost::DecodeError),
    /// The body is not JSON of the expected shape.
    #[error("invalid JSON at line {line} column {column}: {message}")]
    Json {
        /// 1-based line of the body where parsing stopped.
        line: usize,
        /// Column (as serde_json counts) where parsing stopped.
        column: usize,
        /// serde_json's message without the position.
        message: String,
        /// serde_json's error.
        source: serde_json::Error,
    },
    /// One stream, entry or line is invalid.
    #[error("{at}: {problem}")]
    Invalid {
        /// Which stream, entry or line.
        at: Location,
        /// What is wrong with it.
        problem: Problem,
    },
    /// The tenant id (`X-Scope-OrgID`) is not acceptable.
    #[error("invalid tenant id {id:?}: {problem}")]
    Tenant {
        /// The id as sent (clipped when very long).
        id: String,
        /// What is wrong with it.
        problem: TenantProblem,
    },
}

impl DecodeError {
    /// The HTTP status to answer with: 413 when too large, 415 for an unsupported content
    /// encoding, 400 for everything malformed or invalid.
    pub fn status(&self) -> u16 {
        match self {
            Self::UnsupportedEncoding(_) => 415,
            Self::BodyTooLarge { .. } | Self::DecompressedTooLarge { .. } => 413,
            _ => 400,
        }
    }

    /// A fixed, low-cardinality category for metric labels (never the message text).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::UnsupportedEncoding(_) => "unsupported_encoding",
            Self::BodyTooLarge { .. } | Self::DecompressedTooLarge { .. } => "too_large",
            Self::Corrupt { .. } => "corrupt_body",
            Self::Protobuf(_) => "invalid_protobuf",
            Self::Json { .. } => "invalid_json",
            Self::Invalid { problem, .. } => problem.reason(),
            Self::Tenant { .. } => "invalid_tenant",
        }
    }

    pub(crate) fn invalid(at: Location, problem: Problem) -> Self {
        Self::Invalid { at, problem }
    }

    pub(crate) fn corrupt(
        encoding: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Corrupt {
            encoding,
            source: source.into(),
        }
    }

    /// Wraps a serde_json error, moving its position out of the message text.
    pub(crate) fn json(source: serde_json::Error) -> Self {
        Self::Json {
            line: source.line(),
            column: source.column(),
            message: json_message(&source),
            source,
        }
    }
}

/// serde_json's message without the " at line L column C" suffix it appends.
pub(crate) fn json_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match text.strip_suffix(&suffix) {
        Some(message) => message.to_owned(),
        None => text,
    }
}

/// Where in the request an invalid item sits, printed the way a client would look it up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// `streams[i]` of a Loki push request (JSON or protobuf).
    Stream(usize),
    /// `streams[i].values[j]` of a Loki JSON push request.
    Value {
        /// Index in `streams`.
        stream: usize,
        /// Index in that stream's `values`.
        value: usize,
    },
    /// `streams[i].entries[j]` of a Loki protobuf push request.
    Entry {
        /// Index in `streams`.
        stream: usize,
        /// Index in that stream's `entries`.
        entry: usize,
    },
    /// A 1-based line number of an NDJSON body (blank lines count).
    Line(usize),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stream(i) => write!(f, "streams[{i}]"),
            Self::Value { stream, value } => write!(f, "streams[{stream}].values[{value}]"),
            Self::Entry { stream, entry } => write!(f, "streams[{stream}].entries[{entry}]"),
            Self::Line(n) => write!(f, "line {n}"),
        }
    }
}

/// What is wrong with one stream, entry or line. Names and texts quoted in these are clipped
/// to a short prefix; timestamps "as sent" are JSON text (quoted when they were strings).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The protobuf `labels` string is not a `{name="value", ...}` selector.
    #[error("cannot parse labels {labels:?}: {what} at byte {offset}")]
    LabelSyntax {
        /// The label string as sent.
        labels: String,
        /// 0-based byte offset where parsing stopped.
        offset: usize,
        /// What was expected or found there.
        what: String,
    },
    /// A label name does not match `[a-zA-Z_][a-zA-Z0-9_]*`.
    #[error("label name {0:?} is invalid (must match [a-zA-Z_][a-zA-Z0-9_]*)")]
    LabelName(String),
    /// A label name is longer than [`super::Limits::max_label_name_bytes`].
    #[error("label name {name:?} is {len} bytes, over the limit of {limit}")]
    LabelNameTooLong {
        /// The name.
        name: String,
        /// Its length in bytes.
        len: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// A label value is longer than [`super::Limits::max_label_value_bytes`].
    #[error("label {name:?} has a value of {len} bytes, over the limit of {limit}")]
    LabelValueTooLong {
        /// The label's name.
        name: String,
        /// The value's length in bytes.
        len: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// More labels than [`super::Limits::max_labels_per_stream`].
    #[error("stream has {count} labels, over the limit of {limit}")]
    TooManyLabels {
        /// Labels with a non-empty value.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// A Loki stream without any label with a non-empty value.
    #[error("stream has no labels (at least one with a non-empty value is required)")]
    NoLabels,
    /// Two labels share a name.
    #[error("{0}")]
    Labels(LabelsError),
    /// A Loki JSON timestamp (as sent) that is not an integer.
    #[error("timestamp {0} is not an integer number of nanoseconds")]
    TimestampNotInteger(String),
    /// An NDJSON timestamp string (as sent) that is neither RFC 3339 nor numeric.
    #[error("timestamp {0} is neither RFC 3339 nor a number")]
    TimestampUnparsable(String),
    /// An NDJSON timestamp field (named) holding neither a string nor a number.
    #[error("timestamp field {0:?} must be a string or a number")]
    TimestampType(String),
    /// A timestamp (as sent) that does not fit an `i64` of nanoseconds.
    #[error("timestamp {0} is out of range")]
    TimestampOutOfRange(String),
    /// A protobuf entry without a timestamp.
    #[error("timestamp is missing")]
    TimestampMissing,
    /// A timestamp (nanoseconds) at or before 1970-01-01T00:00:00Z.
    #[error("timestamp {0} is not after the unix epoch")]
    TimestampNotPositive(i64),
    /// A timestamp beyond `now + max_future_ns`.
    #[error("timestamp {} is more than {} in the future", rfc3339(*.ts_ns), human_duration(*.max_future_ns))]
    TimestampInFuture {
        /// The timestamp in nanoseconds.
        ts_ns: i64,
        /// [`super::Limits::max_future_ns`].
        max_future_ns: i64,
    },
    /// A timestamp before `now - max_age_ns`.
    #[error("timestamp {} is more than {} old", rfc3339(*.ts_ns), human_duration(*.max_age_ns))]
    TimestampTooOld {
        /// The timestamp in nanoseconds.
        ts_ns: i64,
        /// [`super::Limits::max_age_ns`].
        max_age_ns: i64,
    },
    /// A line longer than [`super::Limits::max_line_bytes`].
    #[error("line is {len} bytes, over the limit of {limit}")]
    LineTooLong {
        /// The line's length in bytes.
        len: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// A protobuf line, or an NDJSON body line, that is not UTF-8.
    #[error("line is not valid UTF-8 ({0})")]
    LineNotUtf8(std::str::Utf8Error),
    /// A Loki JSON entry with fewer than two elements (the count found).
    #[error("expected [timestamp, line] or [timestamp, line, metadata], found {0} element(s)")]
    EntryShape(usize),
    /// An NDJSON line without a message field.
    #[error("no message field (expected one of message, msg, log, line)")]
    NoMessage,
    /// An NDJSON message field (named) that is not a string.
    #[error("message field {0:?} must be a string")]
    MessageNotString(String),
    /// A Loki JSON metadata value (named) that is null, an array or an object.
    #[error("structured metadata {0:?} must be a string, number or boolean")]
    MetadataType(String),
    /// A structured metadata pair with an empty name.
    #[error("structured metadata has an empty name")]
    MetadataNameEmpty,
    /// A structured metadata name longer than [`super::Limits::max_label_name_bytes`].
    #[error("structured metadata name {name:?} is {len} bytes, over the limit of {limit}")]
    MetadataNameTooLong {
        /// The name.
        name: String,
        /// Its length in bytes.
        len: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// A structured metadata value longer than [`super::Limits::max_line_bytes`].
    #[error("structured metadata {name:?} has a value of {len} bytes, over the limit of {limit}")]
    MetadataValueTooLong {
        /// The pair's name.
        name: String,
        /// The value's length in bytes.
        len: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// An NDJSON line that is not a JSON object of the expected shape.
    #[error("invalid JSON at column {column}: {message}")]
    Json {
        /// Column (as serde_json counts) where parsing stopped.
        column: usize,
        /// serde_json's message without the position.
        message: String,
    },
}

impl Problem {
    fn reason(&self) -> &'static str {
        match self {
            Self::LabelSyntax { .. }
            | Self::LabelName(_)
            | Self::LabelNameTooLong { .. }
            | Self::LabelValueTooLong { .. }
            | Self::TooManyLabels { .. }
            | Self::NoLabels
            | Self::Labels(_) => "invalid_labels",
            Self::TimestampInFuture { .. } => "timestamp_too_new",
            Self::TimestampTooOld { .. } => "timestamp_too_old",
            Self::TimestampNotInteger(_)
            | Self::TimestampUnparsable(_)
            | Self::TimestampType(_)
            | Self::TimestampOutOfRange(_)
            | Self::TimestampMissing
            | Self::TimestampNotPositive(_) => "invalid_timestamp",
            Self::LineTooLong { .. } => "line_too_long",
            Self::MetadataType(_)
            | Self::MetadataNameEmpty
            | Self::MetadataNameTooLong { .. }
            | Self::MetadataValueTooLong { .. } => "invalid_metadata",
            Self::LineNotUtf8(_)
            | Self::EntryShape(_)
            | Self::NoMessage
            | Self::MessageNotString(_)
            | Self::Json { .. } => "invalid_entry",
        }
    }
}

/// Why a tenant id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantProblem {
    /// No id at all.
    #[error("it is empty")]
    Empty,
    /// A multi-tenant id such as `a|b`.
    #[error("several tenants joined with '|' are not supported, send one tenant per request")]
    MultiTenant,
    /// Longer than 150 characters (the count found).
    #[error("it is {0} characters, over the limit of 150")]
    TooLong(usize),
    /// `.` or `..`.
    #[error("\".\" and \"..\" are reserved")]
    Reserved,
    /// A character outside `[a-zA-Z0-9!._*'()-]` (the first found).
    #[error("it contains {0:?} (allowed: a-z A-Z 0-9 ! . _ * ' ( ) -)")]
    InvalidChar(char),
}

/// At most `MAX_QUOTED` bytes of `s` (cut on a character boundary) for quoting in messages, so
/// a huge hostile name cannot make a huge error.
pub(crate) fn clip(s: &str) -> String {
    const MAX_QUOTED: usize = 160;
    if s.len() <= MAX_QUOTED {
        return s.to_owned();
    }
    format!("{}...", &s[..s.floor_char_boundary(MAX_QUOTED)])
}
