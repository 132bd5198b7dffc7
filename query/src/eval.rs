//! Metric queries: range functions over sliding windows and vector aggregations.
//!
//! A window at evaluation time `t` is `(t - offset - range, t - offset]`. The scan counts events
//! per series in buckets of width `gcd(step, range)` so that every window is a whole run of
//! buckets; prefix sums then give each step's window in O(1).
//!
//! A range aggregation's series are its streams, unless the vector aggregation right above
//! groups by names a row carries beyond its stream labels (parsed attributes, structured
//! metadata, `detected_level`): then the series are split by those per-row values, see
//! [`RowGrouping`].

use crate::error::{Error, Result};
use crate::exec::{BucketWindow, Buckets, Engine};
use crate::row_labels::RowGrouping;
use crate::select::{Selection, select_for};
use logstream_logql::{AggOp, Grouping, LogExpr, MetricExpr, RangeFunc};
use logstream_processor::Snapshot;
use std::collections::BTreeMap;

/// Loki's cap on points per series, with its advice.
pub const MAX_POINTS: i64 = 11_000;
const MAX_BUCKETS: i64 = 2_000_000;

/// A labelled series of (time ns, value) points, time ascending.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Vec<(String, String)>,
    pub points: Vec<(i64, f64)>,
}

/// Evaluation times: `start, start+step, ... <= end`; one point when `step` is 0.
#[derive(Debug, Clone, Copy)]
pub struct Steps {
    pub start_ns: i64,
    pub end_ns: i64,
    pub step_ns: i64,
}

impl Steps {
    fn count(&self) -> i64 {
        if self.step_ns == 0 {
            1
        } else {
            (self.end_ns - self.start_ns) / self.step_ns + 1
        }
    }
}

/// Evaluates a metric expression for `tenant` over `steps`.
pub async fn eval(
    engine: &Engine,
    snap: &[Snapshot],
    tenant: &str,
    expr: &MetricExpr,
    steps: Steps,
) -> Result<Vec<Series>> {
    let select = |log: &LogExpr, start_ns, end_ns| select_for(snap, tenant, log, start_ns, end_ns);
    eval_with(engine, &select, expr, steps).await
}

/// Picks what a log query reads in `[start_ns, end_ns]` (see [`select_for`]).
pub type Select<'a> = dyn Fn(&LogExpr, i64, i64) -> Selection + Sync + 'a;

/// [`eval`] with each log query's data picked by `select`.
pub async fn eval_with(
    engine: &Engine,
    select: &Select<'_>,
    expr: &MetricExpr,
    steps: Steps,
) -> Result<Vec<Series>> {
    if steps.count() > MAX_POINTS {
        return Err(Error::BadRequest(format!(
            "exceeded maximum resolution of {MAX_POINTS} points per timeseries. Try increasing the value of the step parameter"
        )));
    }
    let query = Query {
        engine,
        select,
        steps,
    };
    eval_under(&query, expr, None).await
}

/// What every level of one evaluation shares.
struct Query<'a> {
    engine: &'a Engine,
    select: &'a Select<'a>,
    steps: Steps,
}

