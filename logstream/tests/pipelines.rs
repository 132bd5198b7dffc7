//! Tenants' LogPipelines applied by the real `logstream standalone --pipelines FILE`: parsing
//! real samples, enrichment, drops, routes, a change of pipeline under load, and one tenant's
//! expensive rules next to another tenant's events. Stored rows are read back from the
//! Parquet files themselves, so what is asserted is what is stored.

mod common;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int32Type, TimestampNanosecondType};
use common::{Server, now_ns, post};
use regex::Regex;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data");

fn push_body(stream: Value, values: &[(i64, String)]) -> Vec<u8> {
    let values: Vec<Value> = values
        .iter()
        .map(|(t, l)| json!([t.to_string(), l]))
        .collect();
    serde_json::to_vec(&json!({"streams": [{"stream": stream, "values": values}]})).unwrap()
}

async fn push(url: &str, tenant: &str, stream: Value, values: &[(i64, String)]) {
    let (s, b) = post(
        &format!("{url}/loki/api/v1/push"),
        "application/json",
        &[("X-Scope-OrgID", tenant)],
        push_body(stream, values),
    )
    .await;
    assert_eq!(s, 204, "push refused: {b}");
}

/// One stored row, as read from Parquet.
#[derive(Debug, Clone)]
struct Row {
    key: String,
    labels: String,
    ts_ns: i64,
    line: String,
    attributes: Option<BTreeMap<String, String>>,
    level: Option<String>,
    pipeline: Option<String>,
    time_parsed: Option<bool>,
}

fn dict_value(col: &dyn Array, i: usize) -> Option<String> {
    if col.is_null(i) {
        return None;
    }
    let d = col.as_dictionary::<Int32Type>();
    let values = d.values().as_string::<i32>();
    Some(values.value(d.keys().value(i) as usize).to_string())
}

fn rows_of(key: &str, batch: &RecordBatch) -> Vec<Row> {
    let col = |n: &str| {
        batch
            .column_by_name(n)
            .unwrap_or_else(|| panic!("{key}: no column {n}"))
    };
    let ts = col("timestamp").as_primitive::<TimestampNanosecondType>();
    let line = col("line").as_string::<i32>();
    let attrs = col("attributes").as_map();
    let time_parsed = col("time_parsed").as_boolean();
    (0..batch.num_rows())
        .map(|i| Row {
            key: key.to_string(),
            labels: dict_value(col("labels").as_ref(), i).unwrap(),
            ts_ns: ts.value(i),
            line: line.value(i).to_string(),
            attributes: (!attrs.is_null(i)).then(|| {
                let entry = attrs.value(i);
                let k = entry.column(0).as_string::<i32>();
                let v = entry.column(1).as_string::<i32>();
                (0..entry.len())
                    .map(|j| (k.value(j).to_string(), v.value(j).to_string()))
                    .collect()
            }),
            level: dict_value(col("level").as_ref(), i),
            pipeline: dict_value(col("pipeline").as_ref(), i),
            time_parsed: (!time_parsed.is_null(i)).then(|| time_parsed.value(i)),
        })
        .collect()
}

/// Every row of every Parquet file under `<dir>/store/data`, with the file's key.
fn stored_rows(dir: &Path) -> Vec<Row> {
    let mut out = Vec::new();
    let root = dir.join("store");
    let mut stack = vec![root.join("data")];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                let key = p.strip_prefix(&root).unwrap().display().to_string();
                let file = std::fs::File::open(&p).unwrap();
                let reader =
                    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                        .unwrap()
                        .build()
                        .unwrap();
                for batch in reader {
                    out.extend(rows_of(&key, &batch.unwrap()));
                }
            }
        }
    }
    out
}

async fn metrics(url: &str) -> String {
    reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name_and_labels))
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0.0, |v| v.parse().unwrap())
}

const APACHE: &str = r#"
apiVersion: logstream.dev/v1alpha1
kind: LogPipeline
metadata: {name: apache, namespace: web}
spec:
  logStreamRef: {name: main}
  selector: {}
  match: '{job="apache"}'
  redact:
    - pattern: '^\d+\.\d+\.\d+\.\d+'
      replacement: '<ip>'
  parsers:
    - pattern:
        pattern: '<client> - - [<ts>] "<method> <path> <protocol>" <status> <size> "<referer>" "<agent>"'
  timestamp: {field: ts, format: '%d/%b/%Y:%H:%M:%S %z'}
  fieldLabels:
    - {field: method, maxValues: 2}
  dropFields: [referer]
  drop:
    - lineMatches: '\.(png|gif|ico|jpg) HTTP'
  routes:
    - fields: {status: '5..'}
      class: errors
      days: 30
