//! Events read from the bus and not yet committed to object storage, kept as Arrow batches so
//! queries scan them like a file and a flush sorts and encodes them without conversion.

use crate::error::Result;
use arrow::array::AsArray;
use arrow::array::RecordBatch;
use logstream_bus::codec::decode;
use logstream_bus::{Labels, Record};
use logstream_store::Manifest;
use logstream_store::schema::RowsBuilder;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// One tenant's rows from one read of the bus.
#[derive(Debug)]
pub struct TenantRows {
    pub batch: RecordBatch,
    pub streams: HashMap<u64, Labels>,
    pub line_bytes: u64,
    pub min_ts_ns: i64,
    pub max_ts_ns: i64,
    /// For each record that added rows: its offset and the end (exclusive) of its rows, so the
    /// chunk can be cut at a record boundary.
    pub record_rows: Vec<(u64, usize)>,
}

impl TenantRows {
    /// The rows of records at or past `offset`, or `None` when there are none.
    fn since_offset(&self, offset: u64) -> Option<Self> {
        let cut = self.record_rows.partition_point(|(o, _)| *o < offset);
        if cut == 0 {
            return Some(self.clone_all());
        }
        let start = self.record_rows[cut - 1].1;
        let len = self.batch.num_rows() - start;
        if cut == self.record_rows.len() || len == 0 {
            return None;
        }
        let batch = self.batch.slice(start, len);
        let line_bytes = batch
            .column_by_name(logstream_store::schema::LINE)
            .map(|c| {
                let o = c.as_string::<i32>().value_offsets();
                (o[o.len() - 1] - o[0]) as u64
            })
            .unwrap_or(0);
        Some(Self {
            batch,
            streams: self.streams.clone(),
            line_bytes,
            min_ts_ns: self.min_ts_ns,
            max_ts_ns: self.max_ts_ns,
            record_rows: self.record_rows[cut..]
                .iter()
                .map(|(o, end)| (*o, end - start))
                .collect(),
        })
    }

    fn clone_all(&self) -> Self {
        Self {
            batch: self.batch.clone(),
            streams: self.streams.clone(),
            line_bytes: self.line_bytes,
            min_ts_ns: self.min_ts_ns,
            max_ts_ns: self.max_ts_ns,
            record_rows: self.record_rows.clone(),
        }
    }
}

/// The rows of a contiguous range of bus offsets, by tenant.
#[derive(Debug)]
pub struct HotChunk {
    pub first_offset: u64,
    pub last_offset: u64,
    pub tenants: HashMap<String, TenantRows>,
    pub read_at: Instant,
}

impl HotChunk {
    /// Decodes bus records into rows. Records must be in offset order.
    pub fn from_records(records: &[Record]) -> Result<Option<Self>> {
        let (Some(first), Some(last)) = (records.first(), records.last()) else {
            return Ok(None);
        };
        let mut builders: HashMap<String, Builder> = HashMap::new();
        for record in records {
            let batch = decode(&record.payload)?;
            let b = builders.entry(batch.tenant).or_default();
            for stream in &batch.streams {
                b.add(stream);
            }
            if b.rows.len() > b.record_rows.last().map_or(0, |(_, end)| *end) {
                b.record_rows.push((record.offset, b.rows.len()));
            }
        }
        let mut tenants = HashMap::with_capacity(builders.len());
        for (tenant, b) in builders {
            if let Some(rows) = b.finish()? {
                tenants.insert(tenant, rows);
            }
        }
        Ok(Some(Self {
            first_offset: first.offset,
            last_offset: last.offset,
            tenants,
            read_at: Instant::now(),
        }))
    }

    /// The part of this chunk at or past `offset` (what a manifest at `offset` does not
    /// cover), or `None` when nothing remains.
    pub fn since_offset(&self, offset: u64) -> Option<Self> {
        if self.last_offset < offset {
            return None;
        }
        let tenants: HashMap<String, TenantRows> = self
            .tenants
            .iter()
            .filter_map(|(t, rows)| rows.since_offset(offset).map(|r| (t.clone(), r)))
            .collect();
        Some(Self {
            first_offset: self.first_offset.max(offset),
            last_offset: self.last_offset,
            tenants,
            read_at: self.read_at,
        })
    }

    pub fn line_bytes(&self) -> u64 {
        self.tenants.values().map(|t| t.line_bytes).sum()
    }
}

