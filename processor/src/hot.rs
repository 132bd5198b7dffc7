//! Events read from the bus and not yet committed to object storage, kept as Arrow batches so
//! queries scan them like a file and a flush sorts and encodes them without conversion.

use crate::error::Result;
use arrow::array::RecordBatch;
use logstream_bus::Labels;
use logstream_bus::wal::decode;
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
    /// Decodes bus records (offset, payload) into rows. Records must be consecutive.
    pub fn from_records(records: &[(u64, Vec<u8>)]) -> Result<Option<Self>> {
        let (Some(first), Some(last)) = (records.first(), records.last()) else {
            return Ok(None);
        };
        let mut builders: HashMap<String, Builder> = HashMap::new();
        for (_, payload) in records {
            let batch = decode(payload)?;
            let b = builders.entry(batch.tenant).or_default();
            for stream in &batch.streams {
                b.add(stream);
            }
        }
        let mut tenants = HashMap::with_capacity(builders.len());
        for (tenant, b) in builders {
            if let Some(rows) = b.finish()? {
                tenants.insert(tenant, rows);
            }
        }
        Ok(Some(Self {
            first_offset: first.0,
            last_offset: last.0,
            tenants,
            read_at: Instant::now(),
        }))
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
