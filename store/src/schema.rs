//! The Arrow schema of stored events, shared by the processor's in-memory buffer, the Parquet
//! files and the query engine, and the builder that fills it from bus streams.

use arrow::array::{
    Array, ArrayRef, BooleanBuilder, MapBuilder, RecordBatch, StringBuilder,
    StringDictionaryBuilder, TimestampNanosecondBuilder, UInt64Builder,
};
use arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef, TimeUnit};
use logstream_bus::Stream;
use std::borrow::Cow;
use std::sync::{Arc, LazyLock};

pub const STREAM_ID: &str = "stream_id";
pub const LABELS: &str = "labels";
pub const TIMESTAMP: &str = "timestamp";
pub const LINE: &str = "line";
pub const METADATA: &str = "metadata";
/// Fields a tenant's LogPipeline parsed out of the line (after dropping and redacting), as a
/// string map; null when no pipeline applied. A rule that failed on the line leaves
/// `__error__` (and `__error_details__`) here, as Loki's parsers do.
pub const ATTRIBUTES: &str = "attributes";
/// The event's severity, normalised to `trace`, `debug`, `info`, `warn`, `error` or `fatal`;
/// null when unknown.
pub const LEVEL: &str = "level";
/// `<name>@<generation>` of the LogPipeline that processed the row; null when none did.
pub const PIPELINE: &str = "pipeline";
/// Whether `timestamp` was read from the line by a pipeline (true) or is the time the event
/// arrived with (false).
pub const TIME_PARSED: &str = "time_parsed";

/// The columns added after the first release: files written before lack them, and readers
/// take them as null.
pub const LATER_COLUMNS: [&str; 4] = [ATTRIBUTES, LEVEL, PIPELINE, TIME_PARSED];

fn metadata_type() -> DataType {
    // Taken from the builder itself so the declared type can never drift from what it builds.
    let map = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new()).finish();
    Array::data_type(&map).clone()
}

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new(STREAM_ID, DataType::UInt64, false),
        Field::new(
            LABELS,
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            false,
        ),
        Field::new(
            TIMESTAMP,
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            false,
        ),
        Field::new(LINE, DataType::Utf8, false),
        Field::new(METADATA, metadata_type(), true),
        Field::new(ATTRIBUTES, metadata_type(), true),
        Field::new(
            LEVEL,
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            true,
        ),
        Field::new(
            PIPELINE,
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            true,
        ),
        Field::new(TIME_PARSED, DataType::Boolean, true),
    ]))
});

/// The schema: `stream_id` (fingerprint of the label set), `labels` (canonical `{a="b"}` form,
/// dictionary-encoded: one value per stream), `timestamp`, `line`, `metadata` (structured
/// metadata as a string map, null when a line has none), then what a LogPipeline made of the
/// line: `attributes`, `level`, `pipeline`, `time_parsed`.
pub fn schema() -> SchemaRef {
    SCHEMA.clone()
}

/// Accumulates rows in schema order.
pub struct RowsBuilder {
    stream_id: UInt64Builder,
    labels: StringDictionaryBuilder<Int32Type>,
    timestamp: TimestampNanosecondBuilder,
    line: StringBuilder,
    metadata: MapBuilder<StringBuilder, StringBuilder>,
    attributes: MapBuilder<StringBuilder, StringBuilder>,
    level: StringDictionaryBuilder<Int32Type>,
    pipeline: StringDictionaryBuilder<Int32Type>,
    time_parsed: BooleanBuilder,
    rows: usize,
}

/// What a LogPipeline made of one event (see [`RowsBuilder::append_entry`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Processed<'a> {
    /// Parsed fields in the order they are stored; `None` stores a null map.
    pub attributes: Option<&'a [(Cow<'a, str>, Cow<'a, str>)]>,
    pub level: Option<&'a str>,
    pub pipeline: Option<&'a str>,
    pub time_parsed: bool,
}

