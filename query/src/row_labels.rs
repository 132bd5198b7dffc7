//! Names a row resolves at query time, for label filters and for grouping metric queries.
//!
//! A name resolves to the stream label of the row's stream if the stream has one; else, for
//! `detected_level`, the normalised `level` column; else the key in `attributes` (what the
//! tenant's LogPipeline parsed); else the key in `metadata` (structured metadata sent with the
//! push); else nothing, which label filters read as `""`.
//!
//! Stream labels are constant per stream, so whatever depends only on them is decided once per
//! stream here (pruning streams, and with them whole files, or becoming a `stream_id IN (...)`
//! test); the rest becomes DataFusion expressions over the map columns, evaluated in the scan.

use crate::select::Selection;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, MapArray, RecordBatch};
use datafusion::arrow::compute::cast as cast_array;
use datafusion::arrow::datatypes::DataType;
use datafusion::functions::core::expr_fn::{coalesce, get_field};
use datafusion::functions::regex::expr_fn::regexp_like;
use datafusion::logical_expr::{Expr, cast, col, lit, not, try_cast};
use logstream_bus::Labels;
use logstream_logql::{CmpOp, Grouping, LabelFilter, LogExpr, MatchOp, Matcher, NumberFilter};
use logstream_store::schema::{ATTRIBUTES, LEVEL, METADATA, STREAM_ID};
use std::collections::{BTreeMap, HashMap};

/// The name under which the `level` column is read.
pub const DETECTED_LEVEL: &str = "detected_level";

/// What `filter` decides from a stream's labels alone: `None` when it depends on a name the
/// stream does not have (and so on each row).
pub fn stream_verdict(filter: &LabelFilter, labels: &Labels) -> Option<bool> {
    match filter {
        LabelFilter::Match(m) => labels.get(&m.name).map(|v| m.matches(v)),
        LabelFilter::Number(n) => labels.get(&n.name).map(|v| n.matches(Some(v))),
        LabelFilter::And(l, r) => match (stream_verdict(l, labels), stream_verdict(r, labels)) {
            (Some(false), _) | (_, Some(false)) => Some(false),
            (Some(true), Some(true)) => Some(true),
            _ => None,
        },
        LabelFilter::Or(l, r) => match (stream_verdict(l, labels), stream_verdict(r, labels)) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (Some(false), Some(false)) => Some(false),
            _ => None,
        },
    }
}

/// Drops from `sel` the streams that no row can pass, as their labels decide, and the files
/// left without a selected stream.
pub fn prune(sel: &mut Selection, log: &LogExpr) {
    let filters: Vec<&LabelFilter> = log.label_filters().collect();
    if filters.is_empty() {
        return;
    }
    sel.streams.retain(|_, labels| {
        filters
            .iter()
            .all(|f| stream_verdict(f, labels) != Some(false))
    });
    let streams = &sel.streams;
    sel.files.retain(|f| {
        f.streams
            .iter()
            .any(|l| streams.contains_key(&l.fingerprint()))
    });
}

/// The scan predicate of one label filter stage over the selected `streams`.
pub fn filter_expr(filter: &LabelFilter, streams: &HashMap<u64, Labels>) -> Expr {
    match filter {
        LabelFilter::And(l, r) => filter_expr(l, streams).and(filter_expr(r, streams)),
        LabelFilter::Or(l, r) => filter_expr(l, streams).or(filter_expr(r, streams)),
        LabelFilter::Match(m) => per_stream(&m.name, streams, |v| m.matches(v), match_row(m)),
        LabelFilter::Number(n) => {
            per_stream(&n.name, streams, |v| n.matches(Some(v)), number_row(n))
        }
    }
}

/// One condition on `name`: decided per stream where the stream has the label (`passes`),
/// by `row` on the rows of the other streams.
fn per_stream(
    name: &str,
    streams: &HashMap<u64, Labels>,
    passes: impl Fn(&str) -> bool,
    row: Expr,
) -> Expr {
    let mut ids: Vec<(&u64, &Labels)> = streams.iter().collect();
    // Sorted so the same query over the same streams plans the same expression.
    ids.sort_unstable_by_key(|(id, _)| **id);
    let (mut passing, mut lacking, mut holding) = (Vec::new(), Vec::new(), 0);
    for (id, labels) in ids {
        match labels.get(name) {
            Some(v) => {
                holding += 1;
                if passes(v) {
                    passing.push(lit(*id));
                }
            }
            None => lacking.push(lit(*id)),
        }
    }
    if holding == 0 {
        return row;
    }
    let by_stream = if passing.len() == holding && lacking.is_empty() {
        lit(true)
    } else if passing.is_empty() {
        lit(false)
    } else {
        col(STREAM_ID).in_list(passing, false)
    };
    if lacking.is_empty() {
        return by_stream;
    }
    by_stream.or(col(STREAM_ID).in_list(lacking, false).and(row))
}

