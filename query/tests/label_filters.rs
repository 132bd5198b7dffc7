//! Label filters and per-row grouping run by the engine over hot rows, Parquet files of the
//! current schema and a Parquet file written before `attributes`/`level` existed, all in one
//! query: which rows pass, in which order, and how metric series are split.

use datafusion::arrow::array::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use logstream_bus::Labels;
use logstream_logql::{Expr, LogExpr, MetricExpr, matches_labels, parse};
use logstream_query::Engine;
use logstream_query::eval::{Series, Steps, eval_with};
use logstream_query::exec::StreamResult;
use logstream_query::params::Direction;
use logstream_query::row_labels::prune;
use logstream_query::select::Selection;
use logstream_store::schema::{Processed, RowsBuilder};
use logstream_store::{FileMeta, ObjectPath, OffsetRange, Store};
use std::borrow::Cow;
use std::collections::HashMap;

const SEC: i64 = 1_000_000_000;
const T0: i64 = 1_700_000_000 * SEC;

/// One stored row: stream, seconds after `T0`, line, metadata, attributes, level.
struct Row {
    stream: &'static Labels,
    at_s: i64,
    line: &'static str,
    metadata: &'static [(&'static str, &'static str)],
    attributes: Option<&'static [(&'static str, &'static str)]>,
    level: Option<&'static str>,
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::new(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
    .expect("unique names")
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn batch(rows: &[Row]) -> RecordBatch {
    let mut b = RowsBuilder::default();
    for r in rows {
        let attributes: Option<Vec<_>> = r.attributes.map(|pairs| {
            pairs
                .iter()
                .map(|(k, v)| (Cow::Borrowed(*k), Cow::Borrowed(*v)))
                .collect()
        });
        let processed = Processed {
            attributes: attributes.as_deref(),
            level: r.level,
            pipeline: r.attributes.map(|_| "web@1"),
            time_parsed: false,
        };
        b.append_entry(
            r.stream.fingerprint(),
            &r.stream.to_string(),
            T0 + r.at_s * SEC,
            r.line,
            &owned(r.metadata),
            processed,
        );
    }
    b.finish().expect("rows match the schema")
}

/// The stored data of one test: hot rows and committed files of one tenant.
struct Fixture {
    _dir: tempfile::TempDir,
    engine: Engine,
    files: Vec<FileMeta>,
    hot: Vec<RecordBatch>,
    streams: Vec<Labels>,
}

impl Fixture {
    fn new(streams: &[&Labels]) -> (Self, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::local(dir.path()).expect("local store");
        let engine = Engine::new(&store).expect("engine");
        let fixture = Self {
            _dir: dir,
            engine,
            files: Vec::new(),
            hot: Vec::new(),
            streams: streams.iter().map(|l| (*l).clone()).collect(),
        };
        (fixture, store)
    }

    fn with_hot(mut self, rows: &[Row]) -> Self {
        self.hot.push(batch(rows));
        self
    }

    /// Commits `rows` as a Parquet file; `old_schema` writes only the first five columns, as
    /// files written before the pipeline columns existed.
    async fn with_file(
        mut self,
        store: &Store,
        name: &str,
        rows: &[Row],
        old_schema: bool,
    ) -> Self {
        let sorted = logstream_store::parquet::sort_rows(&[batch(rows)]).expect("sort");
        let bytes = if old_schema {
            let old = sorted
                .project(&[0, 1, 2, 3, 4])
                .expect("first five columns");
            assert_eq!(old.schema().fields().len(), 5);
            let mut out = Vec::new();
            let mut w = ArrowWriter::try_new(&mut out, old.schema(), None).expect("writer");
            w.write(&old).expect("write");
            w.close().expect("close");
            out.into()
        } else {
            logstream_store::parquet::encode(&sorted).expect("encode")
        };
        let key = format!("data/t/default/{name}.parquet");
        let size_bytes = bytes.len() as u64;
        store
            .put(&ObjectPath::from(key.as_str()), bytes)
            .await
            .expect("put");
        let mut streams: Vec<Labels> = rows.iter().map(|r| r.stream.clone()).collect();
        streams.sort();
        streams.dedup();
        self.files.push(FileMeta {
            key,
            tenant: "t".into(),
            class: "default".into(),
            min_ts_ns: rows.iter().map(|r| T0 + r.at_s * SEC).min().unwrap_or(T0),
            max_ts_ns: rows.iter().map(|r| T0 + r.at_s * SEC).max().unwrap_or(T0),
            rows: rows.len() as u64,
            size_bytes,
            line_bytes: rows.iter().map(|r| r.line.len() as u64).sum(),
            offsets: OffsetRange { first: 0, last: 0 },
            streams,
        });
        self
    }

    /// What `log` reads, picked the way the service picks it: streams by selector, files by
    /// stream, then label filters prune by stream labels.
    fn select(&self, log: &LogExpr) -> Selection {
        let streams: HashMap<u64, Labels> = self
            .streams
            .iter()
            .filter(|l| matches_labels(&log.matchers, l))
            .map(|l| (l.fingerprint(), l.clone()))
            .collect();
        let files = self
            .files
            .iter()
            .filter(|f| {
                f.streams
                    .iter()
                    .any(|l| streams.contains_key(&l.fingerprint()))
            })
            .cloned()
            .collect();
        let mut sel = Selection {
            files,
            hot: self.hot.clone(),
            streams,
        };
        prune(&mut sel, log);
        sel
    }

    async fn log(&self, query: &str, limit: usize, direction: Direction) -> Vec<StreamResult> {
        let Ok(Expr::Log(log)) = parse(query) else {
            panic!("not a log query: {query}");
        };
        let sel = self.select(&log);
        self.engine
            .log_lines(
                &sel,
                &log.stages,
                T0 - SEC,
                T0 + 3600 * SEC,
                limit,
                direction,
            )
            .await
            .unwrap_or_else(|e| panic!("{query}: {e}"))
    }

    /// The lines of a forward log query, oldest first.
    async fn lines(&self, query: &str) -> Vec<String> {
        let mut rows: Vec<(i64, String)> = self
            .log(query, 1000, Direction::Forward)
            .await
            .into_iter()
            .flat_map(|s| s.values)
            .collect();
        rows.sort();
        rows.into_iter().map(|(_, l)| l).collect()
    }

    /// The one value of each series of an instant metric query at `T0 + 1h`.
    async fn instant(&self, query: &str) -> Vec<(Vec<(String, String)>, f64)> {
        let Ok(Expr::Metric(m)) = parse(query) else {
            panic!("not a metric query: {query}");
        };
        let series = self.metric(&m, T0 + 3600 * SEC).await;
        series
            .into_iter()
            .map(|s| {
                assert_eq!(s.points.len(), 1, "{query}: {s:?}");
                (s.labels, s.points[0].1)
            })
            .collect()
    }

    async fn metric(&self, m: &MetricExpr, at_ns: i64) -> Vec<Series> {
        let select = |log: &LogExpr, _: i64, _: i64| self.select(log);
        let steps = Steps {
            start_ns: at_ns,
            end_ns: at_ns,
            step_ns: 0,
        };
        eval_with(&self.engine, &select, m, steps)
            .await
            .unwrap_or_else(|e| panic!("{m}: {e}"))
    }
}

fn series(pairs: &[(&str, &str)], value: f64) -> (Vec<(String, String)>, f64) {
    (owned(pairs), value)
}

static WEB: std::sync::LazyLock<Labels> =
    std::sync::LazyLock::new(|| labels(&[("app", "web"), ("env", "prod")]));
/// A stream that carries `status` as a stream label: it wins over the rows' own `status`.
static WEB_DEV: std::sync::LazyLock<Labels> =
    std::sync::LazyLock::new(|| labels(&[("app", "web"), ("env", "dev"), ("status", "200")]));
static API: std::sync::LazyLock<Labels> = std::sync::LazyLock::new(|| labels(&[("app", "api")]));

fn hot_rows() -> Vec<Row> {
    vec![
        Row {
            stream: &WEB,
            at_s: 1,
            line: "GET /a 500",
            metadata: &[("trace_id", "t1")],
            attributes: Some(&[("status", "500"), ("path", "/a")]),
            level: Some("error"),
        },
        Row {
            stream: &WEB,
            at_s: 2,
            line: "GET /b 200",
            metadata: &[],
            attributes: Some(&[("status", "200"), ("path", "/b")]),
            level: Some("info"),
        },
        Row {
            // No pipeline ran: `status` comes from structured metadata.
            stream: &WEB,
            at_s: 3,
            line: "GET /c 503",
            metadata: &[("status", "503")],
            attributes: None,
            level: None,
        },
        Row {
            // Attributes win over metadata, and "oops" is no number.
            stream: &WEB,
            at_s: 4,
            line: "GET /d oops",
            metadata: &[("status", "504")],
            attributes: Some(&[("status", "oops")]),
            level: None,
        },
        Row {
            stream: &WEB_DEV,
            at_s: 5,
            line: "dev 500",
            metadata: &[],
            attributes: Some(&[("status", "500")]),
            level: None,
        },
        Row {
            // `detected_level` is the level column, not the metadata key of that name.
            stream: &API,
            at_s: 6,
            line: "api broken",
            metadata: &[("detected_level", "debug")],
            attributes: Some(&[("__error__", "JSONParserErr")]),
            level: Some("warn"),
        },
    ]
}

fn new_file_rows() -> Vec<Row> {
    vec![
        Row {
            stream: &WEB,
            at_s: 7,
            line: "GET /e 502",
            metadata: &[],
            attributes: Some(&[("status", "502"), ("path", "/e")]),
            level: Some("error"),
        },
        Row {
            stream: &API,
            at_s: 8,
            line: "api ok",
            metadata: &[("trace_id", "t2")],
            attributes: Some(&[]),
            level: Some("info"),
        },
    ]
}

/// Written before the pipeline columns: only metadata can answer.
fn old_file_rows() -> Vec<Row> {
    vec![
        Row {
            stream: &WEB,
            at_s: 9,
            line: "old 500",
            metadata: &[("status", "500")],
            attributes: None,
            level: None,
        },
        Row {
            stream: &API,
            at_s: 10,
            line: "old api",
            metadata: &[("detected_level", "debug")],
            attributes: None,
            level: None,
        },
    ]
}

async fn everything() -> Fixture {
    let (f, store) = Fixture::new(&[&WEB, &WEB_DEV, &API]);
    f.with_hot(&hot_rows())
        .with_file(&store, "new", &new_file_rows(), false)
        .await
        .with_file(&store, "old", &old_file_rows(), true)
        .await
}

#[tokio::test]
async fn names_resolve_to_stream_labels_then_attributes_then_metadata() {
    let f = everything().await;
    assert_eq!(
        f.lines(r#"{app="web"} | status >= 500"#).await,
        ["GET /a 500", "GET /c 503", "GET /e 502", "old 500"],
        "attributes, then metadata (hot and old file); the dev stream's label says 200"
    );
    assert_eq!(
        f.lines(r#"{app=~".+"} | status="200""#).await,
        ["GET /b 200", "dev 500"]
    );
    assert_eq!(
        f.lines(r#"{app=~".+"} | status="500""#).await,
        ["GET /a 500", "old 500"]
    );
    assert_eq!(
        f.lines(r#"{app="web"} | status="504""#).await,
        Vec::<String>::new(),
        "metadata is not consulted when attributes have the name"
    );
    assert_eq!(
        f.lines(r#"{app="web"} | env="dev""#).await,
        ["dev 500"],
        "a condition on stream labels alone"
    );
}

#[tokio::test]
async fn missing_names_are_empty() {
    let f = everything().await;
    assert_eq!(
        f.lines(r#"{app=~".+"} | status="""#).await,
        ["api broken", "api ok", "old api"]
    );
    assert_eq!(f.lines(r#"{app=~".+"} | status!="""#).await.len(), 7);
    assert_eq!(
        f.lines(r#"{app=~".+"} | trace_id!="""#).await,
        ["GET /a 500", "api ok"]
    );
    assert_eq!(
        f.lines(r#"{app=~".+"} | __error__!="""#).await,
        ["api broken"]
    );
    assert_eq!(f.lines(r#"{app=~".+"} | __error__="""#).await.len(), 9);
}

#[tokio::test]
async fn detected_level_reads_the_level_column_first() {
    let f = everything().await;
    assert_eq!(
        f.lines(r#"{app=~".+"} | detected_level="error""#).await,
        ["GET /a 500", "GET /e 502"]
    );
    assert_eq!(
        f.lines(r#"{app="api"} | detected_level=~"warn|debug""#)
            .await,
        ["api broken", "old api"],
        "the old file has no level column: its metadata answers"
    );
    assert_eq!(
        f.lines(r#"{app="web"} | level="error""#).await,
        Vec::<String>::new(),
        "`level` is an ordinary name; only `detected_level` reads the column"
    );
}

#[tokio::test]
async fn numeric_comparisons_need_numbers() {
    let f = everything().await;
    assert_eq!(
        f.lines(r#"{app="web"} | status != 500"#).await,
        ["GET /b 200", "GET /c 503", "dev 500", "GET /e 502"],
        "no status or not a number fails even `!=`"
    );
    assert_eq!(
        f.lines(r#"{app="web", env="prod"} | status > 200 | status < 503"#)
            .await,
        ["GET /a 500", "GET /e 502", "old 500"]
    );
    assert_eq!(
        f.lines(r#"{app="web"} | status == 200.0"#).await,
        ["GET /b 200", "dev 500"]
    );
}

#[tokio::test]
async fn regexes_are_anchored_and_filters_combine() {
    let f = everything().await;
    assert_eq!(f.lines(r#"{app="web"} | path=~"/a""#).await, ["GET /a 500"]);
    assert_eq!(
        f.lines(r#"{app="web"} | path=~"/""#).await,
        Vec::<String>::new()
    );
    assert_eq!(
        f.lines(r#"{app="web"} | path=~"/[a-c]" or path="/e""#)
            .await,
        ["GET /a 500", "GET /b 200", "GET /e 502"]
    );
    assert_eq!(
        f.lines(r#"{app="web"} | path!~"/.*""#).await,
        ["GET /c 503", "GET /d oops", "dev 500", "old 500"]
    );
    assert_eq!(
        f.lines(r#"{app=~".+"} | status >= 500 or detected_level="warn""#)
            .await,
        [
            "GET /a 500",
            "GET /c 503",
            "api broken",
            "GET /e 502",
            "old 500"
        ]
    );
    assert_eq!(
        f.lines(r#"{app="web"} |= "GET" | status >= 500 != "/c" | path!="/x""#)
            .await,
        ["GET /a 500", "GET /e 502"],
        "line and label filters interleave"
    );
}

#[tokio::test]
async fn log_queries_keep_stored_stream_labels_order_and_limit() {
    let f = everything().await;
    let got = f
        .log(r#"{app="web"} | status >= 500"#, 2, Direction::Backward)
        .await;
    assert_eq!(
        got,
        vec![StreamResult {
            labels: r#"{app="web", env="prod"}"#.into(),
            values: vec![
                (T0 + 9 * SEC, "old 500".into()),
                (T0 + 7 * SEC, "GET /e 502".into()),
            ],
        }],
        "newest first, no attribute added to the stream's labels"
    );
}

#[tokio::test]
async fn old_files_alone_read_metadata_and_lack_the_new_columns() {
    let (f, store) = Fixture::new(&[&WEB, &API]);
    let f = f.with_file(&store, "old", &old_file_rows(), true).await;
    assert_eq!(f.lines(r#"{app=~".+"}"#).await, ["old 500", "old api"]);
    assert_eq!(f.lines(r#"{app=~".+"} | status=500"#).await, ["old 500"]);
    assert_eq!(
        f.lines(r#"{app=~".+"} | detected_level="debug" or __error__!="""#)
            .await,
        ["old api"]
    );
    assert_eq!(
        f.instant(r#"sum by (status) (count_over_time({app=~".+"}[2h]))"#)
            .await,
        vec![series(&[], 1.0), series(&[("status", "500")], 1.0)]
    );
}

#[tokio::test]
async fn stream_label_conditions_prune_streams_and_files() {
    let f = everything().await;
    let Ok(Expr::Log(log)) = parse(r#"{app="web"} | env="dev" or app="nope""#) else {
        panic!("log query");
    };
    let sel = f.select(&log);
    assert_eq!(sel.streams.len(), 1, "only the dev stream can pass");
    assert!(sel.files.is_empty(), "neither file holds the dev stream");
    let Ok(Expr::Log(log)) = parse(r#"{app=~".+"} | env="dev" or status="500""#) else {
        panic!("log query");
    };
    assert_eq!(f.select(&log).streams.len(), 3, "status depends on rows");
}

#[tokio::test]
async fn sum_by_a_row_name_groups_by_its_resolved_value() {
    let f = everything().await;
    assert_eq!(
        f.instant(r#"sum by (status) (count_over_time({app=~".+"}[2h]))"#)
            .await,
        vec![
            series(&[], 3.0),
            series(&[("status", "200")], 2.0),
            series(&[("status", "500")], 2.0),
            series(&[("status", "502")], 1.0),
            series(&[("status", "503")], 1.0),
            series(&[("status", "oops")], 1.0),
        ]
    );
    assert_eq!(
        f.instant(r#"sum by (status) (count_over_time({app="web"} | status >= 500 [2h]))"#)
            .await,
        vec![
            series(&[("status", "500")], 2.0),
            series(&[("status", "502")], 1.0),
            series(&[("status", "503")], 1.0),
        ]
    );
    assert_eq!(
        f.instant(r#"sum by (detected_level) (count_over_time({app=~".+"}[2h]))"#)
            .await,
        vec![
            series(&[], 4.0),
            series(&[("detected_level", "debug")], 1.0),
            series(&[("detected_level", "error")], 2.0),
            series(&[("detected_level", "info")], 2.0),
            series(&[("detected_level", "warn")], 1.0),
        ]
    );
    assert_eq!(
        f.instant(r#"sum by (app, status) (bytes_over_time({env=~".+"} | status=~"50." [2h]))"#)
            .await,
        vec![
            series(&[("app", "web"), ("status", "500")], 17.0),
            series(&[("app", "web"), ("status", "502")], 10.0),
            series(&[("app", "web"), ("status", "503")], 10.0),
        ]
    );
}

#[tokio::test]
async fn without_drops_names_from_everything_a_row_carries() {
    let f = everything().await;
    assert_eq!(
        f.instant(
            r#"sum without (env, path, trace_id) (count_over_time({app="web"} | status >= 500 [2h]))"#
        )
        .await,
        vec![
            series(
                &[("app", "web"), ("detected_level", "error"), ("status", "500")],
                1.0
            ),
            series(
                &[("app", "web"), ("detected_level", "error"), ("status", "502")],
                1.0
            ),
            series(&[("app", "web"), ("status", "500")], 1.0),
            series(&[("app", "web"), ("status", "503")], 1.0),
        ]
    );
    assert_eq!(
        f.instant(r#"count without (status) (count_over_time({app="web", env="dev"}[2h]))"#)
            .await,
        vec![series(&[("app", "web"), ("env", "dev")], 1.0)],
        "the stream label is dropped too"
    );
}

#[tokio::test]
async fn range_aggregations_alone_and_plain_sums_split_by_stream_only() {
    let f = everything().await;
    assert_eq!(
        f.instant(r#"count_over_time({app="web"} | status >= 500 [2h])"#)
            .await,
        vec![series(&[("app", "web"), ("env", "prod")], 4.0)]
    );
    assert_eq!(
        f.instant(r#"sum(count_over_time({app=~".+"} | __error__="" [2h]))"#)
            .await,
        vec![series(&[], 9.0)]
    );
    assert_eq!(
        f.instant(r#"max by (app) (sum by (app, status) (count_over_time({app=~".+"}[2h])))"#)
            .await,
        vec![
            series(&[("app", "api")], 3.0),
            series(&[("app", "web")], 2.0),
        ]
    );
}
