//! Loki's query HTTP API: `query_range`, `query`, `labels`, `label/<name>/values`, `series`,
//! answered in the JSON shapes Loki uses so Grafana's Loki data source works unchanged.

use crate::error::{Error, Result};
use crate::eval::{self, Series, Steps};
use crate::exec::{Engine, StreamResult};
use crate::metrics::QueryMetrics;
use crate::params::{Direction, Params};
use crate::select::{Selection, select, select_for};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use logstream_bus::Labels;
use logstream_logql::{Expr, LogExpr, Matcher, parse, parse_selector};
use logstream_processor::{GroupProcessor, Processor, Snapshot, Tail};
use serde_json::{Map, Value, json};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

/// Where queries get the current view of the data.
#[async_trait::async_trait]
pub trait SnapshotSource: Send + Sync + std::fmt::Debug {
    /// A view of every bus partition that includes the events acknowledged before the call
    /// (as far as the source can tell within a short wait).
    async fn snapshot(&self) -> Vec<Snapshot>;
}

/// How long a query waits for the processor to catch up with the acknowledged events before
/// answering from what it has.
const FRESHNESS_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

#[async_trait::async_trait]
impl SnapshotSource for Processor {
    async fn snapshot(&self) -> Vec<Snapshot> {
        vec![self.fresh_snapshot(FRESHNESS_WAIT).await]
    }
}

/// Distributed query replicas follow the topic themselves.
#[async_trait::async_trait]
impl SnapshotSource for Tail {
    async fn snapshot(&self) -> Vec<Snapshot> {
        self.fresh_snapshots(FRESHNESS_WAIT).await
    }
}

/// A processor can answer queries over the partitions it holds (tests, debugging).
#[async_trait::async_trait]
impl SnapshotSource for GroupProcessor {
    async fn snapshot(&self) -> Vec<Snapshot> {
        self.snapshots()
    }
}

#[derive(Debug)]
pub struct QueryState {
    pub engine: Engine,
    pub source: Arc<dyn SnapshotSource>,
    /// Files past their retention are not read, even before the sweeper or the bucket's
    /// lifecycle rules delete them.
    pub retention: logstream_store::RetentionPolicy,
    pub default_tenant: String,
    pub metrics: QueryMetrics,
}

/// The snapshots a query reads, without the files retention has expired.
async fn view(s: &QueryState) -> Vec<Snapshot> {
    let snaps = s.source.snapshot().await;
    let policy = &s.retention;
    if policy.default_days.is_none() && policy.rules.is_empty() {
        return snaps;
    }
    let now = chrono::Utc::now();
    snaps
        .into_iter()
        .map(|snap| {
            let mut manifest = logstream_store::Manifest::clone(&snap.manifest);
            manifest.files.retain(|f| {
                logstream_store::retention::cutoff_ns(policy, &f.tenant, &f.class, now)
                    .is_none_or(|cut| f.max_ts_ns >= cut)
            });
            Snapshot {
                manifest: Arc::new(manifest),
                hot: snap.hot,
            }
        })
        .collect()
}

const MAX_LIMIT: usize = 5000;
const HOUR_NS: i64 = 3_600_000_000_000;

/// The query routes, for merging into a server's router.
pub fn router(state: Arc<QueryState>) -> Router {
    Router::new()
        .route(
            "/loki/api/v1/query_range",
            get(query_range).post(query_range),
        )
        .route("/loki/api/v1/query", get(query).post(query))
        .route("/loki/api/v1/labels", get(labels).post(labels))
        .route("/loki/api/v1/label/{name}/values", get(label_values))
        .route("/loki/api/v1/series", get(series).post(series))
        .route("/loki/api/v1/status/buildinfo", get(buildinfo))
        .with_state(state)
}

type S = State<Arc<QueryState>>;

async fn query_range(State(s): S, h: HeaderMap, q: RawQuery, body: Bytes) -> Response {
    respond(
        &s,
        "query_range",
        Instant::now(),
        run_range(&s, &h, &params(q, &body)).await,
    )
}

async fn query(State(s): S, h: HeaderMap, q: RawQuery, body: Bytes) -> Response {
    respond(
        &s,
        "query",
        Instant::now(),
        run_instant(&s, &h, &params(q, &body)).await,
    )
}

async fn labels(State(s): S, h: HeaderMap, q: RawQuery, body: Bytes) -> Response {
    let started = Instant::now();
    let p = params(q, &body);
    respond(&s, "labels", started, label_names(&s, &h, &p).await)
}

async fn label_values(
    State(s): S,
    Path(name): Path<String>,
    h: HeaderMap,
    q: RawQuery,
) -> Response {
    let started = Instant::now();
    let p = params(q, &[]);
    respond(
        &s,
        "label_values",
        started,
        values_of(&s, &h, &p, &name).await,
    )
}