/// The value of `name` on a row from its own columns, stream labels aside; null when none has it.
pub fn row_value(name: &str) -> Expr {
    let mut sources = Vec::with_capacity(3);
    if name == DETECTED_LEVEL {
        sources.push(cast(col(LEVEL), DataType::Utf8));
    }
    sources.push(get_field(col(ATTRIBUTES), name));
    sources.push(get_field(col(METADATA), name));
    coalesce(sources)
}

fn match_row(m: &Matcher) -> Expr {
    // A missing name is `""`, so `x=""` keeps rows without `x` and `x!=""` drops them.
    let value = coalesce(vec![row_value(&m.name), lit("")]);
    let regex = || lit(m.anchored_regex().unwrap_or_default().to_owned());
    match m.op {
        MatchOp::Eq => value.eq(lit(m.value.clone())),
        MatchOp::Neq => value.not_eq(lit(m.value.clone())),
        MatchOp::Re => regexp_like(value, regex(), None),
        MatchOp::Nre => not(regexp_like(value, regex(), None)),
    }
}

/// Null (so the row fails) when the value is missing or does not read as a number.
fn number_row(n: &NumberFilter) -> Expr {
    let value = try_cast(row_value(&n.name), DataType::Float64);
    let number = lit(n.value);
    match n.op {
        CmpOp::Eq => value.eq(number),
        CmpOp::Neq => value.not_eq(number),
        CmpOp::Gt => value.gt(number),
        CmpOp::Gte => value.gt_eq(number),
        CmpOp::Lt => value.lt(number),
        CmpOp::Lte => value.lt_eq(number),
    }
}

/// How the series of a range aggregation are split beyond their stream, decided by the
/// aggregation right above it: `by (names)` needs those names per row, `without (names)` every
/// name a row has but those; anything else (no grouping, or no aggregation) splits by stream
/// only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowGrouping {
    /// One series per stream, labelled with the stream's labels.
    Stream,
    /// Also by these names, read per row for the streams that lack them as labels.
    By(Vec<String>),
    /// Also by every name a row has, except these.
    Without(Vec<String>),
}

impl RowGrouping {
    /// The grouping a range aggregation needs under `parent`, for the selected `streams`.
    pub fn plan(parent: Option<&Grouping>, streams: &HashMap<u64, Labels>) -> Self {
        let Some(g) = parent else {
            return RowGrouping::Stream;
        };
        if g.without {
            return RowGrouping::Without(g.labels.clone());
        }
        let mut names: Vec<String> = Vec::new();
        for name in &g.labels {
            let some_lack = streams.values().any(|l| l.get(name).is_none());
            if some_lack && !names.contains(name) {
                names.push(name.clone());
            }
        }
        if names.is_empty() {
            RowGrouping::Stream
        } else {
            RowGrouping::By(names)
        }
    }

    /// The group-by columns a scan adds after `stream_id` and the time bucket.
    pub fn columns(&self) -> Vec<Expr> {
        match self {
            RowGrouping::Stream => Vec::new(),
            RowGrouping::By(names) => names
                .iter()
                .enumerate()
                .map(|(i, name)| row_value(name).alias(format!("by_{i}")))
                .collect(),
            RowGrouping::Without(_) => vec![
                cast(col(LEVEL), DataType::Utf8).alias("row_level"),
                col(ATTRIBUTES).alias("row_attributes"),
                col(METADATA).alias("row_metadata"),
            ],
        }
    }

    /// Reads the names of aggregated rows of `batch`, whose [`Self::columns`] start at column
    /// `first`.
    pub fn reader(&self, batch: &RecordBatch, first: usize) -> datafusion::error::Result<Reader> {
        let n = match self {
            RowGrouping::Stream => 0,
            RowGrouping::By(names) => names.len(),
            RowGrouping::Without(_) => 3,
        };
        let columns = (first..first + n)
            .map(|i| {
                let column = batch.column(i);
                match column.data_type() {
                    DataType::Map(..) => Ok(column.clone()),
                    _ => cast_array(column, &DataType::Utf8),
                }
            })
            .collect::<datafusion::error::Result<_, _>>()?;
        Ok(Reader {
            grouping: self.clone(),
            columns,
        })
    }
}

