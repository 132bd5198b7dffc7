//! One flush: the hot chunks of an offset range become sorted Parquet files, one per tenant,
//! retention class and hour, committed through the manifest (intent, files, commit).

use crate::error::{Error, Result};
use crate::hot::HotChunk;
use crate::metrics::ProcessorMetrics;
use arrow::array::{AsArray, BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::datatypes::TimestampNanosecondType;
use bytes::Bytes;
use logstream_bus::Labels;
use logstream_store::manifest::{ORIGIN_MARK_TTL_S, OriginMark};
use logstream_store::schema::TIMESTAMP;
use logstream_store::{FileMeta, Manifest, ObjectPath, OffsetRange, Store, layout, parquet};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

/// A file ready to upload.
struct Encoded {
    key: String,
    bytes: Bytes,
    meta: FileMeta,
}

/// Writes `chunks` (consecutive, covering `range`) and returns the committed manifest.
pub(crate) async fn flush(
    store: &Store,
    base: &Manifest,
    chunks: Vec<Arc<HotChunk>>,
    range: OffsetRange,
    class: &str,
    retention: &logstream_store::RetentionPolicy,
    metrics: &ProcessorMetrics,
) -> Result<Manifest> {
    let started = Instant::now();
    // 1. Intent: a restart redoes exactly this range.
    let mut manifest = base.clone();
    manifest.pending = Some(range);
    manifest.save(store).await?;

    let chunks_marks: Vec<(String, (u64, u32))> = chunks
        .iter()
        .flat_map(|c| c.marks.iter().cloned())
        .collect();
    // 2. Files. Sorting and encoding are CPU work: keep them off the async workers.
    let source = base.source.clone();
    let class = class.to_string();
    let files = tokio::task::spawn_blocking(move || encode_all(&chunks, range, &source, &class))
        .await
        .map_err(|e| Error::Task(e.to_string()))??;
    for f in &files {
        store
            .put(&ObjectPath::from(f.key.as_str()), f.bytes.clone())
            .await?;
        metrics.files_written.inc();
        metrics.parquet_bytes.inc_by(f.bytes.len() as u64);
        metrics.line_bytes_flushed.inc_by(f.meta.line_bytes);
    }

    // 3. Commit, with the senders' marks as of the range's end.
    let now = chrono::Utc::now();
    manifest.pending = None;
    manifest.next_offset = range.last + 1;
    manifest.files.extend(files.into_iter().map(|f| f.meta));
    for (source, (seq, part)) in chunks_marks {
        manifest.origins.insert(
            source,
            OriginMark {
                seq,
                part,
                seen_s: now.timestamp(),
            },
        );
    }
    manifest
        .origins
        .retain(|_, m| now.timestamp() - m.seen_s <= ORIGIN_MARK_TTL_S);
    // Forget files retention has expired (the sweeper or lifecycle rules delete the objects).
    manifest.files.retain(|f| {
        logstream_store::retention::cutoff_ns(retention, &f.tenant, &f.class, now)
            .is_none_or(|cut| f.max_ts_ns >= cut)
    });
    manifest.save(store).await?;
    metrics.flushes.inc();
    metrics
        .flush_seconds
        .observe(started.elapsed().as_secs_f64());
    Ok(manifest)
}

fn encode_all(
    chunks: &[Arc<HotChunk>],
    range: OffsetRange,
    source: &str,
    class: &str,
) -> Result<Vec<Encoded>> {
    // Tenants and classes in sorted order so the work (and any error) is the same on every
    // replay. Events no route selected go to the processor's class.
    type Rows<'c> = (Vec<RecordBatch>, HashMap<u64, &'c Labels>);
    let mut by_key: BTreeMap<(&str, &str), Rows<'_>> = BTreeMap::new();
    for chunk in chunks {
        for (key, rows) in &chunk.tenants {
            let routed = if key.class == crate::pipeline::plan::DEFAULT_CLASS {
                class
            } else {
                key.class.as_str()
            };
            let e = by_key.entry((key.tenant.as_str(), routed)).or_default();
            e.0.push(rows.batch.clone());
            e.1.extend(rows.streams.iter().map(|(id, l)| (*id, l)));
        }
    }
    let mut out = Vec::new();
    for ((tenant, class), (batches, streams)) in by_key {
        let sorted = parquet::sort_rows(&batches)?;
        for (hour, rows) in split_by_hour(&sorted)? {
            out.push(encode_one(
                tenant, class, hour, &rows, &streams, source, range,
            )?);
        }
    }
    Ok(out)
}

/// Splits sorted rows by the UTC hour of their timestamp, keeping the order within each hour.
fn split_by_hour(sorted: &RecordBatch) -> Result<Vec<(i64, RecordBatch)>> {
    let Some(col) = sorted.column_by_name(TIMESTAMP) else {
        return Ok(Vec::new());
    };
    let hours: Vec<i64> = col
        .as_primitive::<TimestampNanosecondType>()
        .values()
        .iter()
        .map(|t| layout::hour_start(*t))
        .collect();
    let mut distinct = hours.clone();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() == 1 {
        return Ok(vec![(distinct[0], sorted.clone())]);
    }
    distinct
        .into_iter()
        .map(|h| {
            let mask = BooleanArray::from_iter(hours.iter().map(|x| Some(*x == h)));
            Ok((h, filter_record_batch(sorted, &mask)?))
        })
        .collect()
}

fn encode_one(
    tenant: &str,
    class: &str,
    hour: i64,
    rows: &RecordBatch,
    streams: &HashMap<u64, &Labels>,
    source: &str,
    range: OffsetRange,
) -> Result<Encoded> {
    let bytes = parquet::encode(rows)?;
    let key = layout::data_key(tenant, class, hour, source, range.first, range.last).to_string();
    let (min_ts_ns, max_ts_ns) = parquet::time_range(rows).unwrap_or((hour, hour));
    let file_streams = parquet::stream_ids(rows)
        .into_iter()
        .filter_map(|id| streams.get(&id).map(|l| (*l).clone()))
        .collect();
    let line_bytes = rows
        .column_by_name(logstream_store::schema::LINE)
        .map(|c| {
            let offsets = c.as_string::<i32>().value_offsets();
            (offsets[offsets.len() - 1] - offsets[0]) as u64
        })
        .unwrap_or(0);
    Ok(Encoded {
        meta: FileMeta {
            key: key.clone(),
            tenant: tenant.to_string(),
            class: class.to_string(),
            min_ts_ns,
            max_ts_ns,
            rows: rows.num_rows() as u64,
            size_bytes: bytes.len() as u64,
            line_bytes,
            offsets: range,
            streams: file_streams,
        },
        key,
        bytes,
    })
}