async fn series(State(s): S, h: HeaderMap, q: RawQuery, body: Bytes) -> Response {
    let started = Instant::now();
    let p = params(q, &body);
    respond(&s, "series", started, series_of(&s, &h, &p).await)
}

async fn buildinfo() -> Response {
    let v = json!({"version": env!("CARGO_PKG_VERSION"), "revision": "", "branch": "", "goVersion": ""});
    axum::Json(v).into_response()
}

/// Query-string and form-body parameters; repeated keys keep every value.
fn params(RawQuery(q): RawQuery, body: &[u8]) -> (Params, Vec<(String, String)>) {
    let mut all: Vec<(String, String)> = Vec::new();
    for src in [q.as_deref().unwrap_or("").as_bytes(), body] {
        all.extend(form_urlencoded::parse(src).map(|(k, v)| (k.into_owned(), v.into_owned())));
    }
    (Params(all.iter().cloned().collect()), all)
}

fn tenant(s: &QueryState, h: &HeaderMap) -> String {
    h.get("x-scope-orgid")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| s.default_tenant.clone())
}

fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

async fn run_range(
    s: &QueryState,
    h: &HeaderMap,
    (p, _): &(Params, Vec<(String, String)>),
) -> Result<Value> {
    let started = Instant::now();
    let expr = parse(p.required("query")?)?;
    let end = p.time_or("end", now_ns())?;
    let start = p.time_or("start", end - HOUR_NS)?;
    if end < start {
        return Err(Error::BadRequest(
            "end timestamp must not be before start time".into(),
        ));
    }
    let tenant = tenant(s, h);
    let snap = view(s).await;
    let (kind, result) = match &expr {
        Expr::Log(log) => {
            let limit = p.limit(100, MAX_LIMIT)?;
            let dir = p.direction()?;
            (
                "streams",
                log_result(s, &snap, &tenant, log, start, end, limit, dir).await?,
            )
        }
        Expr::Metric(m) => {
            let step = match p.get("step") {
                Some(v) => crate::params::parse_step("step", v)?,
                None => default_step(start, end),
            };
            let steps = Steps {
                start_ns: start,
                end_ns: end,
                step_ns: step,
            };
            (
                "matrix",
                matrix(&eval::eval(&s.engine, &snap, &tenant, m, steps).await?),
            )
        }
    };
    Ok(success(kind, result, started))
}

async fn run_instant(
    s: &QueryState,
    h: &HeaderMap,
    (p, _): &(Params, Vec<(String, String)>),
) -> Result<Value> {
    let started = Instant::now();
    let expr = parse(p.required("query")?)?;
    let t = p.time_or("time", now_ns())?;
    let Expr::Metric(m) = expr else {
        return Err(Error::BadRequest(
            "log queries are not supported as an instant query type, please change your query to a range query type".into(),
        ));
    };
    let tenant = tenant(s, h);
    let snap = view(s).await;
    let steps = Steps {
        start_ns: t,
        end_ns: t,
        step_ns: 0,
    };
    let series = eval::eval(&s.engine, &snap, &tenant, &m, steps).await?;
    Ok(success("vector", vector(&series), started))
}

/// Loki's default: about 250 points over the range, at least one second.
fn default_step(start: i64, end: i64) -> i64 {
    ((end - start) / 250 / 1_000_000_000).max(1) * 1_000_000_000
}

#[allow(clippy::too_many_arguments)]
async fn log_result(
    s: &QueryState,
    snap: &[Snapshot],
    tenant: &str,
    log: &LogExpr,
    start: i64,
    end: i64,
    limit: usize,
    dir: Direction,
) -> Result<Value> {
    let sel = select_for(snap, tenant, log, start, end);
    // Loki's range is [start, end): the end itself is excluded.
    let streams = s
        .engine
        .log_lines(&sel, &log.stages, start, end - 1, limit, dir)
        .await?;
    Ok(streams_json(&sel, &streams))
}

fn streams_json(sel: &Selection, streams: &[StreamResult]) -> Value {
    let by_text: HashMap<String, &Labels> =
        sel.streams.values().map(|l| (l.to_string(), l)).collect();
    let result: Vec<Value> = streams
        .iter()
        .map(|st| {
            let labels = by_text
                .get(&st.labels)
                .map(|l| labels_json(l.iter()))
                .unwrap_or_default();
            let values: Vec<Value> = st
                .values
                .iter()
                .map(|(t, line)| json!([t.to_string(), line]))
                .collect();
            json!({"stream": labels, "values": values})
        })
        .collect();
    Value::Array(result)
}