impl std::fmt::Debug for RowsBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowsBuilder")
            .field("rows", &self.rows)
            .finish()
    }
}

impl Default for RowsBuilder {
    fn default() -> Self {
        Self {
            stream_id: UInt64Builder::new(),
            labels: StringDictionaryBuilder::new(),
            timestamp: TimestampNanosecondBuilder::new().with_timezone("UTC"),
            line: StringBuilder::new(),
            metadata: MapBuilder::new(None, StringBuilder::new(), StringBuilder::new()),
            attributes: MapBuilder::new(None, StringBuilder::new(), StringBuilder::new()),
            level: StringDictionaryBuilder::new(),
            pipeline: StringDictionaryBuilder::new(),
            time_parsed: BooleanBuilder::new(),
            rows: 0,
        }
    }
}

impl RowsBuilder {
    /// Appends every entry of `stream` whose fingerprint is `id` and canonical form `labels`,
    /// as no pipeline processed them.
    pub fn append_stream(&mut self, id: u64, labels: &str, stream: &Stream) {
        for e in &stream.entries {
            self.append_entry(
                id,
                labels,
                e.ts_ns,
                &e.line,
                &e.metadata,
                Processed::default(),
            );
        }
    }

    /// Appends one row.
    pub fn append_entry(
        &mut self,
        id: u64,
        labels: &str,
        ts_ns: i64,
        line: &str,
        metadata: &[(String, String)],
        processed: Processed<'_>,
    ) {
        self.stream_id.append_value(id);
        self.labels.append_value(labels);
        self.timestamp.append_value(ts_ns);
        self.line.append_value(line);
        append_map(
            &mut self.metadata,
            (!metadata.is_empty()).then_some(metadata),
        );
        append_map(&mut self.attributes, processed.attributes);
        self.level.append_option(processed.level);
        self.pipeline.append_option(processed.pipeline);
        self.time_parsed.append_value(processed.time_parsed);
        self.rows += 1;
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    pub fn finish(mut self) -> arrow::error::Result<RecordBatch> {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.stream_id.finish()),
            Arc::new(self.labels.finish()),
            Arc::new(self.timestamp.finish()),
            Arc::new(self.line.finish()),
            Arc::new(self.metadata.finish()),
            Arc::new(self.attributes.finish()),
            Arc::new(self.level.finish()),
            Arc::new(self.pipeline.finish()),
            Arc::new(self.time_parsed.finish()),
        ];
        RecordBatch::try_new(schema(), cols)
    }
}

/// Appends a map, or a null for `None`; `append` cannot fail once keys and values are in.
fn append_map<K: AsRef<str>, V: AsRef<str>>(
    b: &mut MapBuilder<StringBuilder, StringBuilder>,
    pairs: Option<&[(K, V)]>,
) {
    match pairs {
        None => {
            let _ = b.append(false);
        }
        Some(pairs) => {
            for (k, v) in pairs {
                b.keys().append_value(k.as_ref());
                b.values().append_value(v.as_ref());
            }
            let _ = b.append(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use logstream_bus::{Entry, Labels};

    #[test]
    fn builder_fills_every_column_and_matches_the_schema() {
        let labels = Labels::new(vec![("app".into(), "api".into())]).unwrap();
        let stream = Stream {
            labels: labels.clone(),
            entries: vec![
                Entry {
                    ts_ns: 5,
                    line: "one".into(),
                    metadata: vec![],
                },
                Entry {
                    ts_ns: 6,
                    line: "two".into(),
                    metadata: vec![("trace_id".into(), "abc".into())],
                },
            ],
        };
        let mut b = RowsBuilder::default();
        b.append_stream(labels.fingerprint(), &labels.to_string(), &stream);
        let batch = b.finish().unwrap();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.schema(), schema());
        let lines = batch.column(3).as_string::<i32>();
        assert_eq!(lines.value(1), "two");
        let meta = batch.column(4);
        assert!(meta.is_null(0));
        assert!(!meta.is_null(1));
    }
}
