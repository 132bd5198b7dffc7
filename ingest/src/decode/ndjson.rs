//! LogStream's native NDJSON format: one JSON object per line, grouped into streams by the
//! optional `labels` object.
//!
//! Per line: the timestamp is the first present (non-null) of `timestamp`, `ts`, `time`,
//! `@timestamp` (RFC 3339 or an epoch number, see `timestamp`), else `now`; the message is the
//! first present of `message`, `msg`, `log`, `line` and must be a string; `labels` holds string
//! label values (no labels is fine: such lines form the stream with the empty label set). Every
//! other non-null field becomes structured metadata in field order: strings as they are, other
//! values as compact JSON. A candidate key that lost to a higher-priority one (say `msg` when
//! `message` is present) is an ordinary field, so ECS's `log` object survives as metadata.
//!
//! Decoding borrows keys and unescaped strings from the body and reuses its buffers across
//! lines; a label set written the same way as before skips validation and allocation.

use super::Limits;
use super::error::{DecodeError, Location, Problem, clip, json_message};
use super::json::{CowStr, Scalar};
use super::timestamp;
use super::validate::{self, StreamSet};
use logstream_bus::{Entry, Stream};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::str::Utf8Error;

const TIMESTAMP_KEYS: [&str; 4] = ["timestamp", "ts", "time", "@timestamp"];
const MESSAGE_KEYS: [&str; 4] = ["message", "msg", "log", "line"];

type Fields<'a> = Vec<(Cow<'a, str>, Scalar<'a>)>;
type RawLabels<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

/// Decodes a (decompressed) NDJSON body into validated streams.
pub(crate) fn decode(
    payload: &[u8],
    limits: &Limits,
    now_ns: i64,
) -> Result<Vec<Stream>, DecodeError> {
    // Checking UTF-8 once lets line splitting use the fast `str` search and lets serde_json
    // skip its own per-string checks.
    let text = std::str::from_utf8(payload).map_err(|e| not_utf8(payload, e))?;
    let mut grouper = Grouper::default();
    let mut fields = Fields::new();
    let mut labels = RawLabels::new();
    for (i, line) in text.split('\n').enumerate() {
        if line.bytes().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let invalid = |problem| DecodeError::invalid(Location::Line(i + 1), problem);
        parse_line(line, &mut fields, &mut labels).map_err(invalid)?;
        let entry = to_entry(&mut fields, limits, now_ns).map_err(invalid)?;
        let stream = grouper.stream_for(&mut labels, limits).map_err(invalid)?;
        grouper.set.push(stream, entry);
    }
    Ok(grouper.set.into_streams())
}

/// The error for a body that is not UTF-8, naming the line of the first bad byte and the
/// offset within that line.
fn not_utf8(payload: &[u8], whole: Utf8Error) -> DecodeError {
    let offset = whole.valid_up_to();
    let is_newline = |b: &u8| *b == b'\n';
    let start = payload[..offset]
        .iter()
        .rposition(is_newline)
        .map_or(0, |p| p + 1);
    let end = payload[offset..]
        .iter()
        .position(is_newline)
        .map_or(payload.len(), |p| offset + p);
    let line = payload[..start].iter().filter(|b| is_newline(b)).count() + 1;
    let within_line = std::str::from_utf8(&payload[start..end])
        .err()
        .unwrap_or(whole);
    DecodeError::invalid(Location::Line(line), Problem::LineNotUtf8(within_line))
}

/// Parses one line into `fields` and `labels` (both cleared first).
fn parse_line<'a>(
    line: &'a str,
    fields: &mut Fields<'a>,
    labels: &mut RawLabels<'a>,
) -> Result<(), Problem> {
    fields.clear();
    labels.clear();
    let mut de = serde_json::Deserializer::from_str(line);
    LineVisitor { fields, labels }
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| Problem::Json {
            column: e.column(),
            message: json_message(&e),
        })
}

