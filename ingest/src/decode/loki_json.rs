//! Loki's JSON push format, `{"streams":[{"stream":{..labels..},"values":[["<ns>","line"]]}]}`,
//! decoded in one streaming pass straight into validated entries: no `serde_json::Value`, and
//! per entry no allocation besides the line itself (and its metadata, when present).
//!
//! Lenient where clients differ: unknown keys anywhere are ignored, a timestamp may be a JSON
//! integer as well as a string, a third element of `null` means no metadata, elements after the
//! third are ignored, and metadata numbers and booleans are stored in their JSON spelling
//! (`"1.5"`, `"true"`); null, array and object metadata values are refused.
//!
//! Validation failures are raised from inside serde visitors. The typed error is parked in
//! [`Ctx::failure`] and a placeholder serde error unwinds the parse, so the caller gets a
//! located [`DecodeError::Invalid`] instead of serde_json's line and column.

use super::Limits;
use super::error::{DecodeError, Location, Problem, clip};
use super::json::{CowStr, Scalar};
use super::timestamp;
use super::validate::{self, StreamSet};
use logstream_bus::{Entry, Stream};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// Decodes a (decompressed, non-empty) JSON push body into validated streams.
pub(crate) fn decode(
    payload: &[u8],
    limits: &Limits,
    now_ns: i64,
) -> Result<Vec<Stream>, DecodeError> {
    let mut ctx = Ctx {
        limits,
        now_ns,
        failure: None,
        streams: StreamSet::default(),
    };
    let mut de = serde_json::Deserializer::from_slice(payload);
    let parsed = PushVisitor(&mut ctx)
        .deserialize(&mut de)
        .and_then(|()| de.end());
    match parsed {
        Ok(()) => Ok(ctx.streams.into_streams()),
        Err(e) => Err(ctx.failure.take().unwrap_or_else(|| DecodeError::json(e))),
    }
}

struct Ctx<'l> {
    limits: &'l Limits,
    now_ns: i64,
    /// The validation error that stopped the parse, if it was one.
    failure: Option<DecodeError>,
    streams: StreamSet,
}

impl Ctx<'_> {
    fn fail<E: de::Error>(&mut self, at: Location, problem: Problem) -> E {
        self.failure = Some(DecodeError::invalid(at, problem));
        E::custom("invalid entry")
    }
}

/// The top-level object; only `streams` is read.
struct PushVisitor<'c, 'l>(&'c mut Ctx<'l>);

impl<'de> DeserializeSeed<'de> for PushVisitor<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PushVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a push request object with \"streams\"")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<CowStr<'de>>()? {
            if key.0 == "streams" {
                map.next_value_seed(StreamsVisitor(&mut *self.0))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// The `streams` array (`null` counts as empty).
struct StreamsVisitor<'c, 'l>(&'c mut Ctx<'l>);

impl<'de> DeserializeSeed<'de> for StreamsVisitor<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StreamsVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of streams")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        while seq
            .next_element_seed(StreamVisitor {
                ctx: &mut *self.0,
                index,
            })?
            .is_some()
        {
            index += 1;
        }
        Ok(())
    }
}

/// One `{"stream": {...}, "values": [...]}` object.
struct StreamVisitor<'c, 'l> {
    ctx: &'c mut Ctx<'l>,
    index: usize,
}

impl<'de> DeserializeSeed<'de> for StreamVisitor<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for StreamVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a stream object with \"stream\" and \"values\"")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut labels: Option<Vec<(String, String)>> = None;
        let mut entries: Option<Vec<Entry>> = None;
        while let Some(key) = map.next_key::<CowStr<'de>>()? {
            match key.0.as_ref() {
                "stream" if labels.is_some() => return Err(de::Error::duplicate_field("stream")),
                "stream" => labels = Some(map.next_value::<LabelPairs>()?.0),
                "values" if entries.is_some() => return Err(de::Error::duplicate_field("values")),
                "values" => {
                    let seed = ValuesVisitor {
                        ctx: &mut *self.ctx,
                        stream: self.index,
                    };
                    entries = Some(map.next_value_seed(seed)?);
                }
                _ => drop(map.next_value::<IgnoredAny>()?),
            }
        }
        let entries = entries.unwrap_or_default();
        if entries.is_empty() {
            return Ok(());
        }
        let limits = self.ctx.limits;
        let labels = validate::stream_labels(labels.unwrap_or_default(), limits, true)
            .map_err(|p| self.ctx.fail(Location::Stream(self.index), p))?;
        self.ctx.streams.extend(labels, entries);
        Ok(())
    }
}