"#;

/// The Elastic examples' Apache access log through a pipeline with every kind of rule; the
/// expectations come from an independent regex over the same file.
#[tokio::test]
async fn an_apache_pipeline_parses_redacts_drops_routes_and_labels_real_lines() {
    let text = std::fs::read_to_string(format!("{SAMPLES}/elastic-examples/apache_logs"))
        .expect("the Elastic examples are in ../shared/data (CI has them)");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pipelines.yaml");
    std::fs::write(&file, APACHE).unwrap();
    let server = Server::start(
        dir.path(),
        &[
            "--pipelines",
            file.to_str().unwrap(),
            "--flush-interval-ms",
            "1000",
        ],
    )
    .await;
    let t0 = now_ns();
    let lines: Vec<(i64, String)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (t0 + i as i64, l.to_string()))
        .collect();
    // Small requests apart, so each chunk the processor reads stays well inside the tenant's
    // time budget even in a debug build (asserted below: nothing over budget).
    for chunk in lines.chunks(250) {
        push(&server.url, "web", json!({"job": "apache"}), chunk).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Another stream of the tenant that the pipeline's match does not select.
    push(
        &server.url,
        "web",
        json!({"job": "other"}),
        &[(t0, "1.2.3.4 untouched".into())],
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let m = metrics(&server.url).await;
    let status = server.terminate();
    assert!(status.success(), "{status}");

    // The oracle.
    let access = Regex::new(
        r#"^(\S+) - - \[([^\]]+)\] "([A-Z]+) (\S+) (HTTP/1\.[01])" ([0-9]{3}) (\S+) "([^"]*)" "(.*)"$"#,
    )
    .unwrap();
    let dropped = Regex::new(r"\.(png|gif|ico|jpg) HTTP").unwrap();
    let kept: Vec<&(i64, String)> = lines.iter().filter(|(_, l)| !dropped.is_match(l)).collect();
    let rows = stored_rows(dir.path());
    let (apache, other): (Vec<&Row>, Vec<&Row>) = rows
        .iter()
        .partition(|r| r.labels.contains(r#"job="apache""#));
    assert_eq!(other.len(), 1);
    assert_eq!(
        other[0].line, "1.2.3.4 untouched",
        "not selected: not redacted"
    );
    assert_eq!(other[0].pipeline, None);
    assert_eq!(other[0].attributes, None);
    assert_eq!(apache.len(), kept.len(), "every kept line stored once");

    // Rows by original line: redaction replaced the client, so match on the rest.
    let mut by_rest: HashMap<String, Vec<&Row>> = HashMap::new();
    for r in &apache {
        let rest = r
            .line
            .strip_prefix("<ip>")
            .unwrap_or_else(|| panic!("not redacted: {}", r.line));
        by_rest.entry(rest.to_string()).or_default().push(r);
    }
    let mut methods_seen: Vec<String> = Vec::new();
    let (mut errors, mut parsed_5xx) = (0, 0);
    for (recv_ts, line) in &kept {
        let client_len = line.find(' ').unwrap();
        let rest = &line[client_len..];
        let row = by_rest
            .get_mut(rest)
            .and_then(|v| v.pop())
            .unwrap_or_else(|| panic!("line not stored: {line}"));
        assert_eq!(row.pipeline.as_deref(), Some("apache@1"));
        assert_eq!(row.level, None, "access logs carry no level");
        let attrs = row.attributes.as_ref().expect("attributes");
        match access.captures(line) {
            Some(c) => {
                let want_ts = chrono::DateTime::parse_from_str(&c[2], "%d/%b/%Y:%H:%M:%S %z")
                    .unwrap()
                    .timestamp_nanos_opt()
                    .unwrap();
                assert_eq!(
                    (row.ts_ns, row.time_parsed),
                    (want_ts, Some(true)),
                    "{line}"
                );
                assert_eq!(attrs.get("client").map(String::as_str), Some("<ip>"));
                assert_eq!(attrs.get("method").map(String::as_str), Some(&c[3]));
                assert_eq!(attrs.get("path").map(String::as_str), Some(&c[4]));
                assert_eq!(attrs.get("status").map(String::as_str), Some(&c[6]));
                assert_eq!(attrs.get("agent").map(String::as_str), Some(&c[9]));
                assert!(
                    !attrs.contains_key("referer"),
                    "dropped field stored: {attrs:?}"
                );
                // The first two methods keep their name as a label, later ones overflow.
                let method = c[3].to_string();
                if !methods_seen.contains(&method) && methods_seen.len() < 2 {
                    methods_seen.push(method.clone());
                }
                let want_label = if methods_seen.contains(&method) {
                    method
                } else {
                    "__overflow__".to_string()
                };
                assert!(
                    row.labels.contains(&format!(r#"method="{want_label}""#)),
                    "{} for {line}",
                    row.labels
                );
                let class = if c[6].starts_with('5') {
                    parsed_5xx += 1;
                    "errors"
                } else {
                    "default"
                };
                assert!(
                    row.key.starts_with(&format!("data/web/{class}/2015-05-")),
                    "{}",
                    row.key
                );
            }
            None => {
                errors += 1;
                assert_eq!(
                    (row.ts_ns, row.time_parsed),
                    (*recv_ts, Some(false)),
                    "{line}"
                );
                assert_eq!(
                    attrs.get("__error__").map(String::as_str),
                    Some("PatternParserErr")
                );
                assert!(attrs.contains_key("__error_details__"));
                assert!(!row.labels.contains("method="), "{}", row.labels);
            }
        }
    }
    assert!(by_rest.values().all(Vec::is_empty), "rows stored twice");
    assert_eq!(methods_seen, ["GET", "HEAD"]);
    assert_eq!(
        (errors, parsed_5xx),
        (1, 3),
        "the sample has one odd line and three 5xx"
    );
    // Metrics per pipeline.
    let l = r#"{tenant="web",pipeline="apache"}"#;
    assert_eq!(
        metric(&m, &format!("logstream_processor_pipeline_events_total{l}")),
        lines.len() as f64
    );
    assert_eq!(
        metric(
            &m,
            &format!("logstream_processor_pipeline_dropped_total{l}")
        ),
        (lines.len() - kept.len()) as f64
    );
    assert_eq!(
        metric(&m, &format!("logstream_processor_pipeline_failed_total{l}")),
        1.0
    );
    assert_eq!(
        metric(
            &m,
            &format!("logstream_processor_pipeline_redacted_total{l}")
        ),
        lines.len() as f64
    );
    assert_eq!(
        metric(&m, &format!("logstream_processor_pipeline_generation{l}")),
        1.0
    );
    assert_eq!(
        metric(
            &m,
            &format!("logstream_processor_pipeline_over_budget_total{l}")
        ),
        0.0
    );
    assert!(
        metric(
            &m,
            &format!("logstream_processor_pipeline_label_overflow_total{l}")
        ) > 0.0
    );
}

const IDS_V1: &str = r#"
apiVersion: logstream.dev/v1alpha1
kind: LogPipeline
metadata: {name: ids}
spec:
  logStreamRef: {name: main}
  selector: {}
  parsers:
    - logfmt: {}
"#;

const IDS_V2: &str = r#"
apiVersion: logstream.dev/v1alpha1
kind: LogPipeline
metadata: {name: ids}
spec:
  logStreamRef: {name: main}
  selector: {}
  parsers:
    - regex:
        pattern: 'id=(?P<seq>\d+)'
"#;

/// A pipeline changed while events flow: every event is stored once, by exactly one
/// generation, and the generations split the events at one point of the stream.
#[tokio::test]
async fn changing_a_pipeline_under_load_processes_each_event_once_by_one_generation() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pipelines.yaml");
    std::fs::write(&file, IDS_V1).unwrap();
    let server = Server::start(
        dir.path(),
        &[
            "--pipelines",
            file.to_str().unwrap(),
            "--flush-interval-ms",
            "500",
        ],
    )
    .await;
    let url = server.url.clone();
    let t0 = now_ns();
    let pusher = tokio::spawn(async move {
        let started = Instant::now();
        let mut next = 0u64;
        // Until 4 s after the start (the change comes at 1.5 s), 200 events per request.
        while started.elapsed() < Duration::from_secs(4) {
            let batch: Vec<(i64, String)> = (next..next + 200)
                .map(|i| (t0 + i as i64, format!("id={i} msg=\"event {i}\"")))
                .collect();
            push(&url, "default", json!({"app": "load"}), &batch).await;
            next += 200;
        }
        next
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    std::fs::write(&file, IDS_V2).unwrap();
    let total = pusher.await.unwrap();
    // The reload is seen within 2 s; the pusher ran 2.5 s past the change.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let m = metrics(&server.url).await;
    assert!(server.terminate().success());

    let rows = stored_rows(dir.path());
    assert_eq!(rows.len() as u64, total, "every event stored once");
    let mut seen = vec![0u8; total as usize];
    let mut last_v1 = None;
    let mut first_v2 = None;
    for r in &rows {
        let id: usize = r.line[3..r.line.find(' ').unwrap()].parse().unwrap();
        seen[id] += 1;
        let attrs = r.attributes.as_ref().unwrap();
        match r.pipeline.as_deref() {
            Some("ids@1") => {
                assert_eq!(attrs.get("id"), Some(&id.to_string()));
                assert!(!attrs.contains_key("seq"));
                last_v1 = last_v1.max(Some(id));
            }
            Some("ids@2") => {
                assert_eq!(attrs.get("seq"), Some(&id.to_string()));
                assert!(!attrs.contains_key("id"));
                first_v2 = Some(first_v2.map_or(id, |f: usize| f.min(id)));
            }
            other => panic!("row {id} by {other:?}"),
        }
    }
    assert!(
        seen.iter().all(|&n| n == 1),
        "an event stored twice or not at all"
    );
    let (last_v1, first_v2) = (
        last_v1.expect("v1 processed some"),
        first_v2.expect("v2 processed some"),
    );
    assert!(
        last_v1 < first_v2,
        "generations interleave: v1 up to {last_v1}, v2 from {first_v2}"
    );
    assert_eq!(
        metric(
            &m,
            r#"logstream_processor_pipeline_generation{tenant="default",pipeline="ids"}"#
        ),
        2.0
    );
    assert_eq!(metric(&m, "logstream_pipelines_reloads_total"), 1.0);
}

/// One tenant's rules cost a lot per event; another tenant's events still become queryable
/// within the bound (the first tenant's time budget per chunk, 200 ms, plus the usual).
#[tokio::test]
async fn a_tenants_expensive_rules_do_not_hold_back_another_tenant() {
    // 32 regex parsers over 16 KB lines, none matching (a counted Unicode class keeps the
    // regex engine off its fast path).
    let mut yaml = String::from(
        "apiVersion: logstream.dev/v1alpha1\nkind: LogPipeline\nmetadata: {name: slow, namespace: heavy}\nspec:\n  logStreamRef: {name: main}\n  selector: {}\n  parsers:\n",
    );
    for i in 0..32 {
        yaml.push_str(&format!(
            "    - regex:\n        pattern: '(?P<f{i}>\\w{{1,60}}[0-9]{{2}}z{i})\\b'\n"
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pipelines.yaml");
    std::fs::write(&file, yaml).unwrap();
    let server = Server::start(dir.path(), &["--pipelines", file.to_str().unwrap()]).await;
    let big = "abcdefghij".repeat(1600);
    let t0 = now_ns();
    // The heavy tenant pushes 40 requests of 20 such lines (800 lines, 13 MB).
    let url = server.url.clone();
    let heavy = tokio::spawn(async move {
        for r in 0..40 {
            let batch: Vec<(i64, String)> =
                (0..20).map(|i| (t0 + r * 100 + i, big.clone())).collect();
            push(&url, "heavy", json!({"app": "h"}), &batch).await;
        }
    });
    // Meanwhile the light tenant's events must show up fast.
    let mut worst = Duration::ZERO;
    for i in 0..10 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let line = format!("light event {i}");
        push(
            &server.url,
            "light",
            json!({"app": "l"}),
            &[(now_ns(), line.clone())],
        )
        .await;
        let pushed = Instant::now();
        loop {
            let got = common::lines(
                &server.url,
                &format!(r#"{{app="l"}} |= "{line}""#),
                t0 - 1,
                now_ns() + 1_000_000_000,
                10,
                true,
                Some("light"),
            )
            .await;
            if !got.is_empty() {
                break;
            }
            assert!(
                pushed.elapsed() < Duration::from_secs(10),
                "event {i} not visible after 10 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        worst = worst.max(pushed.elapsed());
    }
    heavy.await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let m = metrics(&server.url).await;
    let over = metric(
        &m,
        r#"logstream_processor_pipeline_over_budget_total{tenant="heavy",pipeline="slow"}"#,
    );
    let events = metric(
        &m,
        r#"logstream_processor_pipeline_events_total{tenant="heavy",pipeline="slow"}"#,
    );
    eprintln!(
        "light tenant: worst push-to-visible {worst:?}; heavy: {over} of {events} events over budget"
    );
    assert_eq!(events, 800.0, "every heavy event went through its pipeline");
    assert!(
        over > 0.0,
        "the heavy tenant's budget never ran out: the test did not load it"
    );
    assert!(
        worst < Duration::from_secs(2),
        "the light tenant waited {worst:?} behind the heavy tenant's rules"
    );
}