/// The grouping columns of one batch of aggregated rows, as strings and string maps.
#[derive(Debug)]
pub struct Reader {
    grouping: RowGrouping,
    columns: Vec<ArrayRef>,
}

impl Reader {
    /// The names `row` adds to its stream's labels: those the stream does not have, with a
    /// non-empty value, sorted by name. Empty (and not allocated) for [`RowGrouping::Stream`].
    pub fn extra_labels(&self, stream: &Labels, row: usize) -> Vec<(String, String)> {
        // In order of precedence: the first value of a name is kept.
        let candidates: Vec<(&str, Option<&str>)> = match &self.grouping {
            RowGrouping::Stream => return Vec::new(),
            RowGrouping::By(names) => names
                .iter()
                .zip(&self.columns)
                .map(|(name, column)| (name.as_str(), string_at(column, row)))
                .collect(),
            RowGrouping::Without(excluded) => {
                let mut all = vec![(DETECTED_LEVEL, string_at(&self.columns[0], row))];
                for column in &self.columns[1..] {
                    all.extend(
                        map_entries(column, row)
                            .into_iter()
                            .map(|(k, v)| (k, Some(v))),
                    );
                }
                all.retain(|(name, _)| !excluded.iter().any(|e| e == name));
                all
            }
        };
        let mut out: BTreeMap<&str, &str> = BTreeMap::new();
        for (name, value) in candidates {
            if let Some(value) = value.filter(|v| !v.is_empty())
                && stream.get(name).is_none()
            {
                out.entry(name).or_insert(value);
            }
        }
        out.into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }
}

/// The labels of a series: its stream's and `extra` (names the stream does not have), sorted.
pub fn series_labels(stream: &Labels, extra: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = stream
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .chain(extra)
        .collect();
    out.sort_unstable();
    out
}

/// A Utf8 column's value at `row`.
fn string_at(column: &ArrayRef, row: usize) -> Option<&str> {
    let strings = column.as_string_opt::<i32>()?;
    (!strings.is_null(row)).then(|| strings.value(row))
}