/// The entry of a parsed line; drains `fields`.
fn to_entry(fields: &mut Fields<'_>, limits: &Limits, now_ns: i64) -> Result<Entry, Problem> {
    let ts_at = first_present(fields, &TIMESTAMP_KEYS);
    let msg_at = first_present(fields, &MESSAGE_KEYS).ok_or(Problem::NoMessage)?;
    let mut ts_ns = now_ns;
    let mut line = String::new();
    let mut metadata = Vec::with_capacity(fields.len() - 1 - usize::from(ts_at.is_some()));
    for (i, (key, value)) in fields.drain(..).enumerate() {
        if Some(i) == ts_at {
            ts_ns = timestamp::from_ndjson(&key, &value)?;
        } else if i == msg_at {
            let Scalar::Str(text) = value else {
                return Err(Problem::MessageNotString(clip(&key)));
            };
            line = text.into_owned();
        } else if !value.is_null() {
            let value = value.into_text();
            validate::metadata(&key, &value, limits)?;
            metadata.push((key.into_owned(), value));
        }
    }
    validate::entry(ts_ns, &line, limits, now_ns)?;
    Ok(Entry {
        ts_ns,
        line,
        metadata,
    })
}

/// The index of the first of `keys` (in priority order) present in `fields` with a non-null
/// value.
fn first_present(fields: &Fields<'_>, keys: &[&str]) -> Option<usize> {
    keys.iter().find_map(|key| {
        fields
            .iter()
            .position(|(k, v)| k.as_ref() == *key && !v.is_null())
    })
}

/// Maps raw label sets (as written, borrowed from the body) to streams, so a label set seen
/// before costs one comparison or one hash lookup, not validation and allocation.
#[derive(Default)]
struct Grouper<'a> {
    set: StreamSet,
    seen: HashMap<RawLabels<'a>, usize>,
    previous: Option<(RawLabels<'a>, usize)>,
}

impl<'a> Grouper<'a> {
    /// The stream index for `labels`; may take the vector's contents.
    fn stream_for(
        &mut self,
        labels: &mut RawLabels<'a>,
        limits: &Limits,
    ) -> Result<usize, Problem> {
        if let Some((previous, index)) = &self.previous
            && previous == labels
        {
            return Ok(*index);
        }
        let index = match self.seen.get(labels) {
            Some(&index) => index,
            None => self.add(labels.clone(), limits)?,
        };
        self.previous = Some((std::mem::take(labels), index));
        Ok(index)
    }

    fn add(&mut self, raw: RawLabels<'a>, limits: &Limits) -> Result<usize, Problem> {
        let owned = raw.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        let index = self
            .set
            .index_of(validate::stream_labels(owned.collect(), limits, false)?);
        self.seen.insert(raw, index);
        Ok(index)
    }
}

/// One line's object: `labels` goes to `labels`, every other key to `fields`.
struct LineVisitor<'b, 'a> {
    fields: &'b mut Fields<'a>,
    labels: &'b mut RawLabels<'a>,
}

impl<'a> DeserializeSeed<'a> for LineVisitor<'_, 'a> {
    type Value = ();

    fn deserialize<D: Deserializer<'a>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'a> Visitor<'a> for LineVisitor<'_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(CowStr(key)) = map.next_key()? {
            if key == "labels" {
                map.next_value_seed(LabelsVisitor(&mut *self.labels))?;
            } else {
                self.fields.push((key, map.next_value()?));
            }
        }
        Ok(())
    }
}

/// The `labels` object (`null` counts as empty); values must be strings.
struct LabelsVisitor<'b, 'a>(&'b mut RawLabels<'a>);

impl<'a> DeserializeSeed<'a> for LabelsVisitor<'_, 'a> {
    type Value = ();

    fn deserialize<D: Deserializer<'a>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'a> Visitor<'a> for LabelsVisitor<'_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"labels\" to be an object of label names to string values")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some((CowStr(name), CowStr(value))) = map.next_entry()? {
            self.0.push((name, value));
        }
        Ok(())
    }
}
