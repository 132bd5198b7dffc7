//! Loki's protobuf push format: the message types (written by hand from the wire format, field
//! numbers as Loki's `push.proto` declares them) and their decoding into validated streams.
//!
//! Payload framing follows Loki's clients: without `Content-Encoding` or with `snappy` the body
//! is snappy block data (Promtail and winston-loki send no header, tracing-loki sends `snappy`).
//! With `gzip` or `deflate` the inflated bytes are first tried as snappy and then as a
//! `PushRequest` (snappy inside gzip is the usual stacking); when either step fails they are
//! read as a plain `PushRequest`. If both readings fail, the error of the snappy reading is
//! reported when the bytes were valid snappy (or decompressed past the limit), else the plain
//! protobuf error.

use super::compression::{self, Encoding};
use super::error::{DecodeError, Location, Problem, clip};
use super::validate::{self, StreamSet};
use super::{Limits, labels, timestamp};
use logstream_bus::{Entry, Labels, Stream};
use prost::Message;

/// `logproto.PushRequest`: the body of `POST /loki/api/v1/push`.
#[derive(Clone, PartialEq, Message)]
pub struct PushRequest {
    /// The streams pushed.
    #[prost(message, repeated, tag = "1")]
    pub streams: Vec<StreamAdapter>,
}

/// One stream: its label selector string and entries. `hash` is ignored.
#[derive(Clone, PartialEq, Message)]
pub struct StreamAdapter {
    /// Labels in selector form, e.g. `{app="api", env="prod"}`.
    #[prost(string, tag = "1")]
    pub labels: String,
    /// The stream's entries, in order.
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<EntryAdapter>,
    /// A client-side hash of the labels; ignored.
    #[prost(uint64, tag = "3")]
    pub hash: u64,
}

/// One log line. The line is bytes on the wire so a non-UTF-8 line gets a located error.
#[derive(Clone, PartialEq, Message)]
pub struct EntryAdapter {
    /// When the line was logged; required.
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<Timestamp>,
    /// The log line, UTF-8.
    #[prost(bytes = "vec", tag = "2")]
    pub line: Vec<u8>,
    /// Per-line key/value pairs outside the stream identity.
    #[prost(message, repeated, tag = "3")]
    pub structured_metadata: Vec<LabelPairAdapter>,
}

/// One structured metadata pair.
#[derive(Clone, PartialEq, Message)]
pub struct LabelPairAdapter {
    /// The pair's name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The pair's value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, Eq, Message)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds within the second, `0..1_000_000_000`.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// Decodes a protobuf push body (see the module docs for framing) into validated streams.
pub(crate) fn decode(
    encoding: Encoding,
    body: &[u8],
    limits: &Limits,
    now_ns: i64,
) -> Result<Vec<Stream>, DecodeError> {
    let request = unwrap_payload(encoding, body, limits.max_decompressed_bytes)?;
    let mut set = StreamSet::default();
    for (index, stream) in request.streams.into_iter().enumerate() {
        if stream.entries.is_empty() {
            continue;
        }
        let labels = stream_labels(&stream.labels, limits)
            .map_err(|p| DecodeError::invalid(Location::Stream(index), p))?;
        let entries = stream
            .entries
            .into_iter()
            .enumerate()
            .map(|(entry, e)| {
                to_entry(e, limits, now_ns).map_err(|p| {
                    DecodeError::invalid(
                        Location::Entry {
                            stream: index,
                            entry,
                        },
                        p,
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        set.extend(labels, entries);
    }
    Ok(set.into_streams())
}

/// Undoes the content encoding and snappy framing; an empty body is an empty request.
fn unwrap_payload(
    encoding: Encoding,
    body: &[u8],
    limit: usize,
) -> Result<PushRequest, DecodeError> {
    if body.is_empty() {
        return Ok(PushRequest::default());
    }
    if matches!(encoding, Encoding::Identity | Encoding::Snappy) {
        return parse(&compression::snappy(body, limit)?);
    }
    let inflated = compression::decompress(encoding, body, limit)?;
    if inflated.is_empty() {
        return Ok(PushRequest::default());
    }
    match compression::snappy(&inflated, limit) {
        Ok(raw) => parse(&raw).or_else(|snappy_err| parse(&inflated).map_err(|_| snappy_err)),
        Err(too_large @ DecodeError::DecompressedTooLarge { .. }) => {
            parse(&inflated).map_err(|_| too_large)
        }
        Err(_) => parse(&inflated),
    }
}

fn parse(bytes: &[u8]) -> Result<PushRequest, DecodeError> {
    PushRequest::decode(bytes).map_err(DecodeError::Protobuf)
}

fn stream_labels(src: &str, limits: &Limits) -> Result<Labels, Problem> {
    let pairs = labels::parse(src).map_err(|e| Problem::LabelSyntax {
        labels: clip(src),
        offset: e.offset,
        what: e.what,
    })?;
    validate::stream_labels(pairs, limits, true)
}

fn to_entry(e: EntryAdapter, limits: &Limits, now_ns: i64) -> Result<Entry, Problem> {
    let ts = e.timestamp.ok_or(Problem::TimestampMissing)?;
    let ts_ns = timestamp::from_proto(ts.seconds, ts.nanos)?;
    let line = String::from_utf8(e.line).map_err(|err| Problem::LineNotUtf8(err.utf8_error()))?;
    validate::entry(ts_ns, &line, limits, now_ns)?;
    let metadata = e
        .structured_metadata
        .into_iter()
        .map(|pair| {
            validate::metadata(&pair.name, &pair.value, limits)?;
            Ok((pair.name, pair.value))
        })
        .collect::<Result<_, Problem>>()?;
    Ok(Entry {
        ts_ns,
        line,
        metadata,
    })
}