/// The entries of a string map at `row`, in stored order; none when the map is null.
fn map_entries(column: &ArrayRef, row: usize) -> Vec<(&str, &str)> {
    let Some(map) = column.as_any().downcast_ref::<MapArray>() else {
        return Vec::new();
    };
    if map.is_null(row) {
        return Vec::new();
    }
    let offsets = map.value_offsets();
    let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
    let (Some(keys), Some(values)) = (
        map.keys().as_string_opt::<i32>(),
        map.values().as_string_opt::<i32>(),
    ) else {
        return Vec::new();
    };
    (start..end)
        .filter(|i| !values.is_null(*i))
        .map(|i| (keys.value(i), values.value(i)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;
    use logstream_logql::{Expr as Query, parse};
    use logstream_store::schema::{Processed, RowsBuilder};
    use std::borrow::Cow;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
        .unwrap()
    }

    fn filter(stage: &str) -> LabelFilter {
        let Ok(Query::Log(log)) = parse(&format!(r#"{{a="b"}} | {stage}"#)) else {
            panic!("{stage}");
        };
        log.label_filters().next().cloned().unwrap()
    }

    fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn stream_labels_decide_what_they_can() {
        let web = labels(&[("app", "web"), ("env", "prod")]);
        let cases = [
            (r#"app="web""#, Some(true)),
            (r#"app!="web""#, Some(false)),
            (r#"status="500""#, None),
            (r#"app="api" and status="500""#, Some(false)),
            (r#"app="web" and status="500""#, None),
            (r#"app="web" or status="500""#, Some(true)),
            (r#"app="api" or status="500""#, None),
            (r#"(app="api" or env="prod"), app=~"w.*""#, Some(true)),
            ("app > 1", Some(false)),
        ];
        for (stage, want) in cases {
            assert_eq!(stream_verdict(&filter(stage), &web), want, "{stage}");
        }
    }

    #[test]
    fn conditions_on_labels_every_stream_has_read_no_row_column() {
        let streams: HashMap<u64, Labels> = [labels(&[("app", "web")]), labels(&[("app", "api")])]
            .into_iter()
            .map(|l| (l.fingerprint(), l))
            .collect();
        let web = labels(&[("app", "web")]).fingerprint();
        let expr = filter_expr(&filter(r#"app="web""#), &streams);
        assert_eq!(expr, col(STREAM_ID).in_list(vec![lit(web)], false));
        assert_eq!(filter_expr(&filter(r#"app=~".+""#), &streams), lit(true));
        assert_eq!(filter_expr(&filter("app > 0"), &streams), lit(false));
        let row = filter_expr(&filter(r#"status="500""#), &streams).to_string();
        assert!(
            row.contains("attributes") && row.contains("metadata"),
            "{row}"
        );
        assert!(!row.contains(STREAM_ID), "{row}");
    }

    #[test]
    fn groupings_read_per_row_only_names_some_stream_lacks() {
        let streams: HashMap<u64, Labels> = [labels(&[("app", "web"), ("status", "200")])]
            .into_iter()
            .map(|l| (l.fingerprint(), l))
            .collect();
        let g = |without: bool, names: &[&str]| Grouping {
            without,
            labels: names.iter().map(|n| n.to_string()).collect(),
        };
        assert_eq!(RowGrouping::plan(None, &streams), RowGrouping::Stream);
        assert_eq!(
            RowGrouping::plan(Some(&g(false, &["app", "status"])), &streams),
            RowGrouping::Stream
        );
        assert_eq!(
            RowGrouping::plan(Some(&g(false, &["app", "path", "path"])), &streams),
            RowGrouping::By(vec!["path".into()])
        );
        assert_eq!(
            RowGrouping::plan(Some(&g(true, &["app"])), &streams),
            RowGrouping::Without(vec!["app".into()])
        );
    }

    /// Lines of the rows of `batch` that pass `stage`, through the expression the scan uses.
    async fn passing(
        batch: RecordBatch,
        streams: &HashMap<u64, Labels>,
        stage: &str,
    ) -> Vec<String> {
        let ctx = SessionContext::new();
        let df = ctx.read_batch(batch).unwrap();
        let out = df
            .filter(filter_expr(&filter(stage), streams))
            .unwrap()
            .select(vec![col(logstream_store::schema::LINE)])
            .unwrap()
            .collect()
            .await
            .unwrap();
        out.iter()
            .flat_map(|b| {
                let lines = cast_array(b.column(0), &DataType::Utf8).unwrap();
                let lines = lines.as_string::<i32>();
                (0..lines.len())
                    .map(|i| lines.value(i).to_owned())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[tokio::test]
    async fn rows_resolve_labels_then_attributes_then_metadata() {
        let plain = labels(&[("app", "web")]);
        let tagged = labels(&[("app", "web"), ("status", "200")]);
        let mut b = RowsBuilder::default();
        let mut add = |stream: &Labels,
                       line: &str,
                       meta: &[(&str, &str)],
                       attrs: Option<&[(&str, &str)]>,
                       level| {
            let attrs: Option<Vec<_>> = attrs.map(|pairs| {
                pairs
                    .iter()
                    .map(|(k, v)| (Cow::Borrowed(*k), Cow::Borrowed(*v)))
                    .collect()
            });
            let processed = Processed {
                attributes: attrs.as_deref(),
                level,
                pipeline: None,
                time_parsed: false,
            };
            b.append_entry(
                stream.fingerprint(),
                &stream.to_string(),
                1,
                line,
                &owned(meta),
                processed,
            );
        };
        add(
            &plain,
            "attr",
            &[("status", "404")],
            Some(&[("status", "500")]),
            Some("error"),
        );
        add(&plain, "meta", &[("status", "503")], None, None);
        add(&plain, "none", &[], Some(&[]), Some("info"));
        add(
            &tagged,
            "label",
            &[("status", "500")],
            Some(&[("status", "501")]),
            None,
        );
        let batch = b.finish().unwrap();
        let streams: HashMap<u64, Labels> = [plain, tagged]
            .into_iter()
            .map(|l| (l.fingerprint(), l))
            .collect();
        let cases: [(&str, &[&str]); 9] = [
            (r#"status="500""#, &["attr"]),
            (r#"status="404""#, &[]),
            (r#"status="503""#, &["meta"]),
            (r#"status="200""#, &["label"]),
            (r#"status="""#, &["none"]),
            ("status >= 500", &["attr", "meta"]),
            (r#"status=~"5..""#, &["attr", "meta"]),
            (r#"status=~"5.""#, &[]),
            (r#"detected_level!~"error|info""#, &["meta", "label"]),
        ];
        for (stage, want) in cases {
            assert_eq!(
                passing(batch.clone(), &streams, stage).await,
                want,
                "{stage}"
            );
        }
    }
}
