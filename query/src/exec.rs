//! Executing LogQL with DataFusion: a selection becomes one scan (Parquet files unioned with
//! hot rows) with the stream, time, line and label filters pushed into it; log queries sort and
//! limit there, metric queries count per series and time bucket there, and the sliding windows
//! and vector aggregations are finished here over those small per-bucket counts.

use crate::error::{Error, Result};
use crate::params::Direction;
use crate::row_labels::{RowGrouping, filter_expr, series_labels};
use crate::select::Selection;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Int64Type, TimestampNanosecondType, UInt64Type};
use datafusion::common::ScalarValue;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::functions::expr_fn::{contains, octet_length};
use datafusion::functions::regex::expr_fn::regexp_like;
use datafusion::functions_aggregate::expr_fn::{count, sum};
use datafusion::logical_expr::{Expr, cast, col, lit, not};
use datafusion::prelude::{DataFrame, ParquetReadOptions, SessionConfig, SessionContext};
use logstream_logql::{FilterOp, LineFilter, Stage};
use logstream_store::Store;
use logstream_store::schema::{LABELS, LINE, STREAM_ID, TIMESTAMP, schema};
use std::collections::HashMap;

const STORE_URL: &str = "logstream://store/";

/// One stream of a log query result, values in result order.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamResult {
    pub labels: String,
    pub values: Vec<(i64, String)>,
}

/// Per series, events and line bytes per time bucket.
#[derive(Debug, Default)]
pub struct Buckets {
    pub counts: HashMap<i64, (f64, f64)>,
}

/// A series' labels, sorted by name.
pub type SeriesLabels = Vec<(String, String)>;

/// Runs scans over one store.
#[derive(Clone)]
pub struct Engine {
    ctx: SessionContext,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("session", &self.ctx.session_id())
            .finish()
    }
}

impl Engine {
    pub fn new(store: &Store) -> Result<Self> {
        let mut config = SessionConfig::new().with_target_partitions(2);
        let opts = config.options_mut();
        // Late materialisation: decode `line` only for rows that pass the cheap filters.
        opts.execution.parquet.pushdown_filters = true;
        opts.execution.parquet.reorder_filters = true;
        let ctx = SessionContext::new_with_config(config);
        let url = ObjectStoreUrl::parse(STORE_URL)?;
        ctx.register_object_store(url.as_ref(), store.object_store());
        Ok(Self { ctx })
    }

    /// The scan of a selection with its stream, time and pipeline filters, or `None` when it
    /// is empty.
    async fn scan(
        &self,
        sel: &Selection,
        start_ns: i64,
        end_ns: i64,
        stages: &[Stage],
    ) -> Result<Option<DataFrame>> {
        let mut df: Option<DataFrame> = None;
        if !sel.files.is_empty() {
            let paths: Vec<String> = sel
                .files
                .iter()
                .map(|f| format!("{STORE_URL}{}", f.key))
                .collect();
            let schema = schema();
            let opts = ParquetReadOptions::default().schema(&schema);
            df = Some(self.ctx.read_parquet(paths, opts).await?);
        }
        if !sel.hot.is_empty() {
            let hot = self.ctx.read_batches(sel.hot.iter().cloned())?;
            df = Some(match df {
                Some(d) => d.union(hot)?,
                None => hot,
            });
        }
        let Some(df) = df else { return Ok(None) };
        let ids: Vec<Expr> = sel.streams.keys().map(|id| lit(*id)).collect();
        let mut pred = col(STREAM_ID)
            .in_list(ids, false)
            .and(col(TIMESTAMP).gt_eq(ts_lit(start_ns)))
            .and(col(TIMESTAMP).lt_eq(ts_lit(end_ns)));
        // Separate conjuncts, so the Parquet reader can still evaluate the ones over plain
        // columns while decoding (those over the map columns run right after the scan).
        for stage in stages {
            pred = pred.and(match stage {
                Stage::Line(f) => line_filter(f),
                Stage::Label(f) => filter_expr(f, &sel.streams),
            });
        }
        Ok(Some(df.filter(pred)?))
    }

    /// Lines in `[start_ns, end_ns]`, at most `limit`, newest first for `Backward`.
    pub async fn log_lines(
        &self,
        sel: &Selection,
        stages: &[Stage],
        start_ns: i64,
        end_ns: i64,
        limit: usize,
        direction: Direction,
    ) -> Result<Vec<StreamResult>> {
        let Some(df) = self.scan(sel, start_ns, end_ns, stages).await? else {
            return Ok(Vec::new());
        };
        let asc = direction == Direction::Forward;
        let batches = df
            .select(vec![col(LABELS), col(TIMESTAMP), col(LINE)])?
            .sort(vec![col(TIMESTAMP).sort(asc, false)])?
            .limit(0, Some(limit))?
            .collect()
            .await?;
        group_streams(&batches)
    }