#[derive(Debug, Default)]
struct Builder {
    rows: RowsBuilder,
    streams: HashMap<u64, Labels>,
    line_bytes: u64,
    min_ts_ns: i64,
    max_ts_ns: i64,
    record_rows: Vec<(u64, usize)>,
}

impl Builder {
    fn add(&mut self, stream: &logstream_bus::Stream) {
        if stream.entries.is_empty() {
            return;
        }
        let id = stream.labels.fingerprint();
        let canonical = stream.labels.to_string();
        self.streams
            .entry(id)
            .or_insert_with(|| stream.labels.clone());
        if self.rows.is_empty() {
            self.min_ts_ns = i64::MAX;
            self.max_ts_ns = i64::MIN;
        }
        for e in &stream.entries {
            self.line_bytes += e.line.len() as u64;
            self.min_ts_ns = self.min_ts_ns.min(e.ts_ns);
            self.max_ts_ns = self.max_ts_ns.max(e.ts_ns);
        }
        self.rows.append_stream(id, &canonical, stream);
    }

    fn finish(self) -> Result<Option<TenantRows>> {
        if self.rows.is_empty() {
            return Ok(None);
        }
        Ok(Some(TenantRows {
            batch: self.rows.finish()?,
            streams: self.streams,
            line_bytes: self.line_bytes,
            min_ts_ns: self.min_ts_ns,
            max_ts_ns: self.max_ts_ns,
            record_rows: self.record_rows,
        }))
    }
}

/// What a query sees at one instant: the committed files and the chunks read since, with no
/// overlap between the two (a flush swaps both in one step).
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub manifest: Arc<Manifest>,
    pub hot: Arc<Vec<Arc<HotChunk>>>,
}

impl Snapshot {
    /// Hot rows of one tenant.
    pub fn hot_rows<'a>(&'a self, tenant: &'a str) -> impl Iterator<Item = &'a TenantRows> + 'a {
        self.hot.iter().filter_map(move |c| c.tenants.get(tenant))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logstream_bus::{Batch, Entry, Stream, codec};

    fn record(offset: u64, tenant: &str, lines: &[&str]) -> Record {
        let labels = Labels::new(vec![("app".into(), "a".into())]).unwrap();
        let batch = Batch {
            tenant: tenant.into(),
            streams: vec![Stream {
                labels,
                entries: lines
                    .iter()
                    .enumerate()
                    .map(|(i, l)| Entry {
                        ts_ns: offset as i64 * 100 + i as i64,
                        line: (*l).into(),
                        metadata: Vec::new(),
                    })
                    .collect(),
            }],
        };
        Record {
            offset,
            payload: codec::encode(&batch).unwrap(),
        }
    }

    fn lines(rows: &TenantRows) -> Vec<String> {
        let col = rows
            .batch
            .column_by_name(logstream_store::schema::LINE)
            .unwrap()
            .as_string::<i32>();
        col.iter()
            .map(|v| v.unwrap_or_default().to_string())
            .collect()
    }

    #[test]
    fn a_chunk_is_cut_at_record_boundaries() {
        // Offsets with gaps, as Kafka transaction markers leave them.
        let records = vec![
            record(10, "t", &["a1", "a2"]),
            record(12, "u", &["x"]),
            record(14, "t", &["b1", "b2", "b3"]),
            record(16, "t", &["c1"]),
        ];
        let chunk = HotChunk::from_records(&records).unwrap().unwrap();
        assert_eq!((chunk.first_offset, chunk.last_offset), (10, 16));
        assert_eq!(chunk.tenants["t"].batch.num_rows(), 6);

        let cut = chunk.since_offset(13).unwrap();
        assert_eq!(cut.first_offset, 13);
        assert_eq!(lines(&cut.tenants["t"]), ["b1", "b2", "b3", "c1"]);
        assert_eq!(cut.tenants["t"].line_bytes, 8);
        assert!(!cut.tenants.contains_key("u"), "tenant u ended before 13");

        let cut = chunk.since_offset(16).unwrap();
        assert_eq!(lines(&cut.tenants["t"]), ["c1"]);
        // Cutting again composes.
        let again = chunk.since_offset(13).unwrap().since_offset(16).unwrap();
        assert_eq!(lines(&again.tenants["t"]), ["c1"]);

        assert!(chunk.since_offset(17).is_none());
        let all = chunk.since_offset(0).unwrap();
        assert_eq!(all.tenants["t"].batch.num_rows(), 6);
        assert_eq!(all.tenants["u"].batch.num_rows(), 1);
    }
}