/// The `stream` object: label name to string value (`null` counts as empty).
struct LabelPairs(Vec<(String, String)>);

impl<'de> de::Deserialize<'de> for LabelPairs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LabelPairsVisitor)
    }
}

struct LabelPairsVisitor;

impl<'de> Visitor<'de> for LabelPairsVisitor {
    type Value = LabelPairs;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of label names to string values")
    }

    fn visit_unit<E: de::Error>(self) -> Result<LabelPairs, E> {
        Ok(LabelPairs(Vec::new()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LabelPairs, A::Error> {
        let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(4));
        while let Some(pair) = map.next_entry::<String, String>()? {
            pairs.push(pair);
        }
        Ok(LabelPairs(pairs))
    }
}

/// The `values` array of one stream.
struct ValuesVisitor<'c, 'l> {
    ctx: &'c mut Ctx<'l>,
    stream: usize,
}

impl<'de> DeserializeSeed<'de> for ValuesVisitor<'_, '_> {
    type Value = Vec<Entry>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Entry>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ValuesVisitor<'_, '_> {
    type Value = Vec<Entry>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of [timestamp, line] entries")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Entry>, A::Error> {
        let mut entries = Vec::new();
        loop {
            let at = Location::Value {
                stream: self.stream,
                value: entries.len(),
            };
            match seq.next_element_seed(EntryVisitor {
                ctx: &mut *self.ctx,
                at,
            })? {
                Some(entry) => entries.push(entry),
                None => return Ok(entries),
            }
        }
    }
}

/// One `["<ns>", "line", {metadata}]` entry.
struct EntryVisitor<'c, 'l> {
    ctx: &'c mut Ctx<'l>,
    at: Location,
}

impl<'de> DeserializeSeed<'de> for EntryVisitor<'_, '_> {
    type Value = Entry;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Entry, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for EntryVisitor<'_, '_> {
    type Value = Entry;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a [timestamp, line] or [timestamp, line, metadata] array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Entry, A::Error> {
        let (ctx, at) = (self.ctx, self.at);
        let Some(ts) = seq.next_element::<Scalar<'de>>()? else {
            return Err(ctx.fail(at, Problem::EntryShape(0)));
        };
        let Some(line) = seq.next_element::<String>()? else {
            return Err(ctx.fail(at, Problem::EntryShape(1)));
        };
        let metadata = seq.next_element_seed(MetadataVisitor { ctx: &mut *ctx, at })?;
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        let checked = timestamp::from_loki_json(&ts).and_then(|ts_ns| {
            validate::entry(ts_ns, &line, ctx.limits, ctx.now_ns).map(|()| ts_ns)
        });
        match checked {
            Ok(ts_ns) => Ok(Entry {
                ts_ns,
                line,
                metadata: metadata.unwrap_or_default(),
            }),
            Err(problem) => Err(ctx.fail(at, problem)),
        }
    }
}

/// An entry's structured metadata object (`null` counts as empty).
struct MetadataVisitor<'c, 'l> {
    ctx: &'c mut Ctx<'l>,
    at: Location,
}

impl<'de> DeserializeSeed<'de> for MetadataVisitor<'_, '_> {
    type Value = Vec<(String, String)>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MetadataVisitor<'_, '_> {
    type Value = Vec<(String, String)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of structured metadata")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut pairs = Vec::new();
        while let Some((name, value)) = map.next_entry::<String, Scalar<'de>>()? {
            let Some(value) = value.into_label_text() else {
                return Err(self.ctx.fail(self.at, Problem::MetadataType(clip(&name))));
            };
            if let Err(problem) = validate::metadata(&name, &value, self.ctx.limits) {
                return Err(self.ctx.fail(self.at, problem));
            }
            pairs.push((name, value));
        }
        Ok(pairs)
    }
}