fn labels_json<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Value {
    Value::Object(
        pairs
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect::<Map<_, _>>(),
    )
}

fn series_labels(s: &Series) -> Value {
    labels_json(s.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

fn matrix(series: &[Series]) -> Value {
    Value::Array(
        series
            .iter()
            .map(|s| {
                let values: Vec<Value> = s
                    .points
                    .iter()
                    .map(|(t, v)| json!([seconds(*t), number(*v)]))
                    .collect();
                json!({"metric": series_labels(s), "values": values})
            })
            .collect(),
    )
}

fn vector(series: &[Series]) -> Value {
    Value::Array(
        series
            .iter()
            .filter_map(|s| {
                let (t, v) = s.points.last()?;
                Some(json!({"metric": series_labels(s), "value": [seconds(*t), number(*v)]}))
            })
            .collect(),
    )
}

/// Unix seconds as a JSON number, whole when it is whole (as Loki prints it).
fn seconds(ns: i64) -> Value {
    if ns % 1_000_000_000 == 0 {
        json!(ns / 1_000_000_000)
    } else {
        json!(ns as f64 / 1e9)
    }
}

/// A sample value as Prometheus prints it.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

fn success(kind: &str, result: Value, started: Instant) -> Value {
    let secs = started.elapsed().as_secs_f64();
    json!({
        "status": "success",
        "data": {
            "resultType": kind,
            "result": result,
            "stats": {"summary": {"execTime": secs}},
        }
    })
}

/// Streams of `tenant` in the request's time range (default: the last 6 hours) matching the
/// `query` selector when one is given.
async fn streams_in_range(
    s: &QueryState,
    h: &HeaderMap,
    p: &Params,
    selectors: &[Vec<Matcher>],
) -> Result<Vec<Labels>> {
    let end = p.time_or("end", now_ns())?;
    let start = p.time_or("start", end - 6 * HOUR_NS)?;
    let tenant = tenant(s, h);
    let snap = view(s).await;
    let mut out = BTreeSet::new();
    let all = [Vec::new()];
    let selectors = if selectors.is_empty() {
        &all[..]
    } else {
        selectors
    };
    for m in selectors {
        out.extend(select(&snap, &tenant, m, start, end).streams.into_values());
    }
    Ok(out.into_iter().collect())
}

fn optional_selector(p: &Params) -> Result<Vec<Vec<Matcher>>> {
    Ok(match p.get("query") {
        Some(q) => vec![parse_selector(q)?],
        None => Vec::new(),
    })
}

async fn label_names(
    s: &QueryState,
    h: &HeaderMap,
    (p, _): &(Params, Vec<(String, String)>),
) -> Result<Value> {
    let streams = streams_in_range(s, h, p, &optional_selector(p)?).await?;
    let names: BTreeSet<&str> = streams
        .iter()
        .flat_map(|l| l.iter().map(|(k, _)| k))
        .collect();
    Ok(json!({"status": "success", "data": names}))
}

async fn values_of(
    s: &QueryState,
    h: &HeaderMap,
    (p, _): &(Params, Vec<(String, String)>),
    name: &str,
) -> Result<Value> {
    let streams = streams_in_range(s, h, p, &optional_selector(p)?).await?;
    let values: BTreeSet<&str> = streams.iter().filter_map(|l| l.get(name)).collect();
    Ok(json!({"status": "success", "data": values}))
}

async fn series_of(
    s: &QueryState,
    h: &HeaderMap,
    (p, all): &(Params, Vec<(String, String)>),
) -> Result<Value> {
    let selectors = all
        .iter()
        .filter(|(k, _)| k == "match[]" || k == "match")
        .map(|(_, v)| parse_selector(v))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let streams = streams_in_range(s, h, p, &selectors).await?;
    let data: Vec<Value> = streams.iter().map(|l| labels_json(l.iter())).collect();
    Ok(json!({"status": "success", "data": data}))
}

fn respond(
    s: &QueryState,
    endpoint: &'static str,
    started: Instant,
    result: Result<Value>,
) -> Response {
    let secs = started.elapsed().as_secs_f64();
    match result {
        Ok(v) => {
            s.metrics.observe(endpoint, "2xx", secs);
            axum::Json(v).into_response()
        }
        Err(e) => {
            let status =
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            s.metrics.observe(
                endpoint,
                if status.is_client_error() {
                    "4xx"
                } else {
                    "5xx"
                },
                secs,
            );
            if status.is_server_error() {
                tracing::error!(endpoint, error = %e, "query failed");
            }
            (
                status,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("{e}\n"),
            )
                .into_response()
        }
    }
}