/// Evaluates `expr` whose parent aggregation groups by `parent` (`None`: no grouping or no
/// parent); a range aggregation splits its series as that grouping needs.
async fn eval_under(
    q: &Query<'_>,
    expr: &MetricExpr,
    parent: Option<&Grouping>,
) -> Result<Vec<Series>> {
    match expr {
        MetricExpr::Range {
            func,
            log,
            range_ns,
            offset_ns,
        } => {
            let range = Window {
                func: *func,
                range_ns: *range_ns,
                offset_ns: *offset_ns,
            };
            range_series(q, log, range, parent).await
        }
        MetricExpr::Aggregate {
            op,
            grouping,
            inner,
        } => {
            let series = Box::pin(eval_under(q, inner, grouping.as_ref())).await?;
            Ok(aggregate(*op, grouping.as_ref(), series))
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Window {
    func: RangeFunc,
    range_ns: i64,
    offset_ns: i64,
}

async fn range_series(
    q: &Query<'_>,
    log: &LogExpr,
    w: Window,
    parent: Option<&Grouping>,
) -> Result<Vec<Series>> {
    let steps = q.steps;
    let width = if steps.step_ns == 0 {
        w.range_ns
    } else {
        gcd(steps.step_ns, w.range_ns)
    };
    let base = steps.start_ns - w.offset_ns - w.range_ns;
    let end = steps.end_ns - w.offset_ns;
    if (end - base) / width > MAX_BUCKETS {
        return Err(Error::BadRequest(
            "the step and the range share too small a common divisor; use a step that divides the range".into(),
        ));
    }
    let sel = (q.select)(log, base + 1, end);
    let grouping = RowGrouping::plan(parent, &sel.streams);
    let window = BucketWindow {
        base_ns: base,
        end_ns: end,
        width_ns: width,
    };
    let counts = q
        .engine
        .bucket_counts(&sel, &log.stages, window, &grouping)
        .await?;
    let mut out: Vec<Series> = counts
        .into_iter()
        .filter_map(|(labels, b)| {
            let points = windows(&b, w, steps, width);
            (!points.is_empty()).then_some(Series { labels, points })
        })
        .collect();
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(out)
}

/// The value of every step's window; steps whose window holds no event have no point.
fn windows(b: &Buckets, w: Window, steps: Steps, width: i64) -> Vec<(i64, f64)> {
    let n_buckets = ((steps.end_ns - steps.start_ns) + w.range_ns) / width + 1;
    let mut prefix = vec![(0.0, 0.0); n_buckets as usize + 1];
    for i in 0..n_buckets as usize {
        let (n, by) = b.counts.get(&(i as i64)).copied().unwrap_or((0.0, 0.0));
        prefix[i + 1] = (prefix[i].0 + n, prefix[i].1 + by);
    }
    let secs = w.range_ns as f64 / 1e9;
    let mut points = Vec::new();
    for k in 0..steps.count() {
        let lo = (k * steps.step_ns / width) as usize;
        let hi = ((k * steps.step_ns + w.range_ns) / width).min(n_buckets) as usize;
        let (n, bytes) = (prefix[hi].0 - prefix[lo].0, prefix[hi].1 - prefix[lo].1);
        if n == 0.0 {
            continue;
        }
        let v = match w.func {
            RangeFunc::CountOverTime => n,
            RangeFunc::Rate => n / secs,
            RangeFunc::BytesOverTime => bytes,
            RangeFunc::BytesRate => bytes / secs,
        };
        points.push((steps.start_ns + k * steps.step_ns, v));
    }
    points
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a.abs() } else { gcd(b, a % b) }
}

#[derive(Debug, Default, Clone, Copy)]
struct Acc {
    sum: f64,
    count: f64,
    min: f64,
    max: f64,
}

/// Combines series that share the grouping labels, point by point.
fn aggregate(op: AggOp, grouping: Option<&Grouping>, series: Vec<Series>) -> Vec<Series> {
    let mut groups: BTreeMap<Vec<(String, String)>, BTreeMap<i64, Acc>> = BTreeMap::new();
    for s in series {
        let key = group_key(&s.labels, grouping);
        let points = groups.entry(key).or_default();
        for (t, v) in s.points {
            let acc = points.entry(t).or_insert(Acc {
                sum: 0.0,
                count: 0.0,
                min: f64::INFINITY,
                max: f64::NEG_INFINITY,
            });
            acc.sum += v;
            acc.count += 1.0;
            acc.min = acc.min.min(v);
            acc.max = acc.max.max(v);
        }
    }
    groups
        .into_iter()
        .map(|(labels, points)| Series {
            labels,
            points: points
                .into_iter()
                .map(|(t, a)| {
                    let v = match op {
                        AggOp::Sum => a.sum,
                        AggOp::Count => a.count,
                        AggOp::Min => a.min,
                        AggOp::Max => a.max,
                        AggOp::Avg => a.sum / a.count,
                    };
                    (t, v)
                })
                .collect(),
        })
        .collect()
}

fn group_key(labels: &[(String, String)], grouping: Option<&Grouping>) -> Vec<(String, String)> {
    match grouping {
        None => Vec::new(),
        Some(g) if g.without => labels
            .iter()
            .filter(|(k, _)| !g.labels.contains(k))
            .cloned()
            .collect(),
        Some(g) => labels
            .iter()
            .filter(|(k, _)| g.labels.contains(k))
            .cloned()
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn buckets(pairs: &[(i64, f64)]) -> Buckets {
        Buckets {
            counts: pairs.iter().map(|(b, n)| (*b, (*n, *n * 10.0))).collect(),
        }
    }

    #[test]
    fn overlapping_windows_sum_the_right_buckets() {
        // step 10s, range 30s -> width 10s; base = start - 30s.
        let steps = Steps {
            start_ns: 100 * S,
            end_ns: 130 * S,
            step_ns: 10 * S,
        };
        let w = Window {
            func: RangeFunc::CountOverTime,
            range_ns: 30 * S,
            offset_ns: 0,
        };
        // Bucket 0 = (70s, 80s], 3 = (100s, 110s], 5 = (120s, 130s].
        let pts = windows(&buckets(&[(0, 1.0), (3, 2.0), (5, 4.0)]), w, steps, 10 * S);
        assert_eq!(
            pts,
            vec![
                (100 * S, 1.0),
                (110 * S, 2.0),
                (120 * S, 2.0),
                (130 * S, 6.0)
            ]
        );
    }

    #[test]
    fn rate_divides_by_the_range_in_seconds_and_empty_windows_have_no_point() {
        let steps = Steps {
            start_ns: 60 * S,
            end_ns: 180 * S,
            step_ns: 60 * S,
        };
        let w = Window {
            func: RangeFunc::Rate,
            range_ns: 60 * S,
            offset_ns: 0,
        };
        // Bucket 1 = (60s, 120s]: only the window ending at 120s holds it.
        let pts = windows(&buckets(&[(1, 30.0)]), w, steps, 60 * S);
        assert_eq!(pts, vec![(120 * S, 0.5)]);
        let w = Window {
            func: RangeFunc::BytesOverTime,
            ..w
        };
        assert_eq!(
            windows(&buckets(&[(1, 30.0)]), w, steps, 60 * S),
            vec![(120 * S, 300.0)]
        );
    }

    fn series(labels: &[(&str, &str)], points: &[(i64, f64)]) -> Series {
        Series {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            points: points.to_vec(),
        }
    }

    #[test]
    fn sum_by_groups_on_the_named_labels_only() {
        let input = vec![
            series(&[("app", "a"), ("pod", "1")], &[(1, 1.0), (2, 2.0)]),
            series(&[("app", "a"), ("pod", "2")], &[(2, 3.0)]),
            series(&[("app", "b"), ("pod", "1")], &[(1, 7.0)]),
        ];
        let by_app = Grouping {
            without: false,
            labels: vec!["app".into()],
        };
        let out = aggregate(AggOp::Sum, Some(&by_app), input.clone());
        assert_eq!(
            out,
            vec![
                series(&[("app", "a")], &[(1, 1.0), (2, 5.0)]),
                series(&[("app", "b")], &[(1, 7.0)]),
            ]
        );
        let total = aggregate(AggOp::Count, None, input.clone());
        assert_eq!(total, vec![series(&[], &[(1, 2.0), (2, 2.0)])]);
        let without_pod = Grouping {
            without: true,
            labels: vec!["pod".into()],
        };
        let max = aggregate(AggOp::Max, Some(&without_pod), input);
        assert_eq!(max[0], series(&[("app", "a")], &[(1, 1.0), (2, 3.0)]));
    }
}
