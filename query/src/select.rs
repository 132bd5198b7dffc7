//! Picking what a query must read: the committed files of the tenant that overlap the time
//! range and hold a selected stream, and the hot rows likewise. Label matching happens here,
//! once per stream, so the scan filters rows by stream id only.

use arrow::array::RecordBatch;
use datafusion::arrow;
use logstream_bus::Labels;
use logstream_logql::{LogExpr, Matcher, matches_labels};
use logstream_processor::Snapshot;
use logstream_store::FileMeta;
use std::collections::HashMap;

/// What a query reads.
#[derive(Debug, Default)]
pub struct Selection {
    pub files: Vec<FileMeta>,
    pub hot: Vec<RecordBatch>,
    /// Selected streams by id.
    pub streams: HashMap<u64, Labels>,
}

impl Selection {
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.hot.is_empty()
    }
}

/// Selects the data of `tenant` in `[start_ns, end_ns]` whose streams match `matchers` (all
/// streams when `matchers` is empty).
pub fn select(
    snap: &[Snapshot],
    tenant: &str,
    matchers: &[Matcher],
    start_ns: i64,
    end_ns: i64,
) -> Selection {
    let mut verdicts: HashMap<u64, bool> = HashMap::new();
    let mut sel = Selection::default();
    let mut take =
        |streams: &mut dyn Iterator<Item = (u64, &Labels)>, sel: &mut Selection| -> bool {
            let mut any = false;
            for (id, labels) in streams {
                let yes = *verdicts
                    .entry(id)
                    .or_insert_with(|| matchers.is_empty() || matches_labels(matchers, labels));
                if yes {
                    any = true;
                    sel.streams.entry(id).or_insert_with(|| labels.clone());
                }
            }
            any
        };
    for f in snap
        .iter()
        .flat_map(|s| s.manifest.files_overlapping(tenant, start_ns, end_ns))
    {
        let mut it = f.streams.iter().map(|l| (l.fingerprint(), l));
        if take(&mut it, &mut sel) {
            sel.files.push(f.clone());
        }
    }
    for rows in snap.iter().flat_map(|s| s.hot_rows(tenant)) {
        if rows.max_ts_ns < start_ns || rows.min_ts_ns > end_ns {
            continue;
        }
        let mut it = rows.streams.iter().map(|(id, l)| (*id, l));
        if take(&mut it, &mut sel) {
            sel.hot.push(rows.batch.clone());
        }
    }
    sel
}

/// What the log query `log` reads of `tenant` in `[start_ns, end_ns]`: its selector's streams,
/// less those its label filters rule out by their stream labels alone.
pub fn select_for(
    snap: &[Snapshot],
    tenant: &str,
    log: &LogExpr,
    start_ns: i64,
    end_ns: i64,
) -> Selection {
    let mut sel = select(snap, tenant, &log.matchers, start_ns, end_ns);
    crate::row_labels::prune(&mut sel, log);
    sel
}
