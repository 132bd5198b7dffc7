//! Parquet files: rows sorted by stream then time (long runs of one stream compress well and
//! let row-group statistics on `stream_id` skip streams a query does not select), zstd pages,
//! page-level statistics for pruning by time.

use crate::error::Result;
use crate::schema::{STREAM_ID, TIMESTAMP, schema};
use arrow::array::{AsArray, RecordBatch, UInt32Array};
use arrow::compute::{SortColumn, concat_batches, lexsort_to_indices, take_record_batch};
use arrow::datatypes::{TimestampNanosecondType, UInt64Type};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use std::sync::Arc;

/// Rows per row group: small enough that a needle query can skip most of a file, large enough
/// that per-group overhead stays negligible.
pub const ROW_GROUP_ROWS: usize = 64 * 1024;

/// Concatenates `batches` and sorts the rows by (stream, time, arrival). Arrival order breaks
/// ties so the result is the same on every run over the same input: a replayed flush writes
/// byte-identical files.
pub fn sort_rows(batches: &[RecordBatch]) -> Result<RecordBatch> {
    let all = concat_batches(&schema(), batches)?;
    let arrival = UInt32Array::from_iter_values(0..all.num_rows() as u32);
    let col = |name: &str| all.column_by_name(name).cloned();
    let (Some(stream), Some(ts)) = (col(STREAM_ID), col(TIMESTAMP)) else {
        return Ok(all);
    };
    let keys = [stream, ts, Arc::new(arrival)].map(|values| SortColumn {
        values,
        options: None,
    });
    let idx = lexsort_to_indices(&keys, None)?;
    Ok(take_record_batch(&all, &idx)?)
}

/// zstd level for every column. Chosen on the Loghub samples (`logstream bench`): level 6 gives
/// most of the gain of higher levels at a fraction of their cost; flushes run off the ingest path.
const ZSTD_LEVEL: i32 = 6;

fn writer_properties() -> WriterProperties {
    let level = ZstdLevel::try_new(ZSTD_LEVEL).unwrap_or_default();
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        // Sorted timestamps: deltas are tiny, a dictionary would only get in the way.
        .set_column_encoding(ColumnPath::from(TIMESTAMP), Encoding::DELTA_BINARY_PACKED)
        .set_column_dictionary_enabled(ColumnPath::from(TIMESTAMP), false)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_sorting_columns(Some(vec![
            SortingColumn {
                column_idx: 0,
                descending: false,
                nulls_first: false,
            },
            SortingColumn {
                column_idx: 2,
                descending: false,
                nulls_first: false,
            },
        ]))
        .set_created_by("logstream".into())
        .build()
}

/// Encodes sorted rows as one Parquet file.
pub fn encode(sorted: &RecordBatch) -> Result<Bytes> {
    let mut out = Vec::with_capacity(sorted.get_array_memory_size() / 4);
    let mut w = ArrowWriter::try_new(&mut out, schema(), Some(writer_properties()))?;
    w.write(sorted)?;
    w.close()?;
    Ok(Bytes::from(out))
}

/// Time range of a non-empty sorted batch.
pub fn time_range(batch: &RecordBatch) -> Option<(i64, i64)> {
    let ts = batch
        .column_by_name(TIMESTAMP)?
        .as_primitive::<TimestampNanosecondType>();
    let min = arrow::compute::min(ts)?;
    let max = arrow::compute::max(ts)?;
    Some((min, max))
}

/// Distinct stream ids of a batch sorted by stream.
pub fn stream_ids(sorted: &RecordBatch) -> Vec<u64> {
    let Some(col) = sorted.column_by_name(STREAM_ID) else {
        return Vec::new();
    };
    let mut ids: Vec<u64> = col.as_primitive::<UInt64Type>().values().to_vec();
    ids.dedup();
    ids
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::RowsBuilder;
    use logstream_bus::{Entry, Labels, Stream};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn batch(streams: &[(&str, &[i64])]) -> RecordBatch {
        let mut b = RowsBuilder::default();
        for (app, times) in streams {
            let labels = Labels::new(vec![("app".into(), app.to_string())]).unwrap();
            let s = Stream {
                labels: labels.clone(),
                entries: times
                    .iter()
                    .map(|t| Entry {
                        ts_ns: *t,
                        line: format!("{app} at {t}"),
                        metadata: vec![],
                    })
                    .collect(),
            };
            b.append_stream(labels.fingerprint(), &labels.to_string(), &s);
        }
        b.finish().unwrap()
    }

    #[test]
    fn rows_are_sorted_by_stream_then_time_and_encoding_is_deterministic() {
        let a = batch(&[("b", &[30, 10]), ("a", &[20])]);
        let b = batch(&[("b", &[20]), ("a", &[5])]);
        let sorted = sort_rows(&[a, b]).unwrap();
        let ids = sorted.column(0).as_primitive::<UInt64Type>();
        let ts = sorted.column(2).as_primitive::<TimestampNanosecondType>();
        for i in 1..sorted.num_rows() {
            let prev = (ids.value(i - 1), ts.value(i - 1));
            assert!(prev <= (ids.value(i), ts.value(i)), "row {i} out of order");
        }
        assert_eq!(stream_ids(&sorted).len(), 2);
        assert_eq!(time_range(&sorted), Some((5, 30)));
        let once = encode(&sorted).unwrap();
        let twice = encode(&sorted).unwrap();
        assert_eq!(once, twice, "the same rows must give the same bytes");

        let reader = ParquetRecordBatchReaderBuilder::try_new(once)
            .unwrap()
            .build()
            .unwrap();
        let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
        assert_eq!(rows, 5);
    }
}