    /// Counts and line bytes per series and bucket, where bucket `b` holds the events with
    /// `base_ns + b*width_ns < ts <= base_ns + (b+1)*width_ns`, for ts in `(base_ns, end_ns]`.
    /// A series is a stream, split further as `grouping` says.
    pub async fn bucket_counts(
        &self,
        sel: &Selection,
        stages: &[Stage],
        window: BucketWindow,
        grouping: &RowGrouping,
    ) -> Result<Vec<(SeriesLabels, Buckets)>> {
        let BucketWindow {
            base_ns,
            end_ns,
            width_ns,
        } = window;
        let Some(df) = self.scan(sel, base_ns + 1, end_ns, stages).await? else {
            return Ok(Vec::new());
        };
        let bucket = (cast(col(TIMESTAMP), DataType::Int64) - lit(base_ns + 1)) / lit(width_ns);
        let mut keys = vec![col(STREAM_ID), bucket.alias("bucket")];
        keys.extend(grouping.columns());
        let n_keys = keys.len();
        let batches = df
            .aggregate(
                keys,
                vec![
                    count(lit(1)).alias("n"),
                    sum(octet_length(col(LINE))).alias("bytes"),
                ],
            )?
            .collect()
            .await?;
        // Keyed by stream and the names the grouping adds, which cannot collide across
        // streams; rows that differ only in what the grouping ignores share a key.
        let mut series: HashMap<(u64, SeriesLabels), Buckets> = HashMap::new();
        for b in &batches {
            let ids = b.column(0).as_primitive::<UInt64Type>();
            let buckets = b.column(1).as_primitive::<Int64Type>();
            let names = grouping.reader(b, 2)?;
            let n = b.column(n_keys).as_primitive::<Int64Type>();
            let bytes = b.column(n_keys + 1);
            for i in 0..b.num_rows() {
                let id = ids.value(i);
                let Some(stream) = sel.streams.get(&id) else {
                    continue;
                };
                let extra = names.extra_labels(stream, i);
                let cell = series
                    .entry((id, extra))
                    .or_default()
                    .counts
                    .entry(buckets.value(i))
                    .or_insert((0.0, 0.0));
                cell.0 += n.value(i) as f64;
                cell.1 += numeric(bytes.as_ref(), i);
            }
        }
        Ok(series
            .into_iter()
            .filter_map(|((id, extra), b)| {
                let stream = sel.streams.get(&id)?;
                Some((series_labels(stream, extra), b))
            })
            .collect())
    }
}

/// The buckets a metric scan counts in: `width_ns` wide from `base_ns` (exclusive) up to
/// `end_ns` (inclusive).
#[derive(Debug, Clone, Copy)]
pub struct BucketWindow {
    pub base_ns: i64,
    pub end_ns: i64,
    pub width_ns: i64,
}

fn numeric(a: &dyn Array, i: usize) -> f64 {
    if a.is_null(i) {
        return 0.0;
    }
    match a.data_type() {
        DataType::Int64 => a.as_primitive::<Int64Type>().value(i) as f64,
        DataType::Int32 => a
            .as_primitive::<datafusion::arrow::datatypes::Int32Type>()
            .value(i) as f64,
        DataType::UInt64 => a.as_primitive::<UInt64Type>().value(i) as f64,
        _ => 0.0,
    }
}

fn ts_lit(ns: i64) -> Expr {
    lit(ScalarValue::TimestampNanosecond(
        Some(ns),
        Some("UTC".into()),
    ))
}

fn line_filter(f: &LineFilter) -> Expr {
    let line = col(LINE);
    match f.op {
        FilterOp::Contains => contains(line, lit(f.value.clone())),
        FilterOp::NotContains => not(contains(line, lit(f.value.clone()))),
        FilterOp::Match => regexp_like(line, lit(f.value.clone()), None),
        FilterOp::NotMatch => not(regexp_like(line, lit(f.value.clone()), None)),
    }
}

/// Groups sorted rows (labels, timestamp, line) into streams, keeping row order in each.
fn group_streams(batches: &[RecordBatch]) -> Result<Vec<StreamResult>> {
    let mut order: Vec<StreamResult> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for b in batches {
        let labels = datafusion::arrow::compute::cast(b.column(0), &DataType::Utf8)?;
        let labels = labels.as_string::<i32>();
        let ts = b.column(1).as_primitive::<TimestampNanosecondType>();
        let lines = b.column(2).as_string::<i32>();
        for i in 0..b.num_rows() {
            let l = labels.value(i);
            let at = match index.get(l) {
                Some(at) => *at,
                None => {
                    index.insert(l.to_string(), order.len());
                    order.push(StreamResult {
                        labels: l.to_string(),
                        values: Vec::new(),
                    });
                    order.len() - 1
                }
            };
            order[at]
                .values
                .push((ts.value(i), lines.value(i).to_string()));
        }
    }
    Ok(order)
}

impl From<datafusion::arrow::error::ArrowError> for Error {
    fn from(e: datafusion::arrow::error::ArrowError) -> Self {
        Error::Internal(e.to_string())
    }
}
