//! The Arrow schema of stored events, shared by the processor's in-memory buffer, the Parquet
//! files and the query engine, and the builder that fills it from bus streams.

use arrow::array::{
    Array, ArrayRef, MapBuilder, RecordBatch, StringBuilder, StringDictionaryBuilder,
    TimestampNanosecondBuilder, UInt64Builder,
};
use arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef, TimeUnit};
use logstream_bus::Stream;
use std::sync::{Arc, LazyLock};

pub const STREAM_ID: &str = "stream_id";
pub const LABELS: &str = "labels";
pub const TIMESTAMP: &str = "timestamp";
pub const LINE: &str = "line";
pub const METADATA: &str = "metadata";

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
    ]))
});

/// The schema: `stream_id` (fingerprint of the label set), `labels` (canonical `{a="b"}` form,
/// dictionary-encoded: one value per stream), `timestamp`, `line`, `metadata` (structured
/// metadata as a string map, null when a line has none).
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
    rows: usize,
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
            rows: 0,
        }
    }
}

impl RowsBuilder {
    /// Appends every entry of `stream` whose fingerprint is `id` and canonical form `labels`.
    pub fn append_stream(&mut self, id: u64, labels: &str, stream: &Stream) {
        for e in &stream.entries {
            self.stream_id.append_value(id);
            self.labels.append_value(labels);
            self.timestamp.append_value(e.ts_ns);
            self.line.append_value(&e.line);
            if e.metadata.is_empty() {
                // A null map; `append(false)` cannot fail for a map without pending entries.
                let _ = self.metadata.append(false);
            } else {
                for (k, v) in &e.metadata {
                    self.metadata.keys().append_value(k);
                    self.metadata.values().append_value(v);
                }
                let _ = self.metadata.append(true);
            }
        }
        self.rows += stream.entries.len();
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
        ];
        RecordBatch::try_new(schema(), cols)
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
